//! Group → role rules as data. A rule matches a group exactly, by prefix, or by regex (whose
//! named captures can fill in project names and roles), optionally only for one connection, and
//! then denies the login, grants an organization role and/or project roles, or caps projects.

use regex::Regex;

use super::role::Role;

#[derive(Debug, Clone)]
pub enum GroupMatcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

/// A project entry whose name and role may contain `{capture}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectTemplate {
    pub project: String,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The operator's name for the rule, or `rules[N]`; every decision cites it.
    pub label: String,
    pub matcher: GroupMatcher,
    /// Only identities from this connection.
    pub connection: Option<String>,
    pub deny: bool,
    pub org: Option<String>,
    pub org_role: Option<Role>,
    pub projects: Vec<ProjectTemplate>,
    pub caps: Vec<ProjectTemplate>,
}

/// What happens to an identity that no grant rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmatched {
    Deny,
    Grant { org: String, role: Role },
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub unmatched: Unmatched,
}

/// The captures of one match (empty for exact and prefix matchers).
pub type Captures = Vec<(String, String)>;

impl GroupMatcher {
    /// Every way this matcher matches `group`: `None` if it does not.
    pub fn matches(&self, group: &str) -> Option<Captures> {
        match self {
            GroupMatcher::Exact(g) => (g == group).then(Vec::new),
            GroupMatcher::Prefix(p) => group.starts_with(p.as_str()).then(Vec::new),
            GroupMatcher::Regex(re) => {
                let caps = re.captures(group)?;
                // A regex rule is anchored to the whole group name, so `admin` never matches
                // `not-admin-really` by accident.
                if caps.get(0).map(|m| m.as_str().len()) != Some(group.len()) {
                    return None;
                }
                Some(
                    re.capture_names()
                        .flatten()
                        .filter_map(|n| caps.name(n).map(|m| (n.to_owned(), m.as_str().to_owned())))
                        .collect(),
                )
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            GroupMatcher::Exact(g) => format!("group = {g:?}"),
            GroupMatcher::Prefix(p) => format!("group_prefix = {p:?}"),
            GroupMatcher::Regex(r) => format!("group_regex = {:?}", r.as_str()),
        }
    }
}

/// Fills `{name}` placeholders from captures; `None` when one is missing.
pub fn expand(template: &str, captures: &Captures) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 1..end];
        let value = captures.iter().find(|(k, _)| k == name)?;
        out.push_str(&value.1);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The placeholder names a template uses.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        names.push(rest[start + 1..start + end].to_owned());
        rest = &rest[start + end + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(GroupMatcher::Exact("a".into()).matches("a").is_some());
        assert!(GroupMatcher::Exact("a".into()).matches("A").is_none());
        assert!(GroupMatcher::Prefix("lf-".into()).matches("lf-x").is_some());
        assert!(GroupMatcher::Prefix("lf-".into())
            .matches("xlf-x")
            .is_none());
        let re = GroupMatcher::Regex(
            Regex::new("lf-(?P<project>.+)-(?P<role>viewer|member|admin)").unwrap(),
        );
        let caps = re.matches("lf-chatbot-prod-admin").unwrap();
        assert_eq!(
            caps,
            vec![
                ("project".into(), "chatbot-prod".into()),
                ("role".into(), "admin".into())
            ]
        );
        assert!(
            re.matches("xlf-chatbot-admin").is_none(),
            "anchored at the start"
        );
        assert!(
            re.matches("lf-chatbot-admins").is_none(),
            "anchored at the end"
        );
    }

    #[test]
    fn templates() {
        let caps = vec![("project".to_string(), "prod".to_string())];
        assert_eq!(expand("{project}", &caps).as_deref(), Some("prod"));
        assert_eq!(
            expand("team-{project}-x", &caps).as_deref(),
            Some("team-prod-x")
        );
        assert_eq!(expand("{role}", &caps), None);
        assert_eq!(expand("plain", &caps).as_deref(), Some("plain"));
        assert_eq!(placeholders("{a}-{b}"), vec!["a", "b"]);
    }
}
