//! The policy part of the config: errors name the key, and the lints an access review asks
//! about are raised (and only when they apply).

use sso_bridge::config::{self, ConfigError, RuntimeConfig};

const BASE: &str = r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging"]
"#;

fn load(extra: &str) -> Result<RuntimeConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    config::from_toml(&format!("{BASE}{extra}"), dir.path(), &|_| None)
}

fn lint_keys(extra: &str) -> Vec<String> {
    load(extra)
        .unwrap()
        .lints
        .into_iter()
        .map(|l| format!("{}: {}", l.key, l.message))
        .collect()
}

fn has_lint(extra: &str, needle: &str) -> bool {
    lint_keys(extra).iter().any(|l| l.contains(needle))
}

#[test]
fn rule_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[[rules]]\norg = \"acme\"\norg_role = \"ADMIN\"\n", "rules[0]"),
        ("[[rules]]\ngroup = \"a\"\ngroup_prefix = \"b\"\norg = \"acme\"\norg_role = \"ADMIN\"\n", "rules[0]"),
        ("[[rules]]\ngroup_regex = \"(\"\norg = \"acme\"\norg_role = \"ADMIN\"\n", "rules[0].group_regex"),
        ("[[rules]]\ngroup = \"a\"\norg = \"nope\"\norg_role = \"ADMIN\"\n", "rules[0].org"),
        ("[[rules]]\ngroup = \"a\"\norg = \"acme\"\norg_role = \"GOD\"\n", "rules[0].org_role"),
        ("[[rules]]\ngroup = \"a\"\norg = \"acme\"\n", "rules[0]"),
        ("[[rules]]\ngroup = \"a\"\norg = \"acme\"\nprojects = { production = \"boss\" }\n", "rules[0].projects.production"),
        ("[[rules]]\ngroup = \"a\"\norg = \"acme\"\nprojects = { \"{project}\" = \"MEMBER\" }\n", "rules[0].projects.{project}"),
        ("[[rules]]\ngroup = \"a\"\ndeny = true\norg = \"acme\"\n", "rules[0]"),
        ("[[rules]]\ngroup = \"a\"\nconnection = \"ghost\"\norg = \"acme\"\norg_role = \"VIEWER\"\n", "rules[0].connection"),
        ("[policy]\nunmatched = \"maybe\"\n", "policy.unmatched"),
        ("[policy]\nunmatched = \"grant\"\n", "policy.unmatched_org"),
        ("[policy]\nunmatched = \"grant\"\nunmatched_org = \"ghost\"\n", "policy.unmatched_org"),
    ];
    for (extra, key) in cases {
        let err = load(extra).expect_err(extra);
        assert_eq!(err.key, *key, "{extra} → {err}");
    }
    // The valid neighbour of each mutation loads.
    load("[[rules]]\ngroup = \"a\"\norg = \"acme\"\norg_role = \"ADMIN\"\n").unwrap();
    load("[[rules]]\ngroup_regex = \"lf-(?P<project>.+)-(?P<role>.+)\"\norg = \"acme\"\nprojects = { \"{project}\" = \"{role}\" }\n").unwrap();
}

#[test]
fn default_role_lint_only_above_viewer() {
    let grant = |role: &str| {
        format!("[policy]\nunmatched = \"grant\"\nunmatched_org = \"acme\"\nunmatched_role = \"{role}\"\n")
    };
    assert!(has_lint(&grant("MEMBER"), "least-privilege"));
    assert!(!has_lint(&grant("VIEWER"), "least-privilege"));
}

#[test]
fn owner_to_a_broad_group_is_flagged() {
    let rule = |matcher: &str, role: &str| {
        format!("[[rules]]\n{matcher}\norg = \"acme\"\norg_role = \"{role}\"\n")
    };
    assert!(has_lint(
        &rule("group = \"Everyone\"", "OWNER"),
        "OWNER to a broad match"
    ));
    assert!(has_lint(
        &rule("group_prefix = \"lf-\"", "OWNER"),
        "OWNER to a broad match"
    ));
    assert!(!has_lint(
        &rule("group = \"langfuse-owners\"", "OWNER"),
        "OWNER to a broad match"
    ));
    assert!(!has_lint(
        &rule("group = \"Everyone\"", "VIEWER"),
        "OWNER to a broad match"
    ));
}

#[test]
fn unknown_project_and_shadowed_rule_are_flagged() {
    let p = |name: &str| {
        format!("[[rules]]\ngroup = \"a\"\norg = \"acme\"\nprojects = {{ {name} = \"MEMBER\" }}\n")
    };
    assert!(has_lint(&p("prodution"), "not listed"));
    assert!(!has_lint(&p("production"), "not listed"));
    let shadow = "[[rules]]\ngroup = \"a\"\norg = \"acme\"\norg_role = \"ADMIN\"\n[[rules]]\ngroup = \"a\"\ndeny = true\n";
    assert!(has_lint(shadow, "can never take effect"));
    let unshadowed = "[[rules]]\ngroup = \"a\"\norg = \"acme\"\norg_role = \"ADMIN\"\n[[rules]]\ngroup = \"b\"\ndeny = true\n";
    assert!(!has_lint(unshadowed, "can never take effect"));
}

#[test]
fn domains_accept_tables_with_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    let idp = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/example-idp-metadata.xml"
    ))
    .unwrap();
    std::fs::write(dir.path().join("idp.xml"), idp).unwrap();
    let text = format!(
        "{BASE}[[connections]]\nid = \"c\"\nkind = \"saml\"\ndomains = [\"a.example\", {{ domain = \"B.example.\", include_subdomains = true }}]\n[connections.saml]\nidp_metadata_file = \"idp.xml\"\n"
    );
    let cfg = config::from_toml(&text, dir.path(), &|_| None).unwrap();
    let d = &cfg.connections[0].domains;
    assert_eq!(
        (d[0].domain.as_str(), d[0].include_subdomains),
        ("a.example", false)
    );
    assert_eq!(
        (d[1].domain.as_str(), d[1].include_subdomains),
        ("b.example", true)
    );
    let bad = text.replace("include_subdomains = true", "include_subdomain = true");
    assert!(config::from_toml(&bad, dir.path(), &|_| None).is_err());
}
