//! The diff: what the policy wants for one organization against what Langfuse has, as an
//! ordered list of actions in the order the API needs them (user and organization membership
//! first — Langfuse refuses a project membership without one — then project writes, then
//! removals). Pure: no I/O, so every mode × state combination is a table test.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Mode;
use crate::policy::Role;

/// A user's membership in the organization, as Langfuse has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub member: Option<Member>,
    /// The user's explicit project overrides, by project id.
    pub project_roles: BTreeMap<String, Role>,
}

/// What the rules give the user in the organization (ids already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedOrg {
    pub role: Role,
    /// The rules behind the organization role (for the audit trail).
    pub rule: String,
    pub projects: Vec<WantedProject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedProject {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// An override must exist (the role differs from the organization role).
    pub write: bool,
    /// The role comes from an explicit cap rule (applied even in additive mode: a cap is a
    /// rule, not a removal of access no rule mentions).
    pub capped: bool,
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// SCIM create: the user becomes a member with the wanted organization role.
    CreateUser,
    SetOrgRole,
    SetProjectRole,
    RemoveProjectRole,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::CreateUser => "create_user",
            ActionKind::SetOrgRole => "set_org_role",
            ActionKind::SetProjectRole => "set_project_role",
            ActionKind::RemoveProjectRole => "remove_project_role",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    /// Project name (and id) for project actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip)]
    pub project_id: Option<String>,
    pub from: Option<Role>,
    pub to: Option<Role>,
    pub rule: String,
    pub reason: String,
}

impl Action {
    /// Whether this action can take OWNER away from someone (the last-owner guard applies).
    pub fn demotes_owner(&self) -> bool {
        self.kind == ActionKind::SetOrgRole
            && self.from == Some(Role::Owner)
            && self.to != Some(Role::Owner)
    }

    /// One line for plans and logs: `set_org_role MEMBER → ADMIN [admins]`.
    pub fn describe(&self) -> String {
        let role = |r: Option<Role>| r.map(Role::as_str).unwrap_or("-");
        let target = self
            .project
            .as_deref()
            .map(|p| format!(" project {p}"))
            .unwrap_or_default();
        format!(
            "{}{target} {} → {} [{}] ({})",
            self.kind.as_str(),
            role(self.from),
            role(self.to),
            self.rule,
            self.reason
        )
    }
}

/// The label used on removals that authoritative mode makes because no rule grants the role.
pub const AUTHORITATIVE: &str = "provisioning = authoritative";

/// Diffs one organization. `names` maps project id → name for overrides no rule mentions.
pub fn plan(
    mode: Mode,
    wanted: Option<&WantedOrg>,
    current: &Current,
    names: &BTreeMap<String, String>,
) -> Vec<Action> {
    let mut out = Vec::new();
    if mode == Mode::Off {
        return out;
    }
    let authoritative = mode == Mode::Authoritative;
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());

    let Some(w) = wanted else {
        // No rule gives anything here: only authoritative mode takes existing access away.
        if let (true, Some(m)) = (authoritative, &current.member) {
            if m.role != Role::None {
                out.push(Action {
                    kind: ActionKind::SetOrgRole,
                    project: None,
                    project_id: None,
                    from: Some(m.role),
                    to: Some(Role::None),
                    rule: AUTHORITATIVE.into(),
                    reason: "no rule grants a role in this organization".into(),
                });
            }
            for (id, role) in &current.project_roles {
                out.push(remove(id, name_of(id), *role));
            }
        }
        return out;
    };

    match &current.member {
        None => out.push(Action {
            kind: ActionKind::CreateUser,
            project: None,
            project_id: None,
            from: None,
            to: Some(w.role),
            rule: w.rule.clone(),
            reason: "not yet a member of the organization".into(),
        }),
        Some(m) if m.role == w.role => {}
        Some(m) if w.role > m.role || authoritative => out.push(Action {
            kind: ActionKind::SetOrgRole,
            project: None,
            project_id: None,
            from: Some(m.role),
            to: Some(w.role),
            rule: w.rule.clone(),
            reason: if w.role > m.role {
                format!("rules grant {}", w.role)
            } else {
                format!("rules grant only {}", w.role)
            },
        }),
        // Additive never lowers.
        Some(_) => {}
    }

    let mut removals = Vec::new();
    for p in &w.projects {
        let have = current.project_roles.get(&p.id).copied();
        if p.write {
            let write = match have {
                Some(h) if h == p.role => false,
                None => true,
                Some(h) => authoritative || p.capped || p.role > h,
            };
            if write {
                out.push(Action {
                    kind: ActionKind::SetProjectRole,
                    project: Some(p.name.clone()),
                    project_id: Some(p.id.clone()),
                    from: have,
                    to: Some(p.role),
                    rule: p.rule.clone(),
                    reason: if p.capped {
                        format!("capped to {}", p.role)
                    } else {
                        format!("rules grant {} in this project", p.role)
                    },
                });
            }
        } else if let (true, Some(h)) = (authoritative, have) {
            // The organization role already gives exactly this: the override is redundant or
            // wrong either way.
            removals.push(remove(&p.id, p.name.clone(), h));
        }
    }
    if authoritative {
        for (id, role) in &current.project_roles {
            if !w.projects.iter().any(|p| &p.id == id) {
                removals.push(remove(id, name_of(id), *role));
            }
        }
    }
    out.extend(removals);
    out
}

