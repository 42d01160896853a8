//! The whole path with real parts: openid-client v5 (what Langfuse's next-auth uses) as the
//! relying party, the bridge on the Redis store, SimpleSAMLphp as the IdP, and a cookie-keeping
//! HTTP client as the browser. The RP completes the flow through its own callback handling with
//! its state, PKCE and nonce checks on.

mod common;

use common::servers::{self};
use common::{browser, make_config, Bridge, ConnSpec, CLIENT_SECRET};
use serde_json::Value;
use sso_bridge::login::subject_id;

struct World {
    bridge: Bridge,
    idp: servers::SimpleSamlPhp,
    rp: servers::NodeRp,
    _redis: servers::Redis,
}

async fn world(auth_method: &str, nonce: bool) -> World {
    let redis = servers::redis();
    // Held until the RP starts, so no other test server takes the port meanwhile.
    let (rp_hold, rp_port) = servers::reserve_port();
    let callback = format!("http://127.0.0.1:{rp_port}/api/auth/callback/custom");
    let mut idp = None;
    let redis_url = redis.url.clone();
    let bridge = Bridge::start(chrono::Utc::now(), |dir, base| {
        let sp_entity_id = format!("{base}/saml/acme/metadata");
        let acs = format!("{base}/saml/acme/acs");
        let server = servers::simplesamlphp(&sp_entity_id, &acs, false, true);
        let metadata = server.metadata_xml();
        idp = Some(server);
        make_config(
            dir,
            base,
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
    drop(rp_hold);
    let rp = servers::node_rp_on(&bridge.base, auth_method, nonce, CLIENT_SECRET, rp_port);
    World {
        bridge,
        idp: idp.unwrap(),
        rp,
        _redis: redis,
    }
}

async fn login(w: &World, email: &str, user: &str) -> Value {
    browser::login(&w.rp.base, &w.bridge.base, &w.idp.base, email, user)
        .await
        .verdict()
}

fn assert_standard_token_response(verdict: &Value) {
    let allowed = [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "id_token",
        "scope",
    ];
    for k in verdict["token_response_keys"].as_array().unwrap() {
        assert!(
            allowed.contains(&k.as_str().unwrap()),
            "token response field {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_to_openid_client_basic_auth_without_nonce() {
    let w = world("client_secret_basic", false).await;
    let first = login(&w, "alice@acme.test", "alice").await;
    let claims = &first["claims"];
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(claims["name"], "Alice Anderson");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["lf-admins", "ml-team"])
    );
    assert_eq!(claims["sub"], subject_id("acme", "alice-0001"));
    assert_eq!(claims["iss"], w.bridge.base.as_str());
    assert!(claims.get("nonce").is_none());
    assert_eq!(first["userinfo"]["email"], "alice@acme.test");
    assert_standard_token_response(&first);

    // A second login of the same user (fresh browser, so the IdP asks again): same sub.
    let second = login(&w, "alice@acme.test", "alice").await;
    assert_eq!(second["claims"]["sub"], claims["sub"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_to_openid_client_post_auth_with_nonce() {
    let w = world("client_secret_post", true).await;
    // bob's IdP address is mixed case: the bridge lowercases it.
    let verdict = login(&w, "bob.builder@acme.test", "bob").await;
    let claims = &verdict["claims"];
    assert_eq!(claims["email"], "bob.builder@acme.test");
    assert_eq!(claims["groups"], serde_json::json!(["ml-team"]));
    assert_eq!(claims["sub"], subject_id("acme", "bob-0002"));
    assert!(claims["nonce"].is_string(), "nonce echoed when sent");
    assert_standard_token_response(&verdict);

    // carol has no groups attribute at all: that means no groups, not an error.
    let verdict = login(&w, "carol@acme.test", "carol").await;
    assert_eq!(verdict["claims"]["groups"], serde_json::json!([]));
}
