//! The whole browser login in a real headless Chromium (Debian's `chromium`, driven by
//! tests/support/chromium/login.js through playwright-core): the openid-client RP playing
//! Langfuse, the bridge on Redis, SimpleSAMLphp as the IdP. Chromium applies its real SameSite
//! rules to the IdP's auto-submitted POST to the ACS (field case 019), which a cookie-keeping
//! HTTP client cannot show.
//!
//! SimpleSAMLphp always lives on `http://127.0.0.1:PORT`. With the bridge and the RP on
//! `127.0.0.1` too, everything is one site (ports do not count), and the binding cookie, `Lax`
//! over http, comes with the IdP's POST. With the bridge and the RP on `localhost`, the IdP is
//! another site: Chromium withholds the Lax cookie on that POST, and the login completes only
//! through the bridge's same-site resubmit. A browser that drops the cookie altogether gets
//! one resubmit and then the clear `cookie_missing` page.

mod common;

use std::path::Path;
use std::time::Duration;

use common::servers;
use common::{make_config, Bridge, ConnSpec, CLIENT_SECRET};
use serde_json::Value;
use sso_bridge::audit::Event;
use sso_bridge::login::subject_id;

struct World {
    bridge: Bridge,
    /// The bridge's public URL (its issuer), on `host`.
    public: String,
    rp: servers::NodeRp,
    _idp: servers::SimpleSamlPhp,
    _redis: servers::Redis,
}

/// Bridge and RP named `host` (`127.0.0.1`: same site as the IdP; `localhost`: cross-site).
async fn world(host: &str) -> World {
    let redis = servers::redis();
    let (reserved, rp_port) = servers::reserve_port();
    let callback = format!("http://{host}:{rp_port}/api/auth/callback/custom");
    let redis_url = redis.url.clone();
    let mut idp = None;
    let mut public = String::new();
    let bridge = Bridge::start(chrono::Utc::now(), |dir, base| {
        public = base.replace("127.0.0.1", host);
        let sp_entity_id = format!("{public}/saml/acme/metadata");
        let acs = format!("{public}/saml/acme/acs");
        let server = servers::simplesamlphp(&sp_entity_id, &acs, false, true);
        let metadata = server.metadata_xml();
        idp = Some(server);
        make_config(
            dir,
            &public,
            Some(&redis_url),
            &[&callback],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: "[connections.saml.attributes]\nemail = \"email\"\nname = \"displayName\"\ngroups = \"groups\"\n",
            }],
        )
    })
    .await;
    drop(reserved);
    let rp = servers::node_rp_named(
        &public,
        "client_secret_basic",
        true,
        CLIENT_SECRET,
        rp_port,
        host,
    );
    World {
        bridge,
        public,
        rp,
        _idp: idp.unwrap(),
        _redis: redis,
    }
}

/// One login in a fresh Chromium profile; `extra` are more harness arguments.
/// One Chromium at a time: five browsers at once on a 2-core CI machine made the slowest run
/// miss its deadline.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn chromium(w: &World, email: &str, user: &str, extra: &[String]) -> Value {
    let mut args: Vec<String> = [
        "--start",
        &format!("{}/start", w.rp.base),
        "--email",
        email,
        "--username",
        user,
        "--password",
        &format!("{user}pass"),
        "--timeout-ms",
        "15000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend_from_slice(extra);
    let out = tokio::task::spawn_blocking(move || {
        servers::chromium_login(&args, Duration::from_secs(25))
    })
    .await
    .unwrap();
    assert_eq!(out["offsite_requests"], serde_json::json!([]), "{out}");
    out
}

fn verdict(out: &Value) -> &Value {
    assert_eq!(out["outcome"], "verdict", "{out:#}");
    assert_eq!(out["status"], 200, "{out:#}");
    &out["verdict"]
}

/// The main-frame POSTs to the ACS, in order.
fn acs_posts(out: &Value, public: &str) -> Vec<Value> {
    let acs = format!("{public}/saml/acme/acs");
    out["navigations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["method"] == "POST" && n["url"] == acs.as_str())
        .cloned()
        .collect()
}

fn sent_binding_cookie(nav: &Value) -> bool {
    nav["cookies_sent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "ssob_login")
}

fn assert_alice(verdict: &Value, issuer: &str) {
    let claims = &verdict["claims"];
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(claims["name"], "Alice Anderson");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["lf-admins", "ml-team"])
    );
    assert_eq!(claims["sub"], subject_id("acme", "alice-0001"));
    assert_eq!(claims["iss"], issuer);
    assert!(claims["nonce"].is_string(), "nonce echoed");
    assert_eq!(verdict["userinfo"]["sub"], claims["sub"]);
}

