//! The OIDC provider and the SAML login, end to end over a real socket, with the test IdP
//! signing responses against the bridge's injected clock. Covers the rejection cases of the
//! first slice and field cases 009 and 021.

mod common;

use common::flow::{self, basic_auth, redeem, token_request, verify_id_token};
use common::saml_idp::TestIdp;
use common::{
    browser, location, make_config, pkce, query_param, t0, Bridge, ConnSpec, CLIENT_ID,
    CLIENT_SECRET, REDIRECT_URI,
};
use serde_json::Value;
use sso_bridge::audit::Event;
use sso_bridge::login::subject_id;

use common::bridge_for as bridge_with;

fn error_kind(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-error-kind")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn full_login_issues_a_verifiable_id_token_and_matching_userinfo() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    for with_nonce in [false, true] {
        let login = flow::start(&bridge, "Alice@ACME.test", with_nonce).await;
        let code = login
            .complete(&bridge, &idp, &login.spec(&bridge, "acme"), "acme")
            .await;
        let (status, body) = redeem(&bridge, &code, &login.verifier).await;
        assert_eq!(status, 200, "{body}");

        // Field case 021: only standard fields, 32-bit integers.
        let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "access_token",
                "expires_in",
                "id_token",
                "scope",
                "token_type"
            ]
        );
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].as_u64().unwrap() < (1 << 31));

        let claims = verify_id_token(&bridge, body["id_token"].as_str().unwrap()).await;
        assert_eq!(claims["iss"], bridge.base.as_str());
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["sub"], subject_id("acme", "00u-alice-0001"));
        assert_eq!(claims["email"], "alice@acme.test");
        assert_eq!(claims["name"], "Alice Anderson");
        assert_eq!(
            claims["groups"],
            serde_json::json!(["lf-admins", "ml-team"])
        );
        match &login.nonce {
            Some(n) => assert_eq!(claims["nonce"], n.as_str()),
            None => assert!(
                claims.get("nonce").is_none(),
                "nonce must be absent when not sent"
            ),
        }

        let info: Value = reqwest::Client::new()
            .get(bridge.url("/oidc/userinfo"))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["sub"], claims["sub"]);
        assert_eq!(info["email"], claims["email"]);
        assert_eq!(info["name"], claims["name"]);
    }
    let events = bridge.events();
    assert!(events.iter().any(
        |(_, e)| matches!(e, Event::LoginSucceeded { email, .. } if email == "alice@acme.test")
    ));
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e, Event::TokenIssued { .. })));
}

#[tokio::test]
async fn the_redis_store_carries_the_same_login() {
    let redis = common::servers::redis();
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, Some(&redis.url)).await;
    let login = flow::start(&bridge, "alice@acme.test", true).await;
    let code = login
        .complete(&bridge, &idp, &login.spec(&bridge, "acme"), "acme")
        .await;
    let (status, body) = redeem(&bridge, &code, &login.verifier).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn unknown_client_and_redirect_mismatch_get_a_page_never_a_redirect() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let (_, challenge) = pkce();
    let authorize = |client: &str, redirect: &str| {
        let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url
    };
    let ok = browser()
        .get(authorize(CLIENT_ID, REDIRECT_URI))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);

    for (client, redirect, kind) in [
        ("not-langfuse", REDIRECT_URI, "unknown_client"),
        (
            CLIENT_ID,
            "https://evil.example.com/api/auth/callback/custom",
            "redirect_uri_mismatch",
        ),
        (
            CLIENT_ID,
            "https://langfuse.example.com/api/auth/callback/custom/",
            "redirect_uri_mismatch",
        ),
    ] {
        let resp = browser()
            .get(authorize(client, redirect))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        assert_eq!(error_kind(&resp), kind);
        let cid = resp.headers()["x-correlation-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let page = resp.text().await.unwrap();
        assert!(page.contains(&cid), "the page shows the correlation id");
    }
}

#[tokio::test]
async fn missing_pkce_is_sent_back_as_an_oauth_error() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s1");
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to = location(&resp);
    assert!(to.starts_with(REDIRECT_URI));
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&to, "state").as_deref(), Some("s1"));
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_the_first_access_token() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let code = login
        .complete(&bridge, &idp, &login.spec(&bridge, "acme"), "acme")
        .await;
    let (status, first) = redeem(&bridge, &code, &login.verifier).await;
    assert_eq!(status, 200);
    let at = first["access_token"].as_str().unwrap().to_owned();
    let bridge = &bridge;
    let userinfo = |t: String| async move {
        reqwest::Client::new()
            .get(bridge.url("/oidc/userinfo"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(userinfo(at.clone()).await, 200);

    let (status, second) = redeem(bridge, &code, &login.verifier).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert_eq!(
        userinfo(at).await,
        401,
        "the replayed code revoked its access token"
    );
    assert!(bridge
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::CodeReplayRevoked { .. })));
}

