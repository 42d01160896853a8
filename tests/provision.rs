//! The provisioning engine against the Langfuse double: create on first login, no writes on the
//! second, additive vs authoritative, the last-owner guard (also under two concurrent
//! demotions), retries with an injected sleeper, licence and partial failures, a SCIM
//! pre-provisioned user (field case 021), and project names resolved through a refreshed cache.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::langfuse_double::{Fault, LangfuseDouble, Plan};
use sso_bridge::clock::ManualClock;
use sso_bridge::login::Identity;
use sso_bridge::policy::decide::{OrgDecision, ProjectDecision};
use sso_bridge::policy::{Decision, Email, Role};
use sso_bridge::provision::apply::Status;
use sso_bridge::provision::{
    ActionKind, Mode, OnError, OrgKeys, OrgSettings, Provisioner, Settings, SharedSleeper, Sleeper,
    TokioSleeper,
};
use sso_bridge::secret::Secret;
use sso_bridge::store::memory::MemoryStore;
use sso_bridge::store::SharedStore;

/// Records every wait and returns at once: retries are tested without waiting.
#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, d: Duration) {
        self.0.lock().unwrap().push(d);
    }
}

struct Setup {
    lf: LangfuseDouble,
    store: SharedStore,
    sleeper: Arc<RecordingSleeper>,
    clock: Arc<ManualClock>,
}

async fn setup() -> Setup {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production", "staging", "analytics"]);
    let clock = ManualClock::new(common::t0());
    Setup {
        lf,
        store: Arc::new(MemoryStore::new(clock.clone())),
        sleeper: Arc::new(RecordingSleeper::default()),
        clock,
    }
}

fn settings(url: &str, mode: Mode, max_retries: u32) -> Settings {
    Settings {
        url: Some(url::Url::parse(url).unwrap()),
        timeout: Duration::from_secs(5),
        max_retries,
        organizations: vec![OrgSettings {
            id: "acme".into(),
            mode,
            on_error: OnError::Deny,
            keys: Some(OrgKeys {
                public_key: "pk-lf-org-acme".into(),
                secret_key: Secret::new("sk-lf-org-acme"),
            }),
        }],
    }
}

impl Setup {
    fn provisioner(&self, mode: Mode) -> Provisioner {
        self.provisioner_with(settings(&self.lf.base, mode, 3), self.sleeper.clone())
    }

    fn provisioner_with(&self, s: Settings, sleeper: SharedSleeper) -> Provisioner {
        Provisioner::new(&s, self.store.clone(), sleeper, self.clock.clone())
            .unwrap()
            .expect("provisioning enabled")
    }
}

fn identity(email: &str) -> Identity {
    Identity {
        connection_id: "acme".into(),
        subject: format!("idp-{email}"),
        email: Email::parse(email).unwrap(),
        name: Some("Ana Souza".into()),
        groups: vec![],
    }
}

fn decision(org_role: Role, projects: &[(&str, Role)]) -> Decision {
    Decision {
        allowed: true,
        denial: None,
        orgs: vec![OrgDecision {
            org: "acme".into(),
            role: org_role,
            role_from: if org_role == Role::None {
                vec![]
            } else {
                vec!["admins".into()]
            },
            projects: projects
                .iter()
                .map(|(p, r)| ProjectDecision {
                    project: (*p).into(),
                    role: *r,
                    write_membership: *r != org_role,
                    granted_by: vec!["ml-team".into()],
                    capped_by: None,
                })
                .collect(),
        }],
        matched_rules: vec![],
        notes: vec![],
    }
}

fn nothing() -> Decision {
    Decision {
        orgs: vec![],
        ..decision(Role::None, &[])
    }
}

