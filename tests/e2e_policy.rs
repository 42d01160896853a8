//! Access policy end to end, with the real binary (its audit lines on stdout), Redis,
//! SimpleSAMLphp and the openid-client RP: an admin-group user gets ADMIN, a project-group user
//! gets org NONE plus the project role, a user in no mapped group is refused with a page that
//! says what to ask for, a foreign-domain identity is refused, and every decision's audit line
//! names its rule. With provisioning on (against the Langfuse double), Langfuse ends up with
//! exactly those memberships, and a second login writes nothing.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::browser::{login, Outcome};
use common::langfuse_double::LangfuseDouble;
use common::servers::{self, Guard};
use serde_json::Value;
use sso_bridge::policy::Role;

const SECRET: &str = "e2e-policy-secret-0123456789";

struct Running {
    base: String,
    rp: servers::NodeRp,
    idp: servers::SimpleSamlPhp,
    audit: Arc<Mutex<Vec<String>>>,
    _bridge: Guard,
    _redis: servers::Redis,
    _dir: tempfile::TempDir,
}

impl Running {
    fn audit_events(&self) -> Vec<Value> {
        self.audit
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// Waits (bounded) for an audit event satisfying `pred`.
    async fn wait_event(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.audit_events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "audit event not seen; have: {:?}",
                self.audit_events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `langfuse`: the Langfuse double's URL, to provision organization `acme` authoritatively.
async fn start(langfuse: Option<&str>) -> Running {
    let redis = servers::redis();
    // Held until their servers start, so no other test server takes them meanwhile.
    let (bridge_hold, port) = servers::reserve_port();
    let (rp_hold, rp_port) = servers::reserve_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = servers::simplesamlphp(
        &format!("{base}/saml/acme/metadata"),
        &format!("{base}/saml/acme/acs"),
        false,
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.xml"), idp.metadata_xml()).unwrap();
    let config = format!(
        r#"
public_url = "{base}"
listen = "127.0.0.1:{port}"
[store]
redis_url = "{redis}"
key_prefix = "e2e-policy"
[keys]
files = ["signing.pem"]
generate_if_missing = true
[[clients]]
id = "langfuse"
secret = "${{LF_CLIENT_SECRET}}"
redirect_uris = ["http://127.0.0.1:{rp_port}/api/auth/callback/custom"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_file = "idp.xml"
[connections.saml.attributes]
subject = "uid"
[policy]
unmatched = "deny"
list_groups_on_denial = true
{langfuse_header}[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging", "analytics"]
{provisioning}
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
"#,
        redis = redis.url,
        langfuse_header = langfuse
            .map(|u| format!("[langfuse]\nurl = \"{u}\"\n"))
            .unwrap_or_default(),
        provisioning = if langfuse.is_some() {
            "provisioning = \"authoritative\"\npublic_key = \"pk-lf-org-acme\"\nsecret_key = \"${LF_ACME_SK}\""
        } else {
            ""
        },
    );
    std::fs::write(dir.path().join("bridge.toml"), config).unwrap();
    drop(bridge_hold);
    let mut bridge = Guard::spawn(
        "sso-bridge serve",
        Command::new(env!("CARGO_BIN_EXE_sso-bridge"))
            .args(["serve", "--config"])
            .arg(dir.path().join("bridge.toml"))
            .env("LF_CLIENT_SECRET", SECRET)
            .env("LF_ACME_SK", "sk-lf-org-acme")
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = bridge.take_stdout().unwrap();
    let audit = Arc::new(Mutex::new(Vec::new()));
    let sink = audit.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "bridge did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(rp_hold);
    let rp = servers::node_rp_on(&base, "client_secret_basic", true, SECRET, rp_port);
    Running {
        base,
        rp,
        idp,
        audit,
        _bridge: bridge,
        _redis: redis,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_rules_decide_roles_and_every_decision_is_audited_with_its_rule() {
    let r = start(None).await;
    let go = |email: &'static str, user: &'static str| {
        login(&r.rp.base, &r.base, &r.idp.base, email, user)
    };

    // alice: lf-admins (and ml-team) → org ADMIN; production MEMBER is below ADMIN, so no row.
    go("alice@acme.test", "alice").await.verdict();
    let e = r
        .wait_event(|e| e["event"] == "login_succeeded" && e["email"] == "alice@acme.test")
        .await;
    let org = &e["decision"]["orgs"][0];
    assert_eq!(
        (org["org"].as_str(), org["role"].as_str()),
        (Some("acme"), Some("ADMIN"))
    );
    assert_eq!(org["role_from"], serde_json::json!(["admins"]));
    assert!(org["projects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["write_membership"] == false));

    // bob: only ml-team → org NONE, production MEMBER written.
    go("bob.builder@acme.test", "bob").await.verdict();
    let e = r
        .wait_event(|e| e["event"] == "login_succeeded" && e["email"] == "bob.builder@acme.test")
        .await;
    let org = &e["decision"]["orgs"][0];
    assert_eq!(org["role"], "NONE");
    assert_eq!(org["projects"][0]["project"], "production");
    assert_eq!(org["projects"][0]["role"], "MEMBER");
    assert_eq!(org["projects"][0]["write_membership"], true);
    assert_eq!(
        org["projects"][0]["granted_by"],
        serde_json::json!(["ml-team on production"])
    );

    // carol: no groups → refused with a page that names the groups to ask for.
    let Outcome::Refused { status, kind, page } = go("carol@acme.test", "carol").await else {
        panic!("carol must be refused")
    };
    assert_eq!((status, kind.as_str()), (403, "access_denied"));
    assert!(
        page.contains("You are not in a group that grants access to Langfuse"),
        "{page}"
    );
    assert!(page.contains("lf-admins, ml-team"), "{page}");
    let e = r
        .wait_event(|e| e["event"] == "login_denied" && e["email"] == "carol@acme.test")
        .await;
    assert_eq!(e["decision"]["denial"]["reason"], "no_matching_rule");
    assert!(
        page.contains(e["correlation_id"].as_str().unwrap()),
        "the page shows the audit event's correlation id"
    );

    // mallory: the IdP vouches for mallory@evil.test through acme's connection → domain guard.
    let Outcome::Refused { status, kind, .. } = go("mallory@acme.test", "mallory").await else {
        panic!("mallory must be refused")
    };
    assert_eq!((status, kind.as_str()), (403, "foreign_domain"));
    let e = r
        .wait_event(|e| e["event"] == "login_refused" && e["reason"] == "foreign_domain")
        .await;
    assert_eq!(e["connection"], "acme");

    // Nothing secret reached the audit stream.
    let all = r.audit.lock().unwrap().join("\n");
    assert!(!all.contains(SECRET) && !all.contains("SAMLResponse") && !all.contains("id_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_makes_langfuse_match_the_groups_end_to_end() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production", "staging", "analytics"]);
    let r = start(Some(&lf.base)).await;
    let go = |email: &'static str, user: &'static str| {
        login(&r.rp.base, &r.base, &r.idp.base, email, user)
    };

    // alice (lf-admins, ml-team): org ADMIN, and no project rows (MEMBER is below ADMIN).
    let v = go("alice@acme.test", "alice").await.verdict();
    assert_eq!(v["claims"]["email"], "alice@acme.test");
    assert_eq!(
        lf.org_role("org-acme", "alice@acme.test"),
        Some(Role::Admin)
    );
    assert!(lf.project_roles("org-acme", "alice@acme.test").is_empty());

    // bob (ml-team only): org NONE plus production MEMBER.
    go("bob.builder@acme.test", "bob").await.verdict();
    assert_eq!(
        lf.org_role("org-acme", "bob.builder@acme.test"),
        Some(Role::None)
    );
    assert_eq!(
        lf.project_roles("org-acme", "bob.builder@acme.test"),
        [("production".to_owned(), Role::Member)].into()
    );

    // The double's state is exactly that: two users, two memberships, one project row.
    {
        let w = lf.lock();
        assert_eq!(w.users.len(), 2);
        assert_eq!(w.org_members["org-acme"].len(), 2);
        let rows: usize = w.projects.iter().map(|p| p.memberships.len()).sum();
        assert_eq!(rows, 1);
    }
    // Each applied action has its audit line, with rule and roles.
    let e = r
        .wait_event(|e| {
            e["event"] == "provision_action"
                && e["email"] == "bob.builder@acme.test"
                && e["action"] == "set_project_role"
        })
        .await;
    assert_eq!(
        (
            e["project"].as_str(),
            e["to_role"].as_str(),
            e["rule"].as_str()
        ),
        (
            Some("production"),
            Some("MEMBER"),
            Some("ml-team on production")
        )
    );

    // A second login by alice writes nothing.
    lf.clear_log();
    go("alice@acme.test", "alice").await.verdict();
    assert!(lf.writes().is_empty(), "{:?}", lf.writes());
}
