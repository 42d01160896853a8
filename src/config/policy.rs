//! The access-policy part of the config: Langfuse organizations and their projects, the group →
//! role rules, and what happens to users no rule matches. Resolved into `policy::RuleSet`, with
//! errors naming the key and lints for what an access review would question.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use super::{ConfigError, Connection, Lint};
use crate::policy::role::Role;
use crate::policy::rules::{placeholders, GroupMatcher, ProjectTemplate, Rule, RuleSet, Unmatched};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// "deny" (recommended) or "grant".
    #[serde(default = "deny")]
    pub unmatched: String,
    pub unmatched_org: Option<String>,
    pub unmatched_role: Option<String>,
    /// Show denied users the names of the groups that would grant access.
    #[serde(default)]
    pub list_groups_on_denial: bool,
}

fn deny() -> String {
    "deny".into()
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            unmatched: deny(),
            unmatched_org: None,
            unmatched_role: None,
            list_groups_on_denial: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangfuseSection {
    /// Langfuse's base URL, for the admin API; required once an organization provisions.
    pub url: Option<String>,
    /// Timeout of one admin API request.
    pub timeout_secs: Option<u64>,
    /// Retries of a request on 429, 5xx or a connection error.
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub organizations: Vec<OrganizationSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSection {
    /// The alias rules use.
    pub id: String,
    /// Project names (or ids) rules may name; used to catch typos.
    #[serde(default)]
    pub projects: Vec<String>,
    /// "off" (default), "additive" or "authoritative".
    pub provisioning: Option<String>,
    /// "deny" (default) or "allow": what a login does when provisioning fails.
    pub on_error: Option<String>,
    /// The organization API key (public part); "${ENV}" allowed.
    pub public_key: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub name: Option<String>,
    pub group: Option<String>,
    pub group_prefix: Option<String>,
    pub group_regex: Option<String>,
    pub connection: Option<String>,
    #[serde(default)]
    pub deny: bool,
    pub org: Option<String>,
    pub org_role: Option<String>,
    #[serde(default)]
    pub projects: BTreeMap<String, String>,
    #[serde(default)]
    pub cap: BTreeMap<String, String>,
}

/// A known Langfuse organization, as rules refer to it.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub projects: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub rules: RuleSet,
    pub list_groups_on_denial: bool,
    pub organizations: Vec<Organization>,
}

impl PolicySettings {
    /// Exact group names that grant access, for the denial page (when allowed to show them).
    pub fn granting_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rules
            .rules
            .iter()
            .filter(|r| !r.deny && (r.org_role.is_some() || !r.projects.is_empty()))
            .filter_map(|r| match &r.matcher {
                GroupMatcher::Exact(g) => Some(g.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Group names that look like "everyone": an OWNER grant to them is flagged.
const BROAD_GROUPS: &[&str] = &[
    "everyone",
    "all",
    "users",
    "all users",
    "domain users",
    "employees",
    "staff",
    "all-staff",
    "all-employees",
];

pub(super) fn resolve(
    policy: &PolicySection,
    langfuse: &LangfuseSection,
    rules: &[RuleSection],
    connections: &[Connection],
    lints: &mut Vec<Lint>,
) -> Result<PolicySettings, ConfigError> {
    let mut orgs: Vec<Organization> = Vec::new();
    for (i, o) in langfuse.organizations.iter().enumerate() {
        let key = format!("langfuse.organizations[{i}].id");
        if o.id.is_empty() || orgs.iter().any(|x| x.id == o.id) {
            return Err(ConfigError::new(key, "must be non-empty and unique"));
        }
        orgs.push(Organization {
            id: o.id.clone(),
            projects: o.projects.clone(),
        });
    }

    let mut resolved = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        resolved.push(resolve_rule(i, r, &orgs, connections, lints)?);
    }
    lint_rules(&resolved, lints);

    let unmatched = match policy.unmatched.as_str() {
        "deny" => {
            if policy.unmatched_org.is_some() || policy.unmatched_role.is_some() {
                return Err(ConfigError::new(
                    "policy.unmatched_role",
                    "only used with unmatched = \"grant\"",
                ));
            }
            Unmatched::Deny
        }
        "grant" => {
            let org = policy.unmatched_org.clone().ok_or_else(|| {
                ConfigError::new(
                    "policy.unmatched_org",
                    "required with unmatched = \"grant\"",
                )
            })?;
            if !orgs.iter().any(|o| o.id == org) {
                return Err(ConfigError::new(
                    "policy.unmatched_org",
                    format!("no [[langfuse.organizations]] has id {org:?}"),
                ));
            }
            let role_text = policy.unmatched_role.as_deref().unwrap_or("VIEWER");
            let role = Role::parse(role_text).ok_or_else(|| {
                ConfigError::new(
                    "policy.unmatched_role",
                    format!("{role_text:?} is not OWNER, ADMIN, MEMBER, VIEWER or NONE"),
                )
            })?;
            if role > Role::Viewer {
                lints.push(Lint {
                    key: "policy.unmatched_role".into(),
                    message: format!("users no rule matches get {role}; the least-privilege default is deny (or VIEWER)"),
                });
            }
            Unmatched::Grant { org, role }
        }
        other => {
            return Err(ConfigError::new(
                "policy.unmatched",
                format!("{other:?}: use \"deny\" or \"grant\""),
            ))
        }
    };
    if resolved.is_empty() && unmatched == Unmatched::Deny && !connections.is_empty() {
        lints.push(Lint {
            key: "rules".into(),
            message: "there are no rules and unmatched users are denied: nobody can log in".into(),
        });
    }
    for (i, c) in connections.iter().enumerate() {
        if !c.enforce_sso {
            lints.push(Lint {
                key: format!("connections[{i}].enforce_sso"),
                message: format!(
                    "is false: users of {} can still use Langfuse passwords, bypassing the IdP",
                    c.domains
                        .iter()
                        .map(|d| d.domain.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(PolicySettings {
        rules: RuleSet {
            rules: resolved,
            unmatched,
        },
        list_groups_on_denial: policy.list_groups_on_denial,
        organizations: orgs,
    })
}

fn resolve_rule(
    i: usize,
    r: &RuleSection,
    orgs: &[Organization],
    connections: &[Connection],
    lints: &mut Vec<Lint>,
) -> Result<Rule, ConfigError> {
    let key = format!("rules[{i}]");
    let label = r.name.clone().unwrap_or_else(|| key.clone());
    let matcher = match (&r.group, &r.group_prefix, &r.group_regex) {
        (Some(g), None, None) if !g.is_empty() => GroupMatcher::Exact(g.clone()),
        (None, Some(p), None) if !p.is_empty() => GroupMatcher::Prefix(p.clone()),
        (None, None, Some(re)) => GroupMatcher::Regex(Regex::new(re).map_err(|e| {
            ConfigError::new(format!("{key}.group_regex"), format!("invalid regex: {e}"))
        })?),
        _ => {
            return Err(ConfigError::new(
                &key,
                "give exactly one non-empty matcher: group, group_prefix or group_regex",
            ))
        }
    };
    if let Some(c) = &r.connection {
        if !connections.iter().any(|x| &x.id == c) {
            return Err(ConfigError::new(
                format!("{key}.connection"),
                format!("no connection has id {c:?}: this rule could never match"),
            ));
        }
    }
    if r.deny {
        if r.org.is_some() || r.org_role.is_some() || !r.projects.is_empty() || !r.cap.is_empty() {
            return Err(ConfigError::new(
                &key,
                "a deny rule grants nothing: remove org, org_role, projects and cap",
            ));
        }
        return Ok(Rule {
            label,
            matcher,
            connection: r.connection.clone(),
            deny: true,
            org: None,
            org_role: None,
            projects: vec![],
            caps: vec![],
        });
    }
    let org_id = r
        .org
        .clone()
        .ok_or_else(|| ConfigError::new(format!("{key}.org"), "required (or deny = true)"))?;
    let org = orgs.iter().find(|o| o.id == org_id).ok_or_else(|| {
        ConfigError::new(
            format!("{key}.org"),
            format!("no [[langfuse.organizations]] has id {org_id:?}"),
        )
    })?;
    if r.org_role.is_none() && r.projects.is_empty() && r.cap.is_empty() {
        return Err(ConfigError::new(
            &key,
            "grants nothing: set org_role, projects, cap or deny",
        ));
    }
    let org_role = r
        .org_role
        .as_deref()
        .map(|t| {
            Role::parse(t).ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.org_role"),
                    format!("{t:?} is not OWNER, ADMIN, MEMBER, VIEWER or NONE"),
                )
            })
        })
        .transpose()?;
    let capture_names: Vec<String> = match &matcher {
        GroupMatcher::Regex(re) => re.capture_names().flatten().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let templates = |table: &BTreeMap<String, String>,
                     what: &str,
                     lints: &mut Vec<Lint>|
     -> Result<Vec<ProjectTemplate>, ConfigError> {
        let mut out = Vec::new();
        for (project, role) in table {
            let k = format!("{key}.{what}.{project}");
            for name in placeholders(project).into_iter().chain(placeholders(role)) {
                if !capture_names.contains(&name) {
                    return Err(ConfigError::new(
                        &k,
                        format!("{{{name}}} is not a named capture of group_regex"),
                    ));
                }
            }
            if placeholders(role).is_empty() && Role::parse(role).is_none() {
                return Err(ConfigError::new(
                    &k,
                    format!("{role:?} is not OWNER, ADMIN, MEMBER, VIEWER or NONE"),
                ));
            }
            if placeholders(project).is_empty() && !org.projects.iter().any(|p| p == project) {
                lints.push(Lint {
                    key: k.clone(),
                    message: format!(
                        "project {project:?} is not listed in organization {:?}'s projects ({})",
                        org.id,
                        org.projects.join(", ")
                    ),
                });
            }
            out.push(ProjectTemplate {
                project: project.clone(),
                role: role.clone(),
            });
        }
        Ok(out)
    };
    let projects = templates(&r.projects, "projects", lints)?;
    let caps = templates(&r.cap, "cap", lints)?;
    Ok(Rule {
        label,
        matcher,
        connection: r.connection.clone(),
        deny: false,
        org: Some(org_id),
        org_role,
        projects,
        caps,
    })
}

fn lint_rules(rules: &[Rule], lints: &mut Vec<Lint>) {
    for (i, r) in rules.iter().enumerate() {
        let owner = r.org_role == Some(Role::Owner)
            || r.projects
                .iter()
                .any(|p| Role::parse(&p.role) == Some(Role::Owner));
        let broad = match &r.matcher {
            GroupMatcher::Exact(g) => BROAD_GROUPS.contains(&g.to_ascii_lowercase().as_str()),
            GroupMatcher::Prefix(_) | GroupMatcher::Regex(_) => true,
        };
        if owner && broad {
            lints.push(Lint {
                key: format!("rules[{i}]"),
                message: format!(
                    "grants OWNER to a broad match ({}); give OWNER to a small, named group",
                    r.matcher.describe()
                ),
            });
        }
        if let GroupMatcher::Exact(g) = &r.matcher {
            let shadowed = !r.deny
                && rules.iter().any(|d| {
                    d.deny
                        && matches!(&d.matcher, GroupMatcher::Exact(x) if x == g)
                        && (d.connection.is_none() || d.connection == r.connection)
                });
            if shadowed {
                lints.push(Lint {
                    key: format!("rules[{i}]"),
                    message: format!(
                        "can never take effect: a deny rule matches the same group {g:?}"
                    ),
                });
            }
        }
    }
}