fn remove(id: &str, name: String, from: Role) -> Action {
    Action {
        kind: ActionKind::RemoveProjectRole,
        project: Some(name),
        project_id: Some(id.to_owned()),
        from: Some(from),
        to: None,
        rule: AUTHORITATIVE.into(),
        reason: "no rule grants a project role here; the organization role applies".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(role: Role, projects: &[(&str, Role, bool, bool)]) -> WantedOrg {
        WantedOrg {
            role,
            rule: "r".into(),
            projects: projects
                .iter()
                .map(|(id, r, write, capped)| WantedProject {
                    id: (*id).into(),
                    name: format!("name-{id}"),
                    role: *r,
                    write: *write,
                    capped: *capped,
                    rule: "p".into(),
                })
                .collect(),
        }
    }

    fn member(role: Role, overrides: &[(&str, Role)]) -> Current {
        Current {
            member: Some(super::Member {
                user_id: "u1".into(),
                role,
            }),
            project_roles: overrides.iter().map(|(i, r)| ((*i).into(), *r)).collect(),
        }
    }

    fn kinds(a: &[Action]) -> Vec<(ActionKind, Option<Role>, Option<Role>)> {
        a.iter().map(|a| (a.kind, a.from, a.to)).collect()
    }

    use ActionKind::*;
    use Role::{Admin, Owner, Viewer};

    #[test]
    fn new_user_is_created_with_the_org_role_then_project_rows() {
        let w = wanted(Role::None, &[("p1", Role::Member, true, false)]);
        let a = plan(
            Mode::Additive,
            Some(&w),
            &Current::default(),
            &BTreeMap::new(),
        );
        assert_eq!(
            kinds(&a),
            [
                (CreateUser, None, Some(Role::None)),
                (SetProjectRole, None, Some(Role::Member))
            ]
        );
    }

    #[test]
    fn matching_state_plans_nothing_in_either_mode() {
        let w = wanted(
            Viewer,
            &[
                ("p1", Role::Member, true, false),
                ("p2", Viewer, false, false),
            ],
        );
        let c = member(Viewer, &[("p1", Role::Member)]);
        for mode in [Mode::Additive, Mode::Authoritative] {
            assert!(plan(mode, Some(&w), &c, &BTreeMap::new()).is_empty());
        }
        assert!(plan(Mode::Off, Some(&w), &Current::default(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn lower_wanted_role_is_applied_only_when_authoritative() {
        let w = wanted(Viewer, &[]);
        let c = member(Admin, &[("p9", Role::Member)]);
        assert!(plan(Mode::Additive, Some(&w), &c, &BTreeMap::new()).is_empty());
        let names = BTreeMap::from([("p9".to_owned(), "analytics".to_owned())]);
        let a = plan(Mode::Authoritative, Some(&w), &c, &names);
        assert_eq!(
            kinds(&a),
            [
                (SetOrgRole, Some(Admin), Some(Viewer)),
                (RemoveProjectRole, Some(Role::Member), None)
            ]
        );
        assert_eq!(a[1].project.as_deref(), Some("analytics"));
    }

    #[test]
    fn raising_applies_in_both_modes() {
        let w = wanted(Admin, &[("p1", Owner, true, false)]);
        let c = member(Role::Member, &[("p1", Viewer)]);
        for mode in [Mode::Additive, Mode::Authoritative] {
            assert_eq!(
                kinds(&plan(mode, Some(&w), &c, &BTreeMap::new())),
                [
                    (SetOrgRole, Some(Role::Member), Some(Admin)),
                    (SetProjectRole, Some(Viewer), Some(Owner))
                ]
            );
        }
    }

    #[test]
    fn caps_apply_in_additive_mode_other_lowerings_do_not() {
        let capped = wanted(Admin, &[("p1", Viewer, true, true)]);
        let c = member(Admin, &[("p1", Role::Member)]);
        assert_eq!(
            kinds(&plan(Mode::Additive, Some(&capped), &c, &BTreeMap::new())),
            [(SetProjectRole, Some(Role::Member), Some(Viewer))]
        );
        let lower = wanted(Viewer, &[("p1", Role::Member, true, false)]);
        let c = member(Viewer, &[("p1", Admin)]);
        assert!(plan(Mode::Additive, Some(&lower), &c, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn unwanted_org_is_emptied_only_when_authoritative() {
        let c = member(Role::Member, &[("p1", Admin)]);
        assert!(plan(Mode::Additive, None, &c, &BTreeMap::new()).is_empty());
        assert_eq!(
            kinds(&plan(Mode::Authoritative, None, &c, &BTreeMap::new())),
            [
                (SetOrgRole, Some(Role::Member), Some(Role::None)),
                (RemoveProjectRole, Some(Admin), None)
            ]
        );
        assert!(plan(
            Mode::Authoritative,
            None,
            &Current::default(),
            &BTreeMap::new()
        )
        .is_empty());
    }

    #[test]
    fn owner_demotion_is_flagged_for_the_guard() {
        let a = plan(
            Mode::Authoritative,
            Some(&wanted(Admin, &[])),
            &member(Owner, &[]),
            &BTreeMap::new(),
        );
        assert!(a[0].demotes_owner());
        let a = plan(
            Mode::Authoritative,
            Some(&wanted(Owner, &[])),
            &member(Admin, &[]),
            &BTreeMap::new(),
        );
        assert!(!a[0].demotes_owner());
    }
}
