//! Attacks on the HTTP endpoints (authorize, token, userinfo, ACS, login page), found in the
//! first review of the bridge: every malformed or hostile request gets the bridge's own error
//! shape (OAuth JSON or a clean page), never a panic, a blind redirect or internal text.

mod common;

use common::saml_idp::TestIdp;

use common::flow::{self, basic_auth, redeem, token_request};
use common::{
    browser, location, pkce, query_param, Bridge, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
};

use common::bridge_for as bridge_with;

fn kind(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-error-kind")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn authorize_url(bridge: &Bridge, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

fn valid_pairs(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT_ID.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("response_type", "code".into()),
        ("scope", "openid email".into()),
        ("state", "st".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

async fn authorize_with(
    bridge: &Bridge,
    edit: impl FnOnce(&mut Vec<(&'static str, String)>),
) -> reqwest::Response {
    let (_, challenge) = pkce();
    let mut pairs = valid_pairs(&challenge);
    edit(&mut pairs);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser()
        .get(authorize_url(bridge, &pairs))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn redirect_uri_lookalikes_get_a_page_never_a_redirect() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    assert_eq!(authorize_with(&bridge, |_| {}).await.status(), 303);
    for evil in [
        "https://LANGFUSE.example.com/api/auth/callback/custom",
        "https://langfuse.example.com/api/auth/callback/custom/",
        "https://langfuse.example.com/api/auth/callback/custom?x=1",
        "https://langfuse.example.com/api/auth/callback/custom#x",
        "https://evil.test@langfuse.example.com/api/auth/callback/custom",
        "https://langfuse.example.com@evil.test/api/auth/callback/custom",
        "https://langfuse.example.com/api/auth/callback/%63ustom",
        "https://langfuse.example.com/api/auth/callback/custom/../custom",
        "https://langfuse.example.com:443/api/auth/callback/custom",
        "http://langfuse.example.com/api/auth/callback/custom",
        " https://langfuse.example.com/api/auth/callback/custom",
        "",
    ] {
        let resp = authorize_with(&bridge, |p| p[1].1 = evil.into()).await;
        assert_eq!(resp.status(), 400, "{evil}");
        assert!(resp.headers().get("location").is_none(), "{evil}");
        assert_eq!(kind(&resp), "redirect_uri_mismatch", "{evil}");
    }
}

#[tokio::test]
async fn duplicate_and_huge_authorize_parameters_never_panic_or_redirect_blindly() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    // A second redirect_uri must not be picked silently.
    let resp = authorize_with(&bridge, |p| {
        p.push(("redirect_uri", "https://evil.test/cb".into()))
    })
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    let body = resp.text().await.unwrap();
    assert!(!body.contains("evil.test"), "{body}");

    // Huge state: refused back to the client, never a 5xx.
    let big = "a".repeat(5000);
    let resp = authorize_with(&bridge, |p| p[4].1 = big.clone()).await;
    assert_eq!(resp.status(), 303);
    let to = location(&resp);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request")
    );
    // Very large query: whatever hyper does, not a 5xx.
    let huge = "a".repeat(60_000);
    let resp = authorize_with(&bridge, |p| p[4].1 = huge.clone()).await;
    assert!(!resp.status().is_server_error(), "{}", resp.status());
}

#[tokio::test]
async fn response_type_variants_are_refused_to_the_client() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    for rt in [
        "code id_token",
        "token",
        "id_token",
        "CODE",
        "code ",
        "none",
        "",
    ] {
        let resp = authorize_with(&bridge, |p| p[2].1 = rt.into()).await;
        assert_eq!(resp.status(), 303, "{rt:?}");
        let to = location(&resp);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("unsupported_response_type"),
            "{rt:?}"
        );
        assert_eq!(query_param(&to, "state").as_deref(), Some("st"));
        assert!(query_param(&to, "code").is_none());
    }
    let resp = authorize_with(&bridge, |p| p[6].1 = "plain".into()).await;
    assert_eq!(
        query_param(&location(&resp), "error").as_deref(),
        Some("invalid_request")
    );
}

async fn code_for(bridge: &Bridge, idp: &TestIdp) -> (String, String) {
    let login = flow::start(bridge, "alice@acme.test", false).await;
    let code = login
        .complete(bridge, idp, &login.spec(bridge, "acme"), "acme")
        .await;
    (code, login.verifier.clone())
}

async fn raw_token(
    bridge: &Bridge,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().post(bridge.url("/oidc/token"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, resp.text().await.unwrap(), h)
}

fn oauth_error(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not OAuth JSON: {body:?}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

#[tokio::test]
async fn token_endpoint_answers_oauth_json_to_every_malformed_request() {
    use base64::Engine;
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let form = "application/x-www-form-urlencoded";
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let good_body = "grant_type=authorization_code&code=x&redirect_uri=y&code_verifier=z";
    for auth in [
        "Basic".to_owned(),
        "Basic ".to_owned(),
        "Basic !!!!".to_owned(),
        format!("Basic {}", b64(b"no-colon")),
        format!("Basic {}", b64(b"langfuse:")),
        format!("Basic {}", b64(b":secret")),
        format!("Basic {}", b64(&[0xff, b':', 0xfe])),
        format!("Basic {}", b64(b"langfuse:%zz")),
        format!("Basic {}", b64(b"%zz:secret")),
        "Bearer abc".to_owned(),
        "basic".to_owned(),
    ] {
        let (s, body, h) = raw_token(
            &bridge,
            &[("content-type", form), ("authorization", &auth)],
            good_body,
        )
        .await;
        assert_eq!(s, 401, "{auth}: {body}");
        assert_eq!(oauth_error(&body), "invalid_client", "{auth}");
        assert!(h.get("www-authenticate").is_some(), "{auth}");
    }
    let basic = basic_auth(CLIENT_ID, CLIENT_SECRET);
    // Content types that are not a form.
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut headers = vec![("authorization", basic.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let (s, body, _) = raw_token(&bridge, &headers, good_body).await;
        assert_eq!(s, 400, "{ct:?}: {body}");
        assert_eq!(oauth_error(&body), "invalid_request", "{ct:?}");
    }
    // A body over the limit.
    let huge = format!("{good_body}&pad={}", "a".repeat(300_000));
    let (s, body, _) = raw_token(
        &bridge,
        &[("content-type", form), ("authorization", &basic)],
        huge,
    )
    .await;
    assert!(s == 400 || s == 413, "{s}");
    assert_eq!(oauth_error(&body), "invalid_request");
    // Invalid UTF-8 and garbage in the form.
    let (s, body, _) = raw_token(
        &bridge,
        &[("content-type", form), ("authorization", &basic)],
        vec![0xff, b'=', 0xfe, b'&', b'%', b'z'],
    )
    .await;
    assert_eq!(s, 400, "{body}");
    oauth_error(&body);
    // Grant types.
    for (gt, want) in [
        ("", "unsupported_grant_type"),
        ("refresh_token", "unsupported_grant_type"),
        ("client_credentials", "unsupported_grant_type"),
        ("password", "unsupported_grant_type"),
        ("AUTHORIZATION_CODE", "unsupported_grant_type"),
    ] {
        let (s, body, _) = token_request(
            &bridge,
            Some(&basic),
            &[
                ("grant_type", gt),
                ("code", "x"),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
        assert_eq!(s, 400, "{gt}");
        assert_eq!(body["error"], want, "{gt}");
    }
    let (s, body, _) = token_request(&bridge, Some(&basic), &[("code", "x")]).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_request");
    // Duplicate code parameter.
    let (s, body, _) = raw_token(
        &bridge,
        &[("content-type", form), ("authorization", &basic)],
        "grant_type=authorization_code&code=a&code=b",
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(oauth_error(&body), "invalid_request");
    // Wrong method.
    let resp = reqwest::Client::new()
        .get(bridge.url("/oidc/token"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_yield_exactly_one_success() {
    let redis = common::servers::redis();
    let idp = TestIdp::new("https://idp.acme.test");
    for store in [None, Some(redis.url.as_str())] {
        let bridge = bridge_with(&idp, store).await;
        for _ in 0..3 {
            let (code, verifier) = code_for(&bridge, &idp).await;
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let (url, code, verifier) =
                    (bridge.url("/oidc/token"), code.clone(), verifier.clone());
                set.spawn(async move {
                    let resp = reqwest::Client::new()
                        .post(url)
                        .header("authorization", basic_auth(CLIENT_ID, CLIENT_SECRET))
                        .form(&[
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", REDIRECT_URI),
                            ("code_verifier", verifier.as_str()),
                        ])
                        .send()
                        .await
                        .unwrap();
                    let s = resp.status().as_u16();
                    (s, resp.json::<serde_json::Value>().await.unwrap())
                });
            }
            let results = set.join_all().await;
            let ok = results.iter().filter(|(s, _)| *s == 200).count();
            assert_eq!(ok, 1, "store {store:?}: {results:?}");
            for (s, b) in &results {
                if *s != 200 {
                    assert_eq!(*s, 400);
                    assert_eq!(b["error"], "invalid_grant");
                }
            }
        }
    }
}

#[tokio::test]
async fn pkce_edge_cases_are_refused_and_burn_the_code() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let (code, verifier) = code_for(&bridge, &idp).await;
    // Verifier equal to the challenge (a "plain" downgrade).
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let (s, b) = redeem(&bridge, &code, &challenge).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    // The code is gone now, even for the right verifier.
    let (s, _) = redeem(&bridge, &code, &verifier).await;
    assert_eq!(s, 400);

    for bad in [
        "a".repeat(42),
        "a".repeat(129),
        String::new(),
        format!("{verifier} "),
    ] {
        let (code, _) = code_for(&bridge, &idp).await;
        let (s, b) = redeem(&bridge, &code, &bad).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_grant")),
            "{bad:?}"
        );
    }
    let (code, _) = code_for(&bridge, &idp).await;
    let (s, b, _) = token_request(
        &bridge,
        Some(&basic_auth(CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn userinfo_accepts_only_a_bearer_header_or_form_body() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let (code, verifier) = code_for(&bridge, &idp).await;
    let (s, tokens) = redeem(&bridge, &code, &verifier).await;
    assert_eq!(s, 200);
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let c = reqwest::Client::new();
    let ui = bridge.url("/oidc/userinfo");
    // Lower-case scheme is fine (RFC 7235: case-insensitive).
    let r = c
        .get(&ui)
        .header("authorization", format!("bearer {at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // In the query string: refused (RFC 9700 / OAuth 2.1 drop it; it leaks into logs).
    let r = c
        .get(format!("{ui}?access_token={at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    for bogus in [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer x".to_owned(),
        format!("Bearer {}", "x".repeat(10_000)),
        format!("Basic {at}"),
        format!("Bearer {at}x"),
    ] {
        let r = c
            .get(&ui)
            .header("authorization", &bogus)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bogus:.40}");
        let body = r.text().await.unwrap();
        assert_eq!(oauth_error(&body), "invalid_token");
    }
}

/// RFC 6750 §2: clients MUST NOT use more than one method to send the token; a request
/// with both a Bearer header and a form token should be `invalid_request` (400). Today the
/// header silently wins.
#[tokio::test]
async fn userinfo_refuses_two_token_methods_at_once() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let (code, verifier) = code_for(&bridge, &idp).await;
    let (_, tokens) = redeem(&bridge, &code, &verifier).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(bridge.url("/oidc/userinfo"))
        .bearer_auth(&at)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(oauth_error(&r.text().await.unwrap()), "invalid_request");
}

// -----------------------------------------------------------------------------------------
// ACS over HTTP
// -----------------------------------------------------------------------------------------

fn assert_clean_page(body: &str) {
    for leak in [
        "<saml",
        "<samlp",
        "xmlsec",
        "libxml",
        "SAMLResponse",
        "XmlSec",
        "Error {",
    ] {
        assert!(!body.contains(leak), "error page leaks {leak:?}: {body}");
    }
}

#[tokio::test]
async fn acs_abuse_gets_clean_pages() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let acs = bridge.url("/saml/acme/acs");
    let b = &login.browser;

    // Over 1 MiB.
    let huge = format!(
        "RelayState={}&SAMLResponse={}",
        login.relay_state,
        "A".repeat(1024 * 1024 + 10)
    );
    let r = b
        .post(&acs)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(kind(&r), "too_large");
    assert_clean_page(&r.text().await.unwrap());

    // Invalid UTF-8, in the form and in the decoded document.
    let mut body = format!("RelayState={}&SAMLResponse=", login.relay_state).into_bytes();
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    let r = b
        .post(&acs)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_clean_page(&r.text().await.unwrap());
    use base64::Engine;
    let bad_doc = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b'<', 0x00]);
    let r = login.post_acs(&bridge, "acme", &bad_doc).await;
    assert_eq!(r.status(), 400);
    assert_clean_page(&r.text().await.unwrap());

    // A malformed document that reaches the XML parsers.
    let half = common::saml_idp::b64(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><saml:Assertion",
    );
    let r = login.post_acs(&bridge, "acme", &half).await;
    assert!(
        r.status().is_client_error(),
        "{:?}",
        r.headers().get("x-error-kind")
    );
    assert_clean_page(&r.text().await.unwrap());

    // RelayState that is not a login id.
    let spec = login.spec(&bridge, "acme");
    let good = idp.response_b64(&spec);
    for rs in ["", "x", "../../etc/passwd", &"A".repeat(5000)] {
        let r = flow::post_acs_from(b, &bridge, "acme", &good, rs).await;
        assert_eq!(r.status(), 403, "{rs:.20}");
        assert_eq!(kind(&r), "browser_mismatch");
        assert_clean_page(&r.text().await.unwrap());
    }
    // Unknown connection.
    let r = flow::post_acs_from(b, &bridge, "nope", &good, &login.relay_state).await;
    assert_eq!(r.status(), 404);
    assert_clean_page(&r.text().await.unwrap());
    // Still works after all that.
    login.complete(&bridge, &idp, &spec, "acme").await;
}

#[tokio::test]
async fn login_page_query_errors_are_pages() {
    let idp = TestIdp::new("https://idp.acme.test");
    let bridge = bridge_with(&idp, None).await;
    for q in [
        "login=a&login=b",
        "login=%ff%fe",
        "login[]=x",
        "login=a&login",
    ] {
        let r = browser()
            .get(bridge.url(&format!("/login?{q}")))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let k = kind(&r);
        let body = r.text().await.unwrap();
        assert!(status.is_client_error(), "{q}: {status}");
        assert!(
            ct.starts_with("text/html") && !k.is_empty(),
            "{q}: {status} {ct} {body}"
        );
        assert!(!body.contains("deserialize"), "{q}: {body}");
    }
}
