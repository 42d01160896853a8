//! Provisioning through the ACS, over a real socket: the user lands with the right roles on the
//! first login, the second login writes nothing, every applied action is an audit event, and a
//! Langfuse that is down, unlicensed or failing part-way gives the documented page and audit
//! trail (or, with on_error = "allow", lets the login through).

mod common;

use common::flow;
use common::langfuse_double::{Fault, LangfuseDouble, Plan};
use common::saml_idp::TestIdp;
use common::{make_config_with, t0, Bridge, ConnSpec, REDIRECT_URI};
use sso_bridge::audit::Event;
use sso_bridge::policy::Role;

fn policy(langfuse_url: &str, mode: &str, on_error: &str, max_retries: u32) -> String {
    format!(
        r#"
[policy]
unmatched = "deny"
[langfuse]
url = "{langfuse_url}"
max_retries = {max_retries}
[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging"]
provisioning = "{mode}"
on_error = "{on_error}"
public_key = "pk-lf-org-acme"
secret_key = "sk-lf-org-acme"
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
    )
}

async fn bridge(idp: &TestIdp, policy_toml: String) -> Bridge {
    let metadata = idp.metadata();
    Bridge::start(t0(), move |dir, base| {
        make_config_with(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: "",
            }],
            &policy_toml,
        )
    })
    .await
}

/// Logs `email` in with `groups`; returns the ACS response.
async fn login(bridge: &Bridge, idp: &TestIdp, email: &str, groups: &[&str]) -> reqwest::Response {
    let login = flow::start(bridge, email, false).await;
    let mut spec = login.spec(bridge, "acme");
    spec.email = Some(email.into());
    spec.name_id = format!("idp-{email}");
    spec.groups = groups.iter().map(|g| (*g).to_owned()).collect();
    login
        .post_acs(bridge, "acme", &idp.response_b64(&spec))
        .await
}

fn kind(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-error-kind")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn first_login_provisions_second_login_writes_nothing_and_actions_are_audited() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production", "staging"]);
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&lf.base, "authoritative", "deny", 3)).await;

    let resp = login(&b, &idp, "bob@acme.test", &["ml-team"]).await;
    assert_eq!(resp.status(), 303, "{}", kind(&resp));
    assert_eq!(lf.org_role("org-acme", "bob@acme.test"), Some(Role::None));
    assert_eq!(
        lf.project_roles("org-acme", "bob@acme.test"),
        [("production".to_owned(), Role::Member)].into()
    );
    let actions: Vec<(String, Option<String>, Option<Role>, String)> = b
        .events()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::ProvisionAction {
                action,
                project,
                to_role,
                rule,
                outcome,
                email,
                ..
            } => {
                assert_eq!(
                    (outcome.as_str(), email.as_str()),
                    ("applied", "bob@acme.test")
                );
                Some((action, project, to_role, rule))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                "create_user".into(),
                None,
                Some(Role::None),
                "project rules only".into()
            ),
            (
                "set_project_role".into(),
                Some("production".into()),
                Some(Role::Member),
                "ml-team on production".into()
            ),
        ]
    );

    lf.clear_log();
    let resp = login(&b, &idp, "bob@acme.test", &["ml-team"]).await;
    assert_eq!(resp.status(), 303);
    assert!(
        lf.writes().is_empty(),
        "second login wrote: {:?}",
        lf.writes()
    );

    // Joining the admin group: org ADMIN; the production row (MEMBER < ADMIN) is removed.
    let resp = login(&b, &idp, "bob@acme.test", &["ml-team", "lf-admins"]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(lf.org_role("org-acme", "bob@acme.test"), Some(Role::Admin));
    assert!(lf.project_roles("org-acme", "bob@acme.test").is_empty());
}