#[tokio::test]
async fn first_login_creates_user_and_memberships_second_login_writes_nothing() {
    let s = setup().await;
    let p = s.provisioner(Mode::Authoritative);
    let ana = identity("Ana.Souza@Example.com");
    let d = decision(Role::None, &[("production", Role::Member)]);

    let report = p.provision(&ana, &d, false).await;
    assert!(!report.deny_login());
    let kinds: Vec<ActionKind> = report.orgs[0]
        .results
        .iter()
        .map(|r| r.action.kind)
        .collect();
    assert_eq!(kinds, [ActionKind::CreateUser, ActionKind::SetProjectRole]);
    assert!(report.orgs[0]
        .results
        .iter()
        .all(|r| r.status == Status::Applied));
    assert_eq!(
        s.lf.org_role("org-acme", "ana.souza@example.com"),
        Some(Role::None)
    );
    assert_eq!(
        s.lf.project_roles("org-acme", "ana.souza@example.com"),
        [("production".to_owned(), Role::Member)].into()
    );
    let writes = s.lf.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].path, "/api/public/scim/Users");
    assert_eq!(
        writes[0].body.as_ref().unwrap()["userName"],
        "ana.souza@example.com"
    );

    s.lf.clear_log();
    let report = p.provision(&ana, &d, false).await;
    assert_eq!(report.changes(), 0);
    assert!(s.lf.writes().is_empty(), "{:?}", s.lf.writes());
    assert!(!s.lf.log().is_empty(), "the second login still reads");
}

#[tokio::test]
async fn removed_group_lowers_when_authoritative_and_is_kept_when_additive() {
    for mode in [Mode::Additive, Mode::Authoritative] {
        let s = setup().await;
        let p = s.provisioner(mode);
        let bob = identity("bob@example.com");
        p.provision(&bob, &decision(Role::Admin, &[]), false).await;
        s.lf.set_project_role("analytics", "bob@example.com", Role::Owner);
        s.lf.clear_log();

        // bob left the admin group; only viewer rules match now.
        let report = p.provision(&bob, &decision(Role::Viewer, &[]), false).await;
        match mode {
            Mode::Additive => {
                assert!(s.lf.writes().is_empty());
                assert_eq!(
                    s.lf.org_role("org-acme", "bob@example.com"),
                    Some(Role::Admin)
                );
                assert_eq!(s.lf.project_roles("org-acme", "bob@example.com").len(), 1);
            }
            _ => {
                let r = &report.orgs[0].results;
                assert_eq!(r[0].action.kind, ActionKind::SetOrgRole);
                assert_eq!(
                    (r[0].action.from, r[0].action.to),
                    (Some(Role::Admin), Some(Role::Viewer))
                );
                assert_eq!(r[1].action.kind, ActionKind::RemoveProjectRole);
                assert_eq!(r[1].action.project.as_deref(), Some("analytics"));
                assert_eq!(
                    s.lf.org_role("org-acme", "bob@example.com"),
                    Some(Role::Viewer)
                );
                assert!(s.lf.project_roles("org-acme", "bob@example.com").is_empty());
            }
        }
        // No rule at all any more: authoritative takes the org role to NONE.
        p.provision(&bob, &nothing(), false).await;
        let want = if mode == Mode::Additive {
            Role::Admin
        } else {
            Role::None
        };
        assert_eq!(s.lf.org_role("org-acme", "bob@example.com"), Some(want));
    }
}

#[tokio::test]
async fn the_last_owner_is_never_demoted_but_the_rest_is_applied() {
    let s = setup().await;
    s.lf.add_user("owner@example.com", Some(("org-acme", Role::Owner)));
    let p = s.provisioner(Mode::Authoritative);
    let report = p
        .provision(
            &identity("owner@example.com"),
            &decision(Role::Member, &[("production", Role::Admin)]),
            false,
        )
        .await;
    let r = &report.orgs[0].results;
    assert!(
        matches!(&r[0].status, Status::Refused(why) if why.contains("last OWNER")),
        "{r:?}"
    );
    assert_eq!(r[1].action.kind, ActionKind::SetProjectRole);
    assert_eq!(r[1].status, Status::Applied);
    assert!(
        !report.deny_login(),
        "a refusal by the guard is not an outage"
    );
    assert_eq!(
        s.lf.org_role("org-acme", "owner@example.com"),
        Some(Role::Owner)
    );
    // The guard took and released the organization lock.
    use sso_bridge::store::Namespace;
    assert_eq!(s.store.get(Namespace::OrgLock, "acme").await.unwrap(), None);
}

