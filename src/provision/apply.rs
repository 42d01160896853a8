//! Applying a decision to Langfuse, organization by organization: resolve project names to ids
//! (cached, refreshed on a miss), read the user's current memberships, plan, then write in the
//! API's order. Idempotent: when Langfuse already matches, only reads happen. An action that
//! would take OWNER from someone runs under the organization lock after a fresh read of the
//! owners, and is refused (the rest still applied) when that someone is the last owner.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::client::{ApiError, Client, Created, Membership, ProjectRef};
use super::lock::{LockError, OrgLock};
use super::plan::{self, Action, ActionKind, Current, Member, WantedOrg, WantedProject};
use super::retry::{RetryPolicy, SharedSleeper};
use super::{Mode, OnError, OrgKeys, OrgSettings, Settings};
use crate::audit::Event;
use crate::clock::SharedClock;
use crate::login::Identity;
use crate::policy::decide::OrgDecision;
use crate::policy::{Decision, Role};
use crate::store::{SharedStore, StoreError};

/// What became of one planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Status {
    Applied,
    /// Dry run: would be applied.
    Planned,
    /// Deliberately not applied (last owner, unknown project, lock busy); not an outage.
    Refused(String),
    /// Langfuse (or the store) failed on this action.
    Failed(String),
    /// Not tried because an earlier action of the organization failed.
    NotAttempted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionResult {
    #[serde(flatten)]
    pub action: Action,
    #[serde(flatten)]
    pub status: Status,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the bridge's store is unavailable")]
    Store(#[from] StoreError),
}

impl ProvisionError {
    pub fn licence_missing(&self) -> bool {
        matches!(self, ProvisionError::Api(e) if e.licence_missing())
    }
}

#[derive(Debug)]
pub struct OrgOutcome {
    pub org: String,
    pub mode: Mode,
    pub on_error: OnError,
    pub results: Vec<ActionResult>,
    /// Set when provisioning this organization failed part-way (or could not start).
    pub error: Option<ProvisionError>,
}

impl OrgOutcome {
    pub fn applied(&self) -> impl Iterator<Item = &ActionResult> {
        self.results.iter().filter(|r| r.status == Status::Applied)
    }
    pub fn not_applied(&self) -> impl Iterator<Item = &ActionResult> {
        self.results
            .iter()
            .filter(|r| !matches!(r.status, Status::Applied | Status::Planned))
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub orgs: Vec<OrgOutcome>,
}

impl Report {
    /// Whether an organization whose failure policy is deny failed.
    pub fn deny_login(&self) -> bool {
        self.orgs
            .iter()
            .any(|o| o.error.is_some() && o.on_error == OnError::Deny)
    }

    pub fn failed(&self) -> impl Iterator<Item = &OrgOutcome> {
        self.orgs.iter().filter(|o| o.error.is_some())
    }

    pub fn changes(&self) -> usize {
        self.orgs.iter().map(|o| o.results.len()).sum()
    }

    /// The audit trail of this report: one event per applied or refused action, and one per
    /// failed organization listing what was and was not applied. `login` says what became of
    /// the login ("denied"/"allowed"; "reconcile" outside a login).
    pub fn events(&self, identity: &Identity, login: &str) -> Vec<Event> {
        let sub = identity.sub();
        let email = identity.email.to_string();
        let mut out = Vec::new();
        for org in &self.orgs {
            for r in &org.results {
                let (outcome, detail) = match &r.status {
                    Status::Applied => ("applied", None),
                    Status::Refused(why) => ("refused", Some(why.clone())),
                    // Failed and not attempted actions are listed in the failure event.
                    _ => continue,
                };
                out.push(Event::ProvisionAction {
                    sub: sub.clone(),
                    email: email.clone(),
                    org: org.org.clone(),
                    project: r.action.project.clone(),
                    action: r.action.kind.as_str().into(),
                    from_role: r.action.from,
                    to_role: r.action.to,
                    rule: r.action.rule.clone(),
                    reason: r.action.reason.clone(),
                    outcome: outcome.into(),
                    detail,
                });
            }
            if let Some(error) = &org.error {
                out.push(Event::ProvisionFailed {
                    sub: sub.clone(),
                    email: email.clone(),
                    org: org.org.clone(),
                    error: error.to_string(),
                    licence_missing: error.licence_missing(),
                    applied: org.applied().map(|r| r.action.describe()).collect(),
                    not_applied: org.not_applied().map(|r| r.action.describe()).collect(),
                    login: login.into(),
                });
            }
        }
        out
    }
}

pub struct Provisioner {
    client: Client,
    orgs: Vec<(OrgSettings, OrgKeys)>,
    store: SharedStore,
    sleeper: SharedSleeper,
    projects: Mutex<HashMap<String, Vec<ProjectRef>>>,
    /// How long an owner change waits for another instance's lock.
    lock_wait: Duration,
}

impl Provisioner {
    /// `None` when no organization provisions (or no URL is set: config refuses that case).
    pub fn new(
        settings: &Settings,
        store: SharedStore,
        sleeper: SharedSleeper,
        clock: SharedClock,
    ) -> Result<Option<Self>, ApiError> {
        let Some(url) = settings.url.clone() else {
            return Ok(None);
        };
        let orgs: Vec<(OrgSettings, OrgKeys)> = settings
            .organizations
            .iter()
            .filter(|o| o.mode != Mode::Off)
            .filter_map(|o| o.keys.clone().map(|k| (o.clone(), k)))
            .collect();
        if orgs.is_empty() {
            return Ok(None);
        }
        let client = Client::new(
            url,
            settings.timeout,
            RetryPolicy::new(settings.max_retries),
            sleeper.clone(),
            clock,
        )?;
        Ok(Some(Self {
            client,
            orgs,
            store,
            sleeper,
            projects: Mutex::new(HashMap::new()),
            lock_wait: Duration::from_secs(5),
        }))
    }

    /// Makes Langfuse match `decision` for `identity` in every provisioned organization (or, with
    /// `dry_run`, only plans). Organizations are independent: one failing does not stop another.
    pub async fn provision(
        &self,
        identity: &Identity,
        decision: &Decision,
        dry_run: bool,
    ) -> Report {
        let mut report = Report::default();
        for (org, keys) in &self.orgs {
            let wanted = decision.orgs.iter().find(|d| d.org == org.id);
            let mut outcome = OrgOutcome {
                org: org.id.clone(),
                mode: org.mode,
                on_error: org.on_error,
                results: Vec::new(),
                error: None,
            };
            // Additive mode never removes, so an organization no rule mentions needs no call.
            if wanted.is_none() && org.mode == Mode::Additive {
                continue;
            }
            if let Err(e) = self
                .provision_org(org, keys, identity, wanted, dry_run, &mut outcome.results)
                .await
            {
                outcome.error = Some(e);
            }
            report.orgs.push(outcome);
        }
        report
    }

    async fn provision_org(
        &self,
        org: &OrgSettings,
        keys: &OrgKeys,
        identity: &Identity,
        decision: Option<&OrgDecision>,
        dry_run: bool,
        results: &mut Vec<ActionResult>,
    ) -> Result<(), ProvisionError> {
        let (wanted, unresolved) = match decision {
            Some(d) => {
                let (w, u) = self.resolve(&org.id, keys, d).await?;
                (Some(w), u)
            }
            None => (None, Vec::new()),
        };
        results.extend(unresolved);
        let mut known_id: Option<String> = None;
        // A second round only when a concurrent login created the membership under us (409).
        for _round in 0..2 {
            let names = self.project_names(&org.id);
            let current = self
                .current(org, keys, identity, known_id.as_deref(), wanted.as_ref())
                .await?;
            let actions = plan::plan(org.mode, wanted.as_ref(), &current, &names);
            if dry_run {
                results.extend(actions.into_iter().map(|action| ActionResult {
                    action,
                    status: Status::Planned,
                }));
                return Ok(());
            }
            let mut user_id = current.member.as_ref().map(|m| m.user_id.clone());
            let mut iter = actions.into_iter();
            while let Some(action) = iter.next() {
                let outcome = self
                    .execute(&org.id, keys, identity, &action, &mut user_id)
                    .await;
                match outcome {
                    Ok(Step::Done) => results.push(ActionResult {
                        action,
                        status: Status::Applied,
                    }),
                    Ok(Step::Refused(why)) => results.push(ActionResult {
                        action,
                        status: Status::Refused(why),
                    }),
                    Ok(Step::Replan(id)) => {
                        known_id = Some(id);
                        break;
                    }
                    Err(e) => {
                        results.push(ActionResult {
                            action,
                            status: Status::Failed(e.to_string()),
                        });
                        results.extend(iter.map(|action| ActionResult {
                            action,
                            status: Status::NotAttempted,
                        }));
                        return Err(e);
                    }
                }
            }
            if known_id.is_none() || user_id.is_some() {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn execute(
        &self,
        org: &str,
        keys: &OrgKeys,
        identity: &Identity,
        action: &Action,
        user_id: &mut Option<String>,
    ) -> Result<Step, ProvisionError> {
        let to = action.to.unwrap_or(Role::None);
        let no_user = || ProvisionError::Api(ApiError::BadAnswer("no Langfuse user id".into()));
        match action.kind {
            ActionKind::CreateUser => {
                match self
                    .client
                    .scim_create(keys, &identity.email, identity.name.as_deref(), to)
                    .await?
                {
                    Created::Member(id) => {
                        *user_id = Some(id);
                        Ok(Step::Done)
                    }
                    // Created by a concurrent login (or another tool) since we read: find the
                    // user by userName and plan again from fresh state.
                    Created::AlreadyMember => {
                        match self.client.scim_find(keys, &identity.email).await? {
                            Some(id) => Ok(Step::Replan(id)),
                            None => Err(ApiError::BadAnswer(
                                "SCIM said the user is a member, but userName lookup finds nobody"
                                    .into(),
                            )
                            .into()),
                        }
                    }
                }
            }
            ActionKind::SetOrgRole => {
                let id = user_id.clone().ok_or_else(no_user)?;
                if action.demotes_owner() {
                    return self.demote_owner(org, keys, &id, to).await;
                }
                self.client.put_org_member(keys, &id, to).await?;
                Ok(Step::Done)
            }
            ActionKind::SetProjectRole => {
                let id = user_id.clone().ok_or_else(no_user)?;
                let pid = action.project_id.as_deref().unwrap_or_default();
                self.client.put_project_member(keys, pid, &id, to).await?;
                Ok(Step::Done)
            }
            ActionKind::RemoveProjectRole => {
                let id = user_id.clone().ok_or_else(no_user)?;
                let pid = action.project_id.as_deref().unwrap_or_default();
                self.client.delete_project_member(keys, pid, &id).await?;
                Ok(Step::Done)
            }
        }
    }

    /// Langfuse's org membership PUT would happily remove the last OWNER (reference §2.1), so
    /// the bridge checks — under the organization lock, with owners read fresh.
    async fn demote_owner(
        &self,
        org: &str,
        keys: &OrgKeys,
        user_id: &str,
        to: Role,
    ) -> Result<Step, ProvisionError> {
        let lock =
            match OrgLock::acquire(self.store.as_ref(), &self.sleeper, org, self.lock_wait).await {
                Ok(l) => l,
                Err(LockError::Busy) => return Ok(Step::Refused(LockError::Busy.to_string())),
                Err(LockError::Store(e)) => return Err(e.into()),
            };
        let result = async {
            let members = self.client.org_members(keys).await?;
            let owners = members.iter().filter(|m| m.role == Role::Owner).count();
            let still_owner = members
                .iter()
                .any(|m| m.user_id == user_id && m.role == Role::Owner);
            if still_owner && owners <= 1 {
                return Ok(Step::Refused(
                    "the user is the organization's last OWNER; Langfuse would be left without one"
                        .into(),
                ));
            }
            self.client.put_org_member(keys, user_id, to).await?;
            Ok(Step::Done)
        }
        .await;
        lock.release().await;
        result
    }

    /// The user's membership and project overrides. Authoritative mode reads every project (an
    /// override no rule mentions must go); additive only the projects rules name.
    async fn current(
        &self,
        org: &OrgSettings,
        keys: &OrgKeys,
        identity: &Identity,
        known_id: Option<&str>,
        wanted: Option<&WantedOrg>,
    ) -> Result<Current, ProvisionError> {
        let members = self.client.org_members(keys).await?;
        let me: Option<&Membership> = members.iter().find(|m| match known_id {
            Some(id) => m.user_id == id,
            None => m
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(identity.email.as_str())),
        });
        let Some(me) = me else {
            return Ok(Current::default());
        };
        let project_ids: Vec<String> = match org.mode {
            Mode::Authoritative => {
                let mut list = self.cached_projects(&org.id);
                if list.is_empty() {
                    list = self.client.projects(keys).await?;
                    self.lock_cache().insert(org.id.clone(), list.clone());
                }
                list.into_iter().map(|p| p.id).collect()
            }
            _ => wanted
                .map(|w| w.projects.iter().map(|p| p.id.clone()).collect())
                .unwrap_or_default(),
        };
        let mut project_roles = BTreeMap::new();
        for pid in project_ids {
            let rows = self.client.project_members(keys, &pid).await?;
            if let Some(r) = rows.iter().find(|r| r.user_id == me.user_id) {
                project_roles.insert(pid, r.role);
            }
        }
        Ok(Current {
            member: Some(Member {
                user_id: me.user_id.clone(),
                role: me.role,
            }),
            project_roles,
        })
    }

    /// Turns the decision's project names (or ids) into Langfuse ids. A name missing from the
    /// cache refreshes it once; still missing → that action is refused, the rest goes ahead.
    async fn resolve(
        &self,
        org: &str,
        keys: &OrgKeys,
        d: &OrgDecision,
    ) -> Result<(WantedOrg, Vec<ActionResult>), ProvisionError> {
        let find = |list: &[ProjectRef], name: &str| {
            list.iter()
                .find(|p| p.name == name)
                .or_else(|| list.iter().find(|p| p.id == name))
                .cloned()
        };
        let mut list = self.cached_projects(org);
        let needs_refresh =
            list.is_empty() || d.projects.iter().any(|p| find(&list, &p.project).is_none());
        if needs_refresh {
            list = self.client.projects(keys).await?;
            self.lock_cache().insert(org.to_owned(), list.clone());
        }
        let mut projects = Vec::new();
        let mut unresolved = Vec::new();
        for p in &d.projects {
            let rule = p
                .capped_by
                .clone()
                .unwrap_or_else(|| p.granted_by.join(", "));
            match find(&list, &p.project) {
                Some(found) => projects.push(WantedProject {
                    id: found.id,
                    name: found.name,
                    role: p.role,
                    write: p.write_membership,
                    capped: p.capped_by.is_some(),
                    rule,
                }),
                None if p.write_membership => unresolved.push(ActionResult {
                    action: Action {
                        kind: ActionKind::SetProjectRole,
                        project: Some(p.project.clone()),
                        project_id: None,
                        from: None,
                        to: Some(p.role),
                        rule,
                        reason: format!("rules grant {} in this project", p.role),
                    },
                    status: Status::Refused(format!(
                        "Langfuse organization {org} has no project named {:?}",
                        p.project
                    )),
                }),
                None => {}
            }
        }
        let rule = if d.role_from.is_empty() {
            "project rules only".to_owned()
        } else {
            d.role_from.join(", ")
        };
        Ok((
            WantedOrg {
                role: d.role,
                rule,
                projects,
            },
            unresolved,
        ))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<ProjectRef>>> {
        // The cache is a plain map replaced wholesale; a poisoned lock still holds a valid map.
        self.projects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached_projects(&self, org: &str) -> Vec<ProjectRef> {
        self.lock_cache().get(org).cloned().unwrap_or_default()
    }

    fn project_names(&self, org: &str) -> BTreeMap<String, String> {
        self.cached_projects(org)
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect()
    }

    /// The store, for callers that record known users alongside provisioning.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }
}

enum Step {
    Done,
    Refused(String),
    /// The user already existed: plan again knowing their id.
    Replan(String),
}