#[tokio::test]
async fn wrong_pkce_verifier_and_redirect_uri_are_refused() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let code = login
        .complete(&bridge, &idp, &login.spec(&bridge, "acme"), "acme")
        .await;
    let (other_verifier, _) = pkce();
    let (status, body) = redeem(&bridge, &code, &other_verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The code is spent by the failed attempt: the right verifier now fails too.
    let (status, _) = redeem(&bridge, &code, &login.verifier).await;
    assert_eq!(status, 400);

    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let code = login
        .complete(&bridge, &idp, &login.spec(&bridge, "acme"), "acme")
        .await;
    let (status, body, _) = token_request(
        &bridge,
        Some(&basic_auth(CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://langfuse.example.com/other"),
            ("code_verifier", &login.verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn replayed_in_response_to_is_refused() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let spec = login.spec(&bridge, "acme");
    login.complete(&bridge, &idp, &spec, "acme").await;
    // The same browser starts a second login; a fresh assertion (new ids) that answers the first,
    // already answered request is refused, while one answering the second is accepted.
    let second = flow::start(&bridge, "alice@acme.test", false).await;
    let mut replay = second.spec(&bridge, "acme");
    replay.in_response_to = spec.in_response_to.clone();
    let resp = second
        .post_acs(&bridge, "acme", &idp.response_b64(&replay))
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_kind(&resp), "in_response_to");
    let mut unknown = second.spec(&bridge, "acme");
    unknown.in_response_to = "_never_sent".into();
    let resp = second
        .post_acs(&bridge, "acme", &idp.response_b64(&unknown))
        .await;
    assert_eq!(error_kind(&resp), "in_response_to");
    second
        .complete(&bridge, &idp, &second.spec(&bridge, "acme"), "acme")
        .await;
}

#[tokio::test]
async fn a_response_posted_from_another_browser_is_refused() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let saml = idp.response_b64(&login.spec(&bridge, "acme"));
    // A browser with no binding cookie at all (field case 019 B): after the same-site resubmit
    // it still has none, and gets a 400 that says so.
    let other = browser();
    let page = flow::post_acs_from(&other, &bridge, "acme", &saml, &login.relay_state).await;
    let resp = flow::follow_resubmit(&other, &bridge, "acme", page).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_kind(&resp), "cookie_missing");
    // A browser holding the cookie of its own login (login CSRF, field case 019 D).
    let attacker = flow::start(&bridge, "mallory@acme.test", false).await;
    let resp = flow::post_acs_from(
        &attacker.browser,
        &bridge,
        "acme",
        &saml,
        &login.relay_state,
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_kind(&resp), "browser_mismatch");
    // The same response from the right browser still works: the refusals consumed nothing.
    let resp = login.post_acs(&bridge, "acme", &saml).await;
    assert_eq!(resp.status(), 303);
}

#[tokio::test]
async fn the_domain_guard_refuses_addresses_outside_the_connection() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let mut spec = login.spec(&bridge, "acme");
    spec.email = Some("mallory@evil.test".into());
    let resp = login
        .post_acs(&bridge, "acme", &idp.response_b64(&spec))
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_kind(&resp), "foreign_domain");
    assert!(bridge.events().iter().any(
        |(_, e)| matches!(e, Event::LoginRefused { reason, .. } if reason == "foreign_domain")
    ));
}