#[tokio::test]
async fn two_concurrent_demotions_of_the_two_owners_leave_one_owner() {
    let s = setup().await;
    s.lf.add_user("o1@example.com", Some(("org-acme", Role::Owner)));
    s.lf.add_user("o2@example.com", Some(("org-acme", Role::Owner)));
    // Two provisioners = two bridge instances sharing one store; real waits for the lock.
    let a = Arc::new(s.provisioner_with(
        settings(&s.lf.base, Mode::Authoritative, 0),
        Arc::new(TokioSleeper),
    ));
    let b = Arc::new(s.provisioner_with(
        settings(&s.lf.base, Mode::Authoritative, 0),
        Arc::new(TokioSleeper),
    ));
    let d = decision(Role::Admin, &[]);
    let (o1, o2) = (identity("o1@example.com"), identity("o2@example.com"));
    let (ra, rb) = tokio::join!(a.provision(&o1, &d, false), b.provision(&o2, &d, false));
    let statuses = [&ra.orgs[0].results[0].status, &rb.orgs[0].results[0].status];
    assert_eq!(
        statuses.iter().filter(|s| ***s == Status::Applied).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| matches!(s, Status::Refused(_)))
            .count(),
        1
    );
    let owners = [
        s.lf.org_role("org-acme", "o1@example.com"),
        s.lf.org_role("org-acme", "o2@example.com"),
    ];
    assert_eq!(
        owners.iter().filter(|r| **r == Some(Role::Owner)).count(),
        1
    );
}

#[tokio::test]
async fn retries_back_off_and_honour_retry_after_without_waiting() {
    let s = setup().await;
    let p = s.provisioner(Mode::Additive);
    s.lf.inject("/api/public/organizations/projects", Fault::Status(503));
    s.lf.inject(
        "/api/public/organizations/memberships",
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(Role::Viewer, &[]),
            false,
        )
        .await;
    assert!(report.failed().next().is_none());
    let waits = s.sleeper.0.lock().unwrap().clone();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits[0] >= Duration::from_millis(100) && waits[0] <= Duration::from_millis(200));
    assert_eq!(waits[1], Duration::from_secs(2), "Retry-After honoured");

    // A Retry-After longer than a login can wait fails at once.
    s.lf.inject(
        "/api/public/organizations/memberships",
        Fault::RateLimited {
            retry_after_secs: 3600,
        },
    );
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(Role::Admin, &[]),
            false,
        )
        .await;
    let err = report.orgs[0].error.as_ref().unwrap().to_string();
    assert!(err.contains("rate limited"), "{err}");
    assert_eq!(s.sleeper.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn langfuse_down_is_retried_a_bounded_number_of_times() {
    let s = setup().await;
    let dead = format!("http://127.0.0.1:{}", common::servers::free_port());
    let p = s.provisioner_with(settings(&dead, Mode::Additive, 3), s.sleeper.clone());
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(Role::Viewer, &[]),
            false,
        )
        .await;
    assert!(report.deny_login());
    let err = report.orgs[0].error.as_ref().unwrap().to_string();
    assert!(err.starts_with("Langfuse is unavailable"), "{err}");
    let waits = s.sleeper.0.lock().unwrap().clone();
    assert_eq!(waits.len(), 3);
    assert!(
        waits.windows(2).all(|w| w[1] >= w[0] / 2),
        "backoff grows: {waits:?}"
    );
}

#[tokio::test]
async fn missing_licence_is_recognised() {
    let s = setup().await;
    s.lf.set_plan(Plan::NO_LICENCE);
    let p = s.provisioner(Mode::Additive);
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(Role::Viewer, &[]),
            false,
        )
        .await;
    let err = report.orgs[0].error.as_ref().unwrap();
    assert!(err.licence_missing());
    assert!(err.to_string().contains("no Enterprise licence"), "{err}");
    assert!(
        s.sleeper.0.lock().unwrap().is_empty(),
        "a 403 is not retried"
    );
}