#[tokio::test]
async fn langfuse_down_denies_with_a_page_and_an_audit_event() {
    let dead = format!("http://127.0.0.1:{}", common::servers::free_port());
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&dead, "additive", "deny", 0)).await;
    let resp = login(&b, &idp, "alice@acme.test", &["lf-admins"]).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(kind(&resp), "provisioning_unavailable");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Langfuse provisioning is unavailable"),
        "{page}"
    );
    let events = b.events();
    let (cid, failed) = events
        .iter()
        .find(|(_, e)| matches!(e, Event::ProvisionFailed { .. }))
        .expect("a provision_failed event");
    assert!(
        page.contains(cid.as_str()),
        "the page shows the correlation id"
    );
    let Event::ProvisionFailed {
        error, login, org, ..
    } = failed
    else {
        unreachable!()
    };
    assert_eq!((org.as_str(), login.as_str()), ("acme", "denied"));
    assert!(error.contains("Langfuse is unavailable"), "{error}");
    assert!(
        !events
            .iter()
            .any(|(_, e)| matches!(e, Event::LoginSucceeded { .. })),
        "no code was issued"
    );
}

#[tokio::test]
async fn on_error_allow_lets_the_login_through() {
    let dead = format!("http://127.0.0.1:{}", common::servers::free_port());
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&dead, "additive", "allow", 0)).await;
    let resp = login(&b, &idp, "alice@acme.test", &["lf-admins"]).await;
    assert_eq!(resp.status(), 303);
    let failed = b.events().into_iter().find_map(|(_, e)| match e {
        Event::ProvisionFailed { login, .. } => Some(login),
        _ => None,
    });
    assert_eq!(failed.as_deref(), Some("allowed"));
}

#[tokio::test]
async fn missing_licence_is_said_in_plain_words() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production"]);
    lf.set_plan(Plan::NO_LICENCE);
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&lf.base, "additive", "deny", 3)).await;
    let resp = login(&b, &idp, "alice@acme.test", &["lf-admins"]).await;
    assert_eq!(resp.status(), 503);
    let page = resp.text().await.unwrap();
    assert!(page.contains("no Enterprise licence"), "{page}");
    let licence = b.events().into_iter().find_map(|(_, e)| match e {
        Event::ProvisionFailed {
            licence_missing,
            error,
            ..
        } => Some((licence_missing, error)),
        _ => None,
    });
    let (flag, error) = licence.unwrap();
    assert!(flag);
    assert!(error.contains("LANGFUSE_EE_LICENSE_KEY"), "{error}");
}

#[tokio::test]
async fn partial_failure_lists_applied_and_not_applied_actions() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production", "staging"]);
    let prod = lf.project_id("production");
    lf.inject(
        &format!("/api/public/projects/{prod}/memberships"),
        Fault::Status(502),
    );
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&lf.base, "additive", "deny", 0)).await;
    let resp = login(&b, &idp, "bob@acme.test", &["ml-team"]).await;
    assert_eq!(resp.status(), 503);
    let (applied, not_applied) = b
        .events()
        .into_iter()
        .find_map(|(_, e)| match e {
            Event::ProvisionFailed {
                applied,
                not_applied,
                ..
            } => Some((applied, not_applied)),
            _ => None,
        })
        .unwrap();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].starts_with("create_user"), "{applied:?}");
    assert_eq!(not_applied.len(), 1);
    assert!(
        not_applied[0].starts_with("set_project_role project production"),
        "{not_applied:?}"
    );
    // The user exists in Langfuse with the org membership that was applied.
    assert_eq!(lf.org_role("org-acme", "bob@acme.test"), Some(Role::None));
}

#[tokio::test]
async fn the_last_owner_guard_is_recorded_and_the_login_goes_ahead() {
    let lf = LangfuseDouble::start().await;
    lf.add_org("org-acme", &["production"]);
    lf.add_user("alice@acme.test", Some(("org-acme", Role::Owner)));
    let idp = TestIdp::new("https://idp.acme.test");
    let b = bridge(&idp, policy(&lf.base, "authoritative", "deny", 3)).await;
    let resp = login(&b, &idp, "alice@acme.test", &["lf-admins"]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        lf.org_role("org-acme", "alice@acme.test"),
        Some(Role::Owner)
    );
    let refused = b.events().into_iter().find_map(|(_, e)| match e {
        Event::ProvisionAction {
            outcome,
            detail,
            from_role,
            to_role,
            ..
        } if outcome == "refused" => Some((detail, from_role, to_role)),
        _ => None,
    });
    let (detail, from, to) = refused.expect("a refused action event");
    assert_eq!((from, to), (Some(Role::Owner), Some(Role::Admin)));
    assert!(detail.unwrap().contains("last OWNER"));
}