#[tokio::test]
async fn unknown_domain_on_the_login_page_says_so() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let b = browser();
    let (_, challenge) = pkce();
    let url = common::authorize_url(&bridge, &challenge, &[]);
    let resp = b.get(url).send().await.unwrap();
    let login_id = query_param(&bridge.url(&location(&resp)), "login").unwrap();
    let resp = b
        .post(bridge.url("/login"))
        .form(&[
            ("login", login_id.as_str()),
            ("email", "someone@unknown.test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("No single sign-on is configured for unknown.test"));
}

#[tokio::test]
async fn sub_is_stable_per_user_and_distinct_per_connection() {
    let idp_a = TestIdp::new("https://idp.acme.test");
    let idp_b = TestIdp::new("https://idp.beta.test");
    let (ma, mb) = (idp_a.metadata(), idp_b.metadata());
    let bridge = Bridge::start(t0(), |dir, base| {
        make_config(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[
                ConnSpec {
                    id: "acme",
                    domains: &["acme.test"],
                    idp_metadata: ma,
                    extra: "",
                },
                ConnSpec {
                    id: "beta",
                    domains: &["beta.test"],
                    idp_metadata: mb,
                    extra: "",
                },
            ],
        )
    })
    .await;
    let mut subs = Vec::new();
    for (conn, idp, email) in [
        ("acme", &idp_a, "alice@acme.test"),
        ("acme", &idp_a, "ALICE@acme.test"),
        ("beta", &idp_b, "alice@beta.test"),
    ] {
        let login = flow::start(&bridge, email, false).await;
        let mut spec = login.spec(&bridge, conn);
        spec.email = Some(email.into());
        let code = login.complete(&bridge, idp, &spec, conn).await;
        let (_, body) = redeem(&bridge, &code, &login.verifier).await;
        let claims = verify_id_token(&bridge, body["id_token"].as_str().unwrap()).await;
        subs.push(claims["sub"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        subs[0], subs[1],
        "same IdP subject, same connection: same sub"
    );
    assert_ne!(
        subs[0], subs[2],
        "same IdP subject through another connection: another sub"
    );
    assert_eq!(subs[0], subject_id("acme", "00u-alice-0001"));
}

/// Field case 009: client_secret_basic with a form-url-encoded secret, and its variants.
#[tokio::test]
async fn case_009_client_secret_basic_encoding() {
    use base64::Engine;
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = &bridge_with(&idp, None).await;
    let b64 = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let fresh = || async {
        let login = flow::start(bridge, "alice@acme.test", false).await;
        let code = login
            .complete(bridge, &idp, &login.spec(bridge, "acme"), "acme")
            .await;
        (code, login.verifier)
    };
    let form = |code: &str, verifier: &str| -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), REDIRECT_URI.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let send = |auth: Option<String>, fields: Vec<(String, String)>| async move {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        token_request(bridge, auth.as_deref(), &pairs).await
    };
    let encoded_secret: String =
        form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();

    // D first: a wrong secret is 401 with WWW-Authenticate and does not consume the code...
    let (code, verifier) = fresh().await;
    let (s, body, headers) = send(Some(b64("langfuse:wrong-secret")), form(&code, &verifier)).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic realm="));
    // ...A: so the RFC-encoded credentials redeem the same code right after.
    let (s, body, _) = send(
        Some(b64(&format!("langfuse:{encoded_secret}"))),
        form(&code, &verifier),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    // B: raw, unencoded secret — accepted through the documented constant-time fallback.
    let (code, verifier) = fresh().await;
    let (s, _, _) = send(
        Some(b64(&format!("langfuse:{CLIENT_SECRET}"))),
        form(&code, &verifier),
    )
    .await;
    assert_eq!(s, 200);

    // C: `+` turned into a space never matches.
    let (code, verifier) = fresh().await;
    let spaced = CLIENT_SECRET.replace('+', " ");
    let (s, body, _) = send(
        Some(b64(&format!("langfuse:{spaced}"))),
        form(&code, &verifier),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));

    // E: client_secret_post.
    let mut fields = form(&code, &verifier);
    fields.push(("client_id".into(), CLIENT_ID.into()));
    fields.push(("client_secret".into(), CLIENT_SECRET.into()));
    let (s, body, _) = send(None, fields.clone()).await;
    assert_eq!(s, 200, "{body}");

    // F: both methods at once.
    let (code, verifier) = fresh().await;
    let mut fields = form(&code, &verifier);
    fields.push(("client_secret".into(), CLIENT_SECRET.into()));
    let (s, body, _) = send(Some(b64(&format!("langfuse:{encoded_secret}"))), fields).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));

    // Malformed Basic values never crash.
    for bad in ["Basic", "Basic !!!", "Basic bm9jb2xvbg==", "Bearer abc"] {
        let (s, _, _) = send(Some(bad.into()), form(&code, &verifier)).await;
        assert_eq!(s, 401, "{bad}");
    }
}

/// Field case 021: what Langfuse (next-auth) needs of its OIDC provider.
#[tokio::test]
async fn case_021_langfuse_issuer_token_response_userinfo_and_stable_sub() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;

    // Discovery issuer equals the configured issuer (no trailing slash) and the double-slash
    // path a trailing-slash AUTH_CUSTOM_ISSUER produces serves the same document.
    let disc: Value = reqwest::get(bridge.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disc["issuer"], bridge.base.as_str());
    let double: Value = reqwest::get(bridge.url("//.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disc, double);

    // Token response: standard fields only; ID token iss byte-identical to discovery.
    let login = flow::start(&bridge, "ana.souza@acme.test", false).await;
    let mut spec = login.spec(&bridge, "acme");
    spec.name_id = "ana-0042".into();
    spec.email = Some("ana.souza@acme.test".into());
    let code = login.complete(&bridge, &idp, &spec, "acme").await;
    let (_, body) = redeem(&bridge, &code, &login.verifier).await;
    let allowed = [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "id_token",
        "scope",
    ];
    for k in body.as_object().unwrap().keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "non-standard token response field {k}"
        );
    }
    let claims = verify_id_token(&bridge, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["iss"], disc["issuer"]);

    // Userinfo has sub and email matching the ID token.
    let info: Value = reqwest::Client::new()
        .get(bridge.url("/oidc/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&info["sub"], &info["email"]),
        (&claims["sub"], &claims["email"])
    );

    // Second login after the upstream email changed case, on a restarted bridge: same sub,
    // canonical lowercase email.
    drop(bridge);
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(
        &bridge,
        "Ana.Souza@Example.com"
            .replace("Example.com", "acme.test")
            .as_str(),
        false,
    )
    .await;
    let mut spec = login.spec(&bridge, "acme");
    spec.name_id = "ana-0042".into();
    spec.email = Some("Ana.Souza@ACME.test".into());
    let code = login.complete(&bridge, &idp, &spec, "acme").await;
    let (_, body) = redeem(&bridge, &code, &login.verifier).await;
    let again = verify_id_token(&bridge, body["id_token"].as_str().unwrap()).await;
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["email"], "ana.souza@acme.test");
}

