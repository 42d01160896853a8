//! The rule engine, table-driven (it is pure, so hundreds of cases cost nothing) and by
//! property: adding a grant rule never lowers anyone's effective role.

use proptest::prelude::*;
use sso_bridge::policy::decide::DenialReason;
use sso_bridge::policy::role::Role;
use sso_bridge::policy::rules::{GroupMatcher, ProjectTemplate, Rule, RuleSet, Unmatched};
use sso_bridge::policy::{decide, Decision, Facts};

/// The example config's rules, plus a connection-scoped one.
const RULES: &str = r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[policy]
unmatched = "deny"
[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging", "analytics"]
[[langfuse.organizations]]
id = "beta"
projects = ["web"]
[[rules]]
name = "admins"
group = "langfuse-admins"
org = "acme"
org_role = "ADMIN"
[[rules]]
name = "ml"
group = "ml-engineers"
org = "acme"
org_role = "MEMBER"
cap = { production = "VIEWER" }
[[rules]]
name = "oncall"
group = "prod-oncall"
org = "acme"
projects = { production = "MEMBER" }
[[rules]]
name = "analysts"
group = "data-analysts"
org = "acme"
org_role = "VIEWER"
projects = { analytics = "MEMBER" }
[[rules]]
name = "per-project"
group_regex = "lf-(?P<project>[a-z0-9-]+)-(?P<role>viewer|member|admin)"
org = "acme"
projects = { "{project}" = "{role}" }
[[rules]]
name = "owners"
group = "acme-owners"
org = "acme"
org_role = "OWNER"
[[rules]]
name = "beta-staff"
group_prefix = "beta-"
org = "beta"
org_role = "MEMBER"
[[rules]]
name = "offboarded"
group = "contractors-offboarded"
deny = true
"#;

fn rules() -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    sso_bridge::config::from_toml(RULES, dir.path(), &|_| None)
        .unwrap()
        .policy
        .rules
}