fn refusals(bridge: &Bridge) -> Vec<String> {
    bridge
        .events()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::LoginRefused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_completes_a_same_site_login() {
    let _one_browser_at_a_time = BROWSER.lock().await;
    let w = world("127.0.0.1").await;
    let out = chromium(&w, "alice@acme.test", "alice", &[]).await;
    assert_alice(verdict(&out), &w.public);
    // One site: the IdP's own POST carried the Lax binding cookie; no resubmit was needed.
    let posts = acs_posts(&out, &w.public);
    assert_eq!(posts.len(), 1, "{out:#}");
    assert_eq!(posts[0]["status"], 303);
    assert!(sent_binding_cookie(&posts[0]), "{out:#}");
    assert!(posts[0]["acs_step"].is_null());
    assert!(refusals(&w.bridge).is_empty(), "{:?}", w.bridge.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_cross_site_login_completes_through_the_same_site_resubmit() {
    let _one_browser_at_a_time = BROWSER.lock().await;
    let w = world("localhost").await;
    let out = chromium(&w, "alice@acme.test", "alice", &[]).await;
    assert_alice(verdict(&out), &w.public);
    // The IdP (127.0.0.1) posted cross-site to the ACS (localhost): Chromium withheld the Lax
    // cookie, the bridge answered with its resubmit page, whose own POST carried it.
    let posts = acs_posts(&out, &w.public);
    assert_eq!(posts.len(), 2, "{out:#}");
    assert!(!sent_binding_cookie(&posts[0]), "{out:#}");
    assert_eq!(posts[0]["status"], 200);
    assert_eq!(posts[0]["acs_step"], "same-site-resubmit");
    assert!(sent_binding_cookie(&posts[1]), "{out:#}");
    assert_eq!(posts[1]["status"], 303);
    assert!(refusals(&w.bridge).is_empty(), "{:?}", w.bridge.events());
    let succeeded = w
        .bridge
        .events()
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::LoginSucceeded { .. }))
        .count();
    assert_eq!(succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_cross_site_login_without_scripts_uses_the_visible_buttons() {
    let _one_browser_at_a_time = BROWSER.lock().await;
    let w = world("localhost").await;
    let out = chromium(&w, "alice@acme.test", "alice", &["--no-script".into()]).await;
    assert_alice(verdict(&out), &w.public);
    let posts = acs_posts(&out, &w.public);
    assert_eq!(posts.len(), 2, "{out:#}");
    assert_eq!(posts[0]["acs_step"], "same-site-resubmit");
    assert!(sent_binding_cookie(&posts[1]), "{out:#}");
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    assert!(bytes.len() > 2000, "{} is nearly empty", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_screenshots_of_the_login_page_and_an_error_page() {
    let _one_browser_at_a_time = BROWSER.lock().await;
    let w = world("127.0.0.1").await;
    let shots = tempfile::tempdir().unwrap();
    let login_png = shots.path().join("login-page.png");
    let error_png = shots.path().join("error-page.png");
    // mallory types an acme address, but the IdP vouches for mallory@evil.test: the domain
    // guard refuses, on a page.
    let out = chromium(
        &w,
        "mallory@acme.test",
        "mallory",
        &[
            "--screenshot-login".into(),
            login_png.display().to_string(),
            "--screenshot-on-failure".into(),
            error_png.display().to_string(),
        ],
    )
    .await;
    assert_eq!(out["outcome"], "refused", "{out:#}");
    assert_eq!(out["status"], 403);
    assert_eq!(out["error_kind"], "foreign_domain");
    let text = out["text"].as_str().unwrap();
    assert!(text.contains("Sign-in failed"), "{text}");
    assert!(text.contains("evil.test"), "{text}");
    assert!(text.contains("Reference:"), "{text}");
    assert_png(&login_png);
    assert_png(&error_png);
    // SSO_BRIDGE_SCREENSHOTS=DIR keeps them for a person to look at.
    if let Some(keep) = std::env::var_os("SSO_BRIDGE_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).unwrap();
        for p in [&login_png, &error_png] {
            std::fs::copy(p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_without_the_cookie_gets_a_clear_refusal_after_one_resubmit() {
    let _one_browser_at_a_time = BROWSER.lock().await;
    // A browser that does not keep the binding cookie at all (deleted once at the IdP): the
    // resubmit cannot help, and the user gets the cookie_missing page, not a loop.
    let w = world("localhost").await;
    let out = chromium(
        &w,
        "alice@acme.test",
        "alice",
        &["--drop-cookie".into(), "ssob_login".into()],
    )
    .await;
    assert_eq!(out["outcome"], "refused", "{out:#}");
    assert_eq!(out["status"], 400);
    assert_eq!(out["error_kind"], "cookie_missing");
    let text = out["text"].as_str().unwrap();
    assert!(text.contains("did not send the sign-in cookie"), "{text}");
    let posts = acs_posts(&out, &w.public);
    assert_eq!(posts.len(), 2, "{out:#}");
    assert_eq!(posts[0]["acs_step"], "same-site-resubmit");
    assert!(!sent_binding_cookie(&posts[1]), "{out:#}");
    assert_eq!(posts[1]["error_kind"], "cookie_missing");
    assert_eq!(refusals(&w.bridge), ["cookie_missing"]);
    assert!(!w
        .bridge
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::LoginSucceeded { .. })));
}