#[tokio::test]
async fn partial_failure_records_what_was_applied_and_what_was_not() {
    let s = setup().await;
    let p = s.provisioner_with(settings(&s.lf.base, Mode::Additive, 0), s.sleeper.clone());
    let prod = s.lf.project_id("production");
    s.lf.inject(
        &format!("/api/public/projects/{prod}/memberships"),
        Fault::Status(500),
    );
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(
                Role::None,
                &[("production", Role::Member), ("staging", Role::Viewer)],
            ),
            false,
        )
        .await;
    let o = &report.orgs[0];
    assert!(o.error.is_some(), "{:?} {:?}", o.results, s.lf.log());
    let applied: Vec<_> = o.applied().map(|r| r.action.kind).collect();
    assert_eq!(applied, [ActionKind::CreateUser]);
    let not: Vec<_> = o
        .not_applied()
        .map(|r| (r.action.project.clone(), r.status.clone()))
        .collect();
    assert!(
        matches!(&not[0], (Some(p), Status::Failed(_)) if p == "production"),
        "{not:?}"
    );
    assert_eq!(not[1], (Some("staging".to_owned()), Status::NotAttempted));
}

#[tokio::test]
async fn a_user_pre_provisioned_by_scim_keeps_their_langfuse_id() {
    // Field case 021, pre-provisioned part: the user exists (SCIM-created) before any login.
    let s = setup().await;
    let id =
        s.lf.add_user("ana.souza@example.com", Some(("org-acme", Role::Viewer)));
    let p = s.provisioner(Mode::Additive);
    p.provision(
        &identity("Ana.Souza@Example.com"),
        &decision(Role::Member, &[]),
        false,
    )
    .await;
    assert_eq!(
        s.lf.user_id("ana.souza@example.com").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(s.lf.lock().users.len(), 1, "no duplicate user");
    let writes = s.lf.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].body.as_ref().unwrap()["userId"], id.as_str());

    // A Langfuse user who is not yet a member of this org is reused by SCIM create.
    let other = s.lf.add_user("carol@example.com", None);
    p.provision(
        &identity("carol@example.com"),
        &decision(Role::Viewer, &[]),
        false,
    )
    .await;
    assert_eq!(
        s.lf.org_role("org-acme", "carol@example.com"),
        Some(Role::Viewer)
    );
    assert_eq!(s.lf.user_id("carol@example.com"), Some(other));
}

#[tokio::test]
async fn project_names_resolve_through_a_cache_refreshed_on_a_miss() {
    let s = setup().await;
    let p = s.provisioner(Mode::Additive);
    let ana = identity("ana@example.com");
    p.provision(
        &ana,
        &decision(Role::None, &[("production", Role::Member)]),
        false,
    )
    .await;
    s.lf.clear_log();
    p.provision(
        &ana,
        &decision(Role::None, &[("production", Role::Member)]),
        false,
    )
    .await;
    assert!(
        !s.lf
            .log()
            .iter()
            .any(|l| l.path.ends_with("/organizations/projects")),
        "cached"
    );

    // A project created after the cache was filled is found by a refresh.
    {
        let mut w = s.lf.lock();
        w.projects.push(common::langfuse_double::Project {
            id: "proj-new".into(),
            name: "new-project".into(),
            org: "org-acme".into(),
            deleted: false,
            memberships: Default::default(),
        });
    }
    let report = p
        .provision(
            &ana,
            &decision(
                Role::None,
                &[("new-project", Role::Admin), ("typo", Role::Admin)],
            ),
            false,
        )
        .await;
    assert_eq!(
        s.lf.project_roles("org-acme", "ana@example.com")
            .get("new-project"),
        Some(&Role::Admin)
    );
    let refused: Vec<_> = report.orgs[0]
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Refused(_)))
        .map(|r| r.action.project.clone().unwrap())
        .collect();
    assert_eq!(refused, ["typo"]);
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    let s = setup().await;
    let p = s.provisioner(Mode::Authoritative);
    let report = p
        .provision(
            &identity("ana@example.com"),
            &decision(Role::Admin, &[]),
            true,
        )
        .await;
    assert_eq!(report.orgs[0].results[0].status, Status::Planned);
    assert!(s.lf.writes().is_empty());
}