/// A compact, complete rendering of a decision: `DENY:<reason>` or org roles and projects,
/// with `*` where a project membership is written.
fn summary(d: &Decision) -> String {
    if let Some(den) = &d.denial {
        return match den.reason {
            DenialReason::DenyRule => format!("DENY:rule:{}", den.rule.clone().unwrap_or_default()),
            DenialReason::NoMatchingRule => "DENY:unmatched".into(),
        };
    }
    d.orgs
        .iter()
        .map(|o| {
            let projects: Vec<String> = o
                .projects
                .iter()
                .map(|p| {
                    format!(
                        "{}={}{}",
                        p.project,
                        p.role,
                        if p.write_membership { "*" } else { "" }
                    )
                })
                .collect();
            if projects.is_empty() {
                format!("{}={}", o.org, o.role)
            } else {
                format!("{}={} [{}]", o.org, o.role, projects.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn run(rs: &RuleSet, groups: &[&str]) -> Decision {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    decide(
        &Facts {
            connection: "acme-okta",
            groups: &groups,
        },
        rs,
    )
}

#[test]
fn table_of_decisions() {
    let rs = rules();
    let table: &[(&[&str], &str)] = &[
        (&[], "DENY:unmatched"),
        (&["unrelated"], "DENY:unmatched"),
        (&["LANGFUSE-ADMINS"], "DENY:unmatched"),
        (&["langfuse-admins"], "acme=ADMIN"),
        (&["langfuse-admins", "unrelated"], "acme=ADMIN"),
        (&["ml-engineers"], "acme=MEMBER [production=VIEWER*]"),
        (&["prod-oncall"], "acme=NONE [production=MEMBER*]"),
        (&["data-analysts"], "acme=VIEWER [analytics=MEMBER*]"),
        (
            &["langfuse-admins", "data-analysts"],
            "acme=ADMIN [analytics=ADMIN]",
        ),
        (
            &["langfuse-admins", "ml-engineers"],
            "acme=ADMIN [production=VIEWER*]",
        ),
        (
            &["langfuse-admins", "prod-oncall"],
            "acme=ADMIN [production=ADMIN]",
        ),
        (
            &["ml-engineers", "prod-oncall"],
            "acme=MEMBER [production=VIEWER*]",
        ),
        (&["lf-staging-admin"], "acme=NONE [staging=ADMIN*]"),
        (
            &["lf-staging-viewer", "lf-staging-member"],
            "acme=NONE [staging=MEMBER*]",
        ),
        (&["lf-staging-owner"], "DENY:unmatched"),
        (&["lf--admin"], "DENY:unmatched"),
        (&["xlf-staging-admin"], "DENY:unmatched"),
        (
            &["data-analysts", "lf-production-viewer"],
            "acme=VIEWER [analytics=MEMBER* production=VIEWER]",
        ),
        (
            &["data-analysts", "lf-analytics-admin"],
            "acme=VIEWER [analytics=ADMIN*]",
        ),
        (
            &["acme-owners", "ml-engineers"],
            "acme=OWNER [production=VIEWER*]",
        ),
        (&["beta-web"], "beta=MEMBER"),
        (&["beta-"], "beta=MEMBER"),
        (&["langfuse-admins", "beta-x"], "acme=ADMIN; beta=MEMBER"),
        (&["contractors-offboarded"], "DENY:rule:offboarded"),
        (
            &["langfuse-admins", "contractors-offboarded"],
            "DENY:rule:offboarded",
        ),
        (
            &["acme-owners", "contractors-offboarded", "beta-x"],
            "DENY:rule:offboarded",
        ),
    ];
    for (groups, expected) in table {
        assert_eq!(summary(&run(&rs, groups)), *expected, "groups {groups:?}");
    }
}

#[test]
fn every_combination_of_groups_obeys_the_invariants() {
    let rs = rules();
    let universe = [
        "langfuse-admins",
        "ml-engineers",
        "prod-oncall",
        "data-analysts",
        "lf-staging-admin",
        "lf-production-member",
        "acme-owners",
        "beta-web",
        "contractors-offboarded",
    ];
    let mut checked = 0;
    for mask in 0u32..(1 << universe.len()) {
        let groups: Vec<&str> = universe
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, g)| *g)
            .collect();
        let d = run(&rs, &groups);
        checked += 1;
        if groups.contains(&"contractors-offboarded") {
            assert_eq!(summary(&d), "DENY:rule:offboarded", "{groups:?}");
            continue;
        }
        let granting = groups.iter().any(|g| *g != "contractors-offboarded");
        assert_eq!(d.allowed, granting, "{groups:?}");
        for org in &d.orgs {
            let expected_org_role = rs
                .rules
                .iter()
                .filter(|r| r.org.as_deref() == Some(org.org.as_str()))
                .filter(|r| groups.iter().any(|g| r.matcher.matches(g).is_some()))
                .filter_map(|r| r.org_role)
                .max()
                .unwrap_or(Role::None);
            assert_eq!(org.role, expected_org_role, "{groups:?}");
            for p in &org.projects {
                assert_eq!(p.write_membership, p.role != org.role, "{groups:?} {p:?}");
                if p.capped_by.is_none() {
                    assert!(
                        p.role >= org.role,
                        "uncapped project below the org role: {groups:?} {p:?}"
                    );
                } else {
                    assert!(
                        p.role < org.role || !p.granted_by.is_empty(),
                        "{groups:?} {p:?}"
                    );
                }
            }
        }
    }
    assert_eq!(checked, 512);
}

#[test]
fn connection_scoped_rules_apply_only_to_their_connection() {
    let rs = RuleSet {
        rules: vec![Rule {
            label: "okta-only".into(),
            matcher: GroupMatcher::Exact("staff".into()),
            connection: Some("acme-okta".into()),
            deny: false,
            org: Some("acme".into()),
            org_role: Some(Role::Member),
            projects: vec![],
            caps: vec![],
        }],
        unmatched: Unmatched::Deny,
    };
    let staff = vec!["staff".to_string()];
    assert!(
        decide(
            &Facts {
                connection: "acme-okta",
                groups: &staff
            },
            &rs
        )
        .allowed
    );
    assert!(
        !decide(
            &Facts {
                connection: "other-idp",
                groups: &staff
            },
            &rs
        )
        .allowed
    );
}

#[test]
fn unmatched_grant_gives_the_default_and_cites_it() {
    let rs = RuleSet {
        rules: vec![],
        unmatched: Unmatched::Grant {
            org: "acme".into(),
            role: Role::Viewer,
        },
    };
    let d = decide(
        &Facts {
            connection: "c",
            groups: &[],
        },
        &rs,
    );
    assert_eq!(summary(&d), "acme=VIEWER");
    assert_eq!(
        d.orgs[0].role_from,
        vec![sso_bridge::policy::decide::DEFAULT_RULE.to_string()]
    );
}

#[test]
fn a_captured_role_that_is_not_a_role_is_noted_not_granted() {
    let rs = RuleSet {
        rules: vec![Rule {
            label: "loose".into(),
            matcher: GroupMatcher::Regex(
                regex::Regex::new("lf-(?P<project>.+)-(?P<role>.+)").unwrap(),
            ),
            connection: None,
            deny: false,
            org: Some("acme".into()),
            org_role: None,
            projects: vec![ProjectTemplate {
                project: "{project}".into(),
                role: "{role}".into(),
            }],
            caps: vec![],
        }],
        unmatched: Unmatched::Deny,
    };
    let d = decide(
        &Facts {
            connection: "c",
            groups: &["lf-x-superuser".to_string()],
        },
        &rs,
    );
    assert!(!d.allowed);
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
}

// ── property: adding a grant rule never lowers an effective role ──────────────────────────

const GROUPS: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];
const PROJECTS: [&str; 3] = ["p0", "p1", "p2"];
const ORGS: [&str; 2] = ["o0", "o1"];

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn grant_rule() -> impl Strategy<Value = Rule> {
    (
        0..GROUPS.len(),
        0..ORGS.len(),
        prop::option::of(role()),
        prop::collection::vec((0..PROJECTS.len(), role()), 0..3),
    )
        .prop_filter("grants something", |(_, _, r, p)| {
            r.is_some() || !p.is_empty()
        })
        .prop_map(|(g, o, org_role, projects)| Rule {
            label: format!("grant-{g}-{o}"),
            matcher: GroupMatcher::Exact(GROUPS[g].into()),
            connection: None,
            deny: false,
            org: Some(ORGS[o].into()),
            org_role,
            projects: projects
                .into_iter()
                .map(|(p, r)| ProjectTemplate {
                    project: PROJECTS[p].into(),
                    role: r.as_str().into(),
                })
                .collect(),
            caps: vec![],
        })
}

fn cap_rule() -> impl Strategy<Value = Rule> {
    (0..GROUPS.len(), 0..ORGS.len(), 0..PROJECTS.len(), role()).prop_map(|(g, o, p, r)| Rule {
        label: format!("cap-{g}"),
        matcher: GroupMatcher::Exact(GROUPS[g].into()),
        connection: None,
        deny: false,
        org: Some(ORGS[o].into()),
        org_role: None,
        projects: vec![],
        caps: vec![ProjectTemplate {
            project: PROJECTS[p].into(),
            role: r.as_str().into(),
        }],
    })
}

/// Effective role per (org, project), including the org role itself under project "".
fn effective(d: &Decision) -> Vec<((String, String), Role)> {
    let mut out = Vec::new();
    for o in &d.orgs {
        out.push(((o.org.clone(), String::new()), o.role));
        for p in PROJECTS {
            let role = o
                .projects
                .iter()
                .find(|x| x.project == p)
                .map(|x| x.role)
                .unwrap_or(o.role);
            out.push(((o.org.clone(), p.to_string()), role));
        }
    }
    out
}

proptest! {
    #[test]
    fn adding_a_grant_rule_never_lowers_an_effective_role(
        base in prop::collection::vec(prop_oneof![3 => grant_rule(), 1 => cap_rule()], 0..6),
        extra in grant_rule(),
        position in 0usize..7,
        groups in prop::collection::vec(prop::sample::select(GROUPS.to_vec()), 0..4),
    ) {
        let groups: Vec<String> = groups.into_iter().map(str::to_owned).collect();
        let facts = Facts { connection: "c", groups: &groups };
        let before_rs = RuleSet { rules: base.clone(), unmatched: Unmatched::Deny };
        let mut with_extra = base;
        with_extra.insert(position.min(with_extra.len()), extra);
        let after_rs = RuleSet { rules: with_extra, unmatched: Unmatched::Deny };
        let before = decide(&facts, &before_rs);
        let after = decide(&facts, &after_rs);
        if before.allowed {
            prop_assert!(after.allowed);
            let after_roles = effective(&after);
            for (key, role) in effective(&before) {
                let now = after_roles.iter().find(|(k, _)| *k == key).map(|(_, r)| *r).unwrap_or(Role::None);
                prop_assert!(now >= role, "{key:?}: {role} became {now}");
            }
        }
    }
}
