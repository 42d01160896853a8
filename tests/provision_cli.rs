//! The provisioning commands as an operator meets them: `reconcile --dry-run` prints the plan
//! for every user logins recorded (Redis) and writes nothing; `reconcile` refuses the embedded
//! store; `check --online` verifies org keys and names a missing licence; `langfuse-env` and
//! `check` say that provisioning needs AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true (field case 021).

mod common;

use std::process::Command;

use common::langfuse_double::{LangfuseDouble, Plan};
use common::saml_idp::TestIdp;
use sso_bridge::login::Identity;
use sso_bridge::policy::{Email, Role};
use sso_bridge::store::redis::RedisStore;

const BIN: &str = env!("CARGO_BIN_EXE_sso-bridge");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("LF_CLIENT_SECRET", "a-client-secret-long-enough")
        .env("LF_ACME_SK", "sk-lf-org-acme")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config; `redis` adds the store section.
fn config(
    dir: &std::path::Path,
    langfuse: &str,
    redis: Option<&str>,
    provisioning: &str,
) -> String {
    let idp = TestIdp::new("https://idp.acme.test");
    std::fs::write(dir.join("idp.xml"), idp.metadata()).unwrap();
    let store = redis
        .map(|u| format!("[store]\nredis_url = \"{u}\"\nkey_prefix = \"reconcile-test\"\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
public_url = "http://127.0.0.1:9"
{store}
[keys]
files = ["signing.pem"]
[[clients]]
id = "langfuse"
secret = "${{LF_CLIENT_SECRET}}"
redirect_uris = ["https://langfuse.example.com/api/auth/callback/custom"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_file = "idp.xml"
[connections.saml.attributes]
subject = "uid"
[langfuse]
url = "{langfuse}"
[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging"]
provisioning = "{provisioning}"
public_key = "pk-lf-org-acme"
secret_key = "${{LF_ACME_SK}}"
[[rules]]
name = "admins"
group = "lf-admins"
org = "acme"
org_role = "ADMIN"
[[rules]]
name = "ml-team on production"
group = "ml-team"
org = "acme"
projects = {{ production = "MEMBER" }}
"#
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn identity(email: &str, groups: &[&str]) -> Identity {
    Identity {
        connection_id: "acme".into(),
        subject: format!("idp-{email}"),
        email: Email::parse(email).unwrap(),
        name: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_dry_run_prints_the_plan_and_writes_nothing() {
    let redis = common::servers::redis();
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production", "staging"]);
    // bob already matches; carol is an ADMIN the rules now give only production MEMBER.
    lf.add_user("bob@acme.test", Some(("org-acme", Role::Admin)));
    lf.add_user("carol@acme.test", Some(("org-acme", Role::Admin)));
    let store = RedisStore::connect(&redis.url, "reconcile-test")
        .await
        .unwrap();
    let now = sso_bridge::clock::Clock::now(&sso_bridge::clock::SystemClock);
    for id in [
        identity("alice@acme.test", &["lf-admins"]),
        identity("bob@acme.test", &["lf-admins"]),
        identity("carol@acme.test", &["ml-team"]),
    ] {
        sso_bridge::provision::reconcile::remember(&store, &id, now)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &lf.base, Some(&redis.url), "authoritative");

    let (code, out, err) = run(&["reconcile", "--config", &cfg, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let expected = "\
alice@acme.test (acme):
  acme: create_user - → ADMIN [admins] (not yet a member of the organization) — planned
bob@acme.test (acme): no changes
carol@acme.test (acme):
  acme: set_org_role ADMIN → NONE [project rules only] (rules grant only NONE) — planned
  acme: set_project_role project production - → MEMBER [ml-team on production] (rules grant MEMBER in this project) — planned
3 user(s), 3 change(s) planned, 0 user(s) with errors (dry run: nothing changed)
";
    assert_eq!(out, expected);
    assert!(lf.writes().is_empty(), "{:?}", lf.writes());

    // Applied for real: Langfuse ends up as planned, and a second run finds nothing to do.
    let (code, out, err) = run(&["reconcile", "--config", &cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("\"event\":\"provision_action\""),
        "audit on stderr: {err}"
    );
    assert_eq!(
        lf.org_role("org-acme", "alice@acme.test"),
        Some(Role::Admin)
    );
    assert_eq!(lf.org_role("org-acme", "carol@acme.test"), Some(Role::None));
    let (_, out, _) = run(&["reconcile", "--config", &cfg, "--dry-run"]);
    assert!(
        out.ends_with(
            "3 user(s), 0 change(s) planned, 0 user(s) with errors (dry run: nothing changed)\n"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_needs_the_redis_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9", None, "additive");
    let (code, _, err) = run(&["reconcile", "--config", &cfg, "--dry-run"]);
    assert_eq!(code, 1);
    assert!(err.contains("reconcile needs the Redis store"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_verifies_keys_and_names_a_missing_licence() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &lf.base, None, "additive");

    let (code, out, err) = run(&["check", "--config", &cfg, "--online"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("langfuse organization acme: key works"),
        "{out}"
    );
    assert!(
        err.contains("Langfuse has no project named \"staging\""),
        "{err}"
    );
    assert!(
        err.contains("AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true"),
        "{err}"
    );

    lf.set_plan(Plan::NO_LICENCE);
    let (code, _, err) = run(&["check", "--config", &cfg, "--online"]);
    assert_eq!(code, 1);
    assert!(err.contains("Langfuse has no Enterprise licence"), "{err}");

    // A wrong key is named as such (the plan is fine again).
    lf.set_plan(Plan::ENTERPRISE);
    let wrong = config(dir.path(), &lf.base, None, "additive");
    let text = std::fs::read_to_string(&wrong).unwrap();
    std::fs::write(&wrong, text.replace("pk-lf-org-acme", "pk-lf-wrong")).unwrap();
    let (code, _, err) = run(&["check", "--config", &wrong, "--online"]);
    assert_eq!(code, 1);
    assert!(err.contains("rejected the organization API key"), "{err}");
}

#[test]
fn langfuse_env_asks_for_account_linking_when_provisioning_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let on = config(dir.path(), "http://127.0.0.1:9", None, "additive");
    let (code, out, err) = run(&["langfuse-env", "--config", &on]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l == "AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true"),
        "{out}"
    );

    let off = config(dir.path(), "http://127.0.0.1:9", None, "off");
    let (_, out, _) = run(&["langfuse-env", "--config", &off]);
    assert!(
        !out.lines()
            .any(|l| l == "AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true"),
        "{out}"
    );
    let (_, _, err) = run(&["check", "--config", &off]);
    assert!(!err.contains("AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING"), "{err}");
}