#[tokio::test]
async fn sp_metadata_health_and_jwks_are_served() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let md = reqwest::get(bridge.url("/saml/acme/metadata"))
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    let xml = md.text().await.unwrap();
    assert!(xml.contains(&format!("entityID=\"{}/saml/acme/metadata\"", bridge.base)));
    assert!(xml.contains(&format!("Location=\"{}/saml/acme/acs\"", bridge.base)));
    assert_eq!(
        reqwest::get(bridge.url("/saml/nope/metadata"))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(bridge.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(bridge.url("/readyz")).await.unwrap().status(),
        200
    );
    let jwks: Value = reqwest::get(bridge.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "never publish private parts"
    );
}

#[tokio::test]
async fn login_hint_skips_the_page_when_it_routes_to_one_connection() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let (_, challenge) = pkce();
    let authorize =
        |hint: &str| common::authorize_url(&bridge, &challenge, &[("login_hint", hint)]);
    let resp = browser()
        .get(authorize("Alice@Acme.Test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to = location(&resp);
    assert!(to.starts_with(&idp.sso_url), "straight to the IdP: {to}");
    assert!(query_param(&to, "SAMLRequest").is_some());
    assert!(
        resp.headers().get("set-cookie").is_some(),
        "the binding cookie is set on this hop too"
    );

    let b = browser();
    let resp = b.get(authorize("bob@unknown.test")).send().await.unwrap();
    let page_url = bridge.url(&location(&resp));
    assert!(page_url.contains("/login?login="));
    let page = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("value=\"bob@unknown.test\""),
        "the hint pre-fills the form"
    );
}

#[tokio::test]
async fn several_connections_for_one_domain_let_the_user_choose() {
    let idp_a = TestIdp::new("https://idp-a.acme.test");
    let idp_b = TestIdp::new("https://idp-b.acme.test");
    let (ma, mb) = (idp_a.metadata(), idp_b.metadata());
    let bridge = Bridge::start(t0(), |dir, base| {
        make_config(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[
                ConnSpec {
                    id: "acme-old",
                    domains: &["acme.test"],
                    idp_metadata: ma,
                    extra: "",
                },
                ConnSpec {
                    id: "acme-new",
                    domains: &["acme.test"],
                    idp_metadata: mb,
                    extra: "",
                },
            ],
        )
    })
    .await;
    let b = browser();
    let (_, challenge) = pkce();
    let url = common::authorize_url(&bridge, &challenge, &[("login_hint", "alice@acme.test")]);
    // A hint that routes to two connections does not skip the page.
    let resp = b.get(url).send().await.unwrap();
    let login_id = query_param(&bridge.url(&location(&resp)), "login").unwrap();
    let resp = b
        .post(bridge.url("/login"))
        .form(&[("login", login_id.as_str()), ("email", "alice@acme.test")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("value=\"acme-old\"") && page.contains("value=\"acme-new\""),
        "{page}"
    );

    let pick = |conn: &'static str| {
        b.post(bridge.url("/login"))
            .form(&[
                ("login", login_id.as_str()),
                ("email", "alice@acme.test"),
                ("connection", conn),
            ])
            .send()
    };
    let resp = pick("acme-new").await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with(&idp_b.sso_url));
    // A connection that does not serve the domain cannot be forced through the form.
    let resp = pick("nonexistent").await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn metrics_count_the_audit_events() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let mut spec = login.spec(&bridge, "acme");
    spec.email = Some("mallory@evil.test".into());
    let resp = login
        .post_acs(&bridge, "acme", &idp.response_b64(&spec))
        .await;
    assert_eq!(resp.status(), 403);
    let text = reqwest::get(bridge.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sso_bridge_events_total{event=\"login_started\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "sso_bridge_events_total{event=\"login_refused\",reason=\"foreign_domain\"} 1\n"
        ),
        "{text}"
    );
}
