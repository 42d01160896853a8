//! The rule engine: identity facts + rules → a decision that cites the rule behind every part.
//!
//! Semantics (DESIGN.md §10): every rule is evaluated; a matching deny refuses the login; grants
//! combine by highest role per organization and per project; a project's effective role is the
//! highest of its organization role and its project grants, lowered to the lowest cap that
//! applies to it; a project membership is written only where the effective role differs from
//! the organization role; a user matched only by project rules gets organization role NONE; an
//! identity no grant rule matches gets the configured default.

use std::collections::BTreeMap;

use serde::Serialize;

use super::role::Role;
use super::rules::{expand, Captures, ProjectTemplate, RuleSet, Unmatched};

/// What the policy needs to know about a login.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub connection: &'a str,
    pub groups: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial: Option<Denial>,
    pub orgs: Vec<OrgDecision>,
    /// Labels of every rule that matched, in rule order.
    pub matched_rules: Vec<String>,
    /// Matches that produced nothing usable (e.g. a captured role that is not a role).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub reason: DenialReason,
    /// The deny rule, when one decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialReason {
    DenyRule,
    NoMatchingRule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgDecision {
    pub org: String,
    pub role: Role,
    /// Rules that produced the organization role (empty when NONE came from project rules only).
    pub role_from: Vec<String>,
    pub projects: Vec<ProjectDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectDecision {
    pub project: String,
    /// The role the user has in the project.
    pub role: Role,
    /// A project membership must be written (the role differs from the organization role).
    pub write_membership: bool,
    pub granted_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_by: Option<String>,
}

/// The label used when the unmatched default grants access.
pub const DEFAULT_RULE: &str = "policy.unmatched";

#[derive(Default)]
struct OrgAcc {
    role: Option<(Role, Vec<String>)>,
    projects: BTreeMap<String, ProjAcc>,
}

#[derive(Default)]
struct ProjAcc {
    grant: Option<(Role, Vec<String>)>,
    cap: Option<(Role, String)>,
}

fn raise(slot: &mut Option<(Role, Vec<String>)>, role: Role, label: &str) {
    match slot {
        Some((r, from)) if *r == role => {
            if !from.iter().any(|f| f == label) {
                from.push(label.to_owned());
            }
        }
        Some((r, _)) if *r > role => {}
        _ => *slot = Some((role, vec![label.to_owned()])),
    }
}

/// Decides a login. Pure: same input, same decision.
pub fn decide(facts: &Facts<'_>, rules: &RuleSet) -> Decision {
    let mut orgs: BTreeMap<String, OrgAcc> = BTreeMap::new();
    let mut matched = Vec::new();
    let mut notes = Vec::new();
    let mut deny_rule: Option<String> = None;
    let mut granted = false;

    for rule in &rules.rules {
        if rule
            .connection
            .as_deref()
            .is_some_and(|c| c != facts.connection)
        {
            continue;
        }
        let matches: Vec<Captures> = facts
            .groups
            .iter()
            .filter_map(|g| rule.matcher.matches(g))
            .collect();
        if matches.is_empty() {
            continue;
        }
        matched.push(rule.label.clone());
        if rule.deny {
            deny_rule.get_or_insert_with(|| rule.label.clone());
            continue;
        }
        let Some(org) = &rule.org else { continue };
        let acc = orgs.entry(org.clone()).or_default();
        if let Some(role) = rule.org_role {
            raise(&mut acc.role, role, &rule.label);
            granted = true;
        }
        for caps in &matches {
            for (project, role) in expand_all(&rule.projects, caps, &rule.label, &mut notes) {
                raise(
                    &mut acc.projects.entry(project).or_default().grant,
                    role,
                    &rule.label,
                );
                granted = true;
            }
            for (project, role) in expand_all(&rule.caps, caps, &rule.label, &mut notes) {
                let cap = &mut acc.projects.entry(project).or_default().cap;
                if cap.as_ref().is_none_or(|(r, _)| role < *r) {
                    *cap = Some((role, rule.label.clone()));
                }
            }
        }
    }

    if let Some(rule) = deny_rule {
        return Decision {
            allowed: false,
            denial: Some(Denial {
                reason: DenialReason::DenyRule,
                rule: Some(rule),
            }),
            orgs: Vec::new(),
            matched_rules: matched,
            notes,
        };
    }
    if !granted {
        match &rules.unmatched {
            Unmatched::Deny => {
                return Decision {
                    allowed: false,
                    denial: Some(Denial {
                        reason: DenialReason::NoMatchingRule,
                        rule: None,
                    }),
                    orgs: Vec::new(),
                    matched_rules: matched,
                    notes,
                }
            }
            Unmatched::Grant { org, role } => {
                raise(
                    &mut orgs.entry(org.clone()).or_default().role,
                    *role,
                    DEFAULT_RULE,
                );
            }
        }
    }

    let orgs = orgs
        .into_iter()
        .filter(|(_, acc)| acc.role.is_some() || acc.projects.values().any(|p| p.grant.is_some()))
        .map(|(org, acc)| finish_org(org, acc))
        .collect();
    Decision {
        allowed: true,
        denial: None,
        orgs,
        matched_rules: matched,
        notes,
    }
}

fn finish_org(org: String, acc: OrgAcc) -> OrgDecision {
    let (role, role_from) = acc.role.unwrap_or((Role::None, Vec::new()));
    let projects = acc
        .projects
        .into_iter()
        .filter_map(|(project, p)| {
            let (granted, granted_by) = match p.grant {
                Some((r, from)) if r > role => (r, from),
                // A grant at or below the org role changes nothing; it is still cited.
                Some((_, from)) => (role, from),
                None => (role, Vec::new()),
            };
            let (effective, capped_by) = match p.cap {
                Some((cap, label)) if cap < granted => (cap, Some(label)),
                _ => (granted, None),
            };
            if granted_by.is_empty() && capped_by.is_none() {
                return None;
            }
            Some(ProjectDecision {
                project,
                role: effective,
                write_membership: effective != role,
                granted_by,
                capped_by,
            })
        })
        .collect();
    OrgDecision {
        org,
        role,
        role_from,
        projects,
    }
}

fn expand_all(
    templates: &[ProjectTemplate],
    caps: &Captures,
    label: &str,
    notes: &mut Vec<String>,
) -> Vec<(String, Role)> {
    let mut out = Vec::new();
    for t in templates {
        let project = expand(&t.project, caps).filter(|p| !p.is_empty());
        let role = expand(&t.role, caps);
        match (project, role.as_deref().and_then(Role::parse)) {
            (Some(p), Some(r)) => out.push((p, r)),
            (p, _) => notes.push(format!(
                "{label}: {} / {} did not give a project and a role",
                p.unwrap_or_else(|| t.project.clone()),
                role.unwrap_or_else(|| t.role.clone())
            )),
        }
    }
    out
}
