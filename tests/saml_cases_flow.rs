//! Field cases 004 (the oracle half), 006 and 019, and the HTTP-POST binding, through a bridge
//! on a real socket with cookie-keeping clients playing the browsers. The verification halves
//! of the cases are in `saml_cases.rs`.

mod common;

use common::flow;
use common::saml_idp::{b64, ResponseSpec, TestIdp};
use common::{browser, location, make_config, pkce, t0, Bridge, ConnSpec, CLIENT_ID, REDIRECT_URI};

#[tokio::test]
async fn case_004_external_entities_never_fetched_and_no_oracle() {
    let idp = TestIdp::new("https://idp.acme.test");
    let metadata = idp.metadata();
    let bridge = Bridge::start(t0(), |dir, base| {
        make_config(
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
        )
    })
    .await;
    // A listener that records any connection the bridge might make.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.set_nonblocking(true).unwrap();
    let port = probe.local_addr().unwrap().port();
    let doc = |file: &str| {
        format!(
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY f SYSTEM "{file}"><!ENTITY n SYSTEM "http://127.0.0.1:{port}/xxe-probe">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_y" Version="2.0" IssueInstant="2026-12-03T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">&f;&n;</saml:Issuer></samlp:Response>"#
        )
    };
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let mut bodies = Vec::new();
    for file in [
        "file:///etc/hostname".to_owned(),
        format!(
            "file:///nonexistent-{}",
            sso_bridge::secret::random_token(6)
        ),
    ] {
        let resp = login.post_acs(&bridge, "acme", &b64(&doc(&file))).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["x-error-kind"], "doctype");
        assert!(resp.headers().get("set-cookie").is_none());
        let cid = resp.headers()["x-correlation-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = resp.text().await.unwrap().replace(&cid, "CID");
        assert!(!body.contains("hostname") && !body.contains("nonexistent"));
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "B and C must be indistinguishable");
    assert!(
        probe.accept().is_err(),
        "the bridge must not fetch external entities"
    );
}

async fn two_connection_bridge(acme: &TestIdp, beta: &TestIdp, public: Option<&str>) -> Bridge {
    let (ma, mb) = (acme.metadata(), beta.metadata());
    let public = public.map(str::to_owned);
    Bridge::start(t0(), move |dir, base| {
        make_config(
            dir,
            public.as_deref().unwrap_or(base),
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
                    extra: r#"idp_initiated = { enabled = true, client_id = "langfuse", start_url = "https://langfuse.example.com/auth/sign-in" }"#,
                },
            ],
        )
    })
    .await
}

fn kind(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-error-kind")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn post_unsolicited(
    bridge: &Bridge,
    b: &reqwest::Client,
    conn: &str,
    saml: &str,
) -> reqwest::Response {
    b.post(bridge.url(&format!("/saml/{conn}/acs")))
        .form(&[("SAMLResponse", saml)])
        .send()
        .await
        .unwrap()
}

fn unsolicited_spec(bridge: &Bridge, conn: &str, email: &str) -> ResponseSpec {
    let c = bridge.state.config.connection(conn).unwrap();
    let mut s = ResponseSpec::new(&c.saml.acs_url, &c.saml.sp_entity_id, "", t0()).unsolicited();
    s.email = Some(email.into());
    s
}

#[tokio::test]
async fn case_006_idp_initiated_off_by_default_on_where_enabled_never_replayable() {
    let (acme_idp, beta_idp) = (
        TestIdp::new("https://idp.acme.test"),
        TestIdp::new("https://idp.beta.test"),
    );
    let bridge = two_connection_bridge(&acme_idp, &beta_idp, None).await;

    // 1. Unsolicited to a connection without IdP-initiated login.
    let to_acme = acme_idp.response_b64(&unsolicited_spec(&bridge, "acme", "jane@acme.test"));
    let resp = post_unsolicited(&bridge, &browser(), "acme", &to_acme).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(kind(&resp), "unsolicited");

    // Every other check still applies to unsolicited responses.
    let mut wrong = unsolicited_spec(&bridge, "beta", "jane@beta.test");
    wrong.audience = "https://other-sp.example.com".into();
    let resp = post_unsolicited(&bridge, &browser(), "beta", &beta_idp.response_b64(&wrong)).await;
    assert_eq!(kind(&resp), "audience");

    // 2. Unsolicited to the enabled connection: the browser goes to Langfuse's sign-in, whose
    // normal authorize request (own state, PKCE) then completes without the IdP.
    let saml = beta_idp.response_b64(&unsolicited_spec(&bridge, "beta", "jane@beta.test"));
    let jane = browser();
    let resp = post_unsolicited(&bridge, &jane, "beta", &saml).await;
    assert_eq!(resp.status(), 303, "{}", kind(&resp));
    assert_eq!(location(&resp), "https://langfuse.example.com/auth/sign-in");
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", "lf-state-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let resp = jane.get(url.clone()).send().await.unwrap();
    let to = location(&resp);
    assert!(to.starts_with(REDIRECT_URI), "{to}");
    assert_eq!(
        common::query_param(&to, "state").as_deref(),
        Some("lf-state-1")
    );
    let code = common::query_param(&to, "code").unwrap();
    let (status, body) = flow::redeem(&bridge, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let claims = flow::verify_id_token(&bridge, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["email"], "jane@beta.test");
    assert_eq!(
        claims["sub"],
        sso_bridge::login::subject_id("beta", "00u-alice-0001")
    );
    // The hand-off is single use: the next authorize request goes to the login page.
    let resp = jane.get(url).send().await.unwrap();
    assert!(location(&resp).starts_with("/login?"));

    // 3. The same response again, from a fresh browser: already used.
    let resp = post_unsolicited(&bridge, &browser(), "beta", &saml).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(kind(&resp), "replay");

    // 4. An InResponseTo that was never issued.
    let mut unknown = unsolicited_spec(&bridge, "acme", "jane@acme.test");
    unknown.in_response_to = "_never-issued-123".into();
    let resp = post_unsolicited(
        &bridge,
        &browser(),
        "acme",
        &acme_idp.response_b64(&unknown),
    )
    .await;
    assert_eq!(kind(&resp), "in_response_to");

    // 5. A response to browser X's request posted by browser Y (with its own login).
    let x = flow::start(&bridge, "jane@acme.test", false).await;
    let y = flow::start(&bridge, "mallory@acme.test", false).await;
    let for_x = acme_idp.response_b64(&x.spec(&bridge, "acme"));
    let resp = flow::post_acs_from(&y.browser, &bridge, "acme", &for_x, &y.relay_state).await;
    assert_eq!(kind(&resp), "in_response_to");
    // 6. The happy path in X; then the same response again is "already used".
    let resp = x.post_acs(&bridge, "acme", &for_x).await;
    assert_eq!(resp.status(), 303);
    let x2 = flow::start(&bridge, "jane@acme.test", false).await;
    let resp = flow::post_acs_from(&x2.browser, &bridge, "acme", &for_x, &x2.relay_state).await;
    assert_eq!(kind(&resp), "replay");
}

#[tokio::test]
async fn case_019_state_cookie_survives_the_cross_site_post() {
    let (acme_idp, beta_idp) = (
        TestIdp::new("https://idp.acme.test"),
        TestIdp::new("https://idp.beta.test"),
    );
    // https public URL: the binding cookie is SameSite=None; Secure; HttpOnly, short-lived,
    // limited to the SAML endpoints.
    let bridge = two_connection_bridge(&acme_idp, &beta_idp, Some("https://sso.example.com")).await;
    let (_, challenge) = pkce();
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", "jane@acme.test");
    let resp = browser().get(url.clone()).send().await.unwrap();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let c = &cookies[0];
    for part in [
        "SameSite=None",
        "Secure",
        "HttpOnly",
        "Path=/saml/",
        "Max-Age=600",
    ] {
        assert!(c.contains(part), "{c} lacks {part}");
    }
    // Plain http (dev): never SameSite=None without Secure.
    let dev = two_connection_bridge(&acme_idp, &beta_idp, None).await;
    let dev_url = url.as_str().replace(&bridge.base, &dev.base);
    let resp = browser().get(&dev_url).send().await.unwrap();
    let c = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        c.contains("SameSite=Lax") && !c.contains("SameSite=None"),
        "{c}"
    );

    // B: the POST arrives with no cookie at all. The bridge answers once with its same-site
    // resubmit page (a POST from its own origin, which carries Lax cookies) and consumes
    // nothing; the resubmitted POST still without the cookie gets a clear 400, and there is no
    // silent fall-back to IdP-initiated login.
    let login = flow::start(&dev, "jane@acme.test", false).await;
    let saml = acme_idp.response_b64(&login.spec(&dev, "acme"));
    let cookieless = browser();
    let page = flow::post_acs_from(&cookieless, &dev, "acme", &saml, &login.relay_state).await;
    let resp = flow::follow_resubmit(&cookieless, &dev, "acme", page).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(kind(&resp), "cookie_missing");
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("did not send the sign-in cookie"));
    let refusals = |detail: &str| {
        dev.events()
            .iter()
            .filter(|(_, e)| matches!(e, sso_bridge::audit::Event::LoginRefused { detail: d, .. } if d == detail))
            .count()
    };
    assert_eq!(refusals("state cookie missing (cross-site POST)"), 1);
    // A first POST that already claims to be the resubmit is refused at once: no loop.
    let resp = cookieless
        .post(dev.url("/saml/acme/acs"))
        .form(&[
            ("SAMLResponse", saml.as_str()),
            ("RelayState", login.relay_state.as_str()),
            ("resubmit", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(kind(&resp), "cookie_missing");
    // D: the attacker's own login cookie with the victim's RelayState: refused, first POST or
    // resubmitted.
    let attacker = flow::start(&dev, "mallory@acme.test", false).await;
    let resp =
        flow::post_acs_from(&attacker.browser, &dev, "acme", &saml, &login.relay_state).await;
    assert_eq!(kind(&resp), "browser_mismatch");
    let page = flow::post_acs_from(&cookieless, &dev, "acme", &saml, &login.relay_state).await;
    let resp = flow::follow_resubmit(&attacker.browser, &dev, "acme", page).await;
    assert_eq!(kind(&resp), "browser_mismatch");
    // The right browser completes: its first POST lost the cookie (cross-site), the resubmit
    // carries it. Nothing above consumed the request, the login or the assertion id.
    let page = flow::post_acs_from(&cookieless, &dev, "acme", &saml, &login.relay_state).await;
    let resp = flow::follow_resubmit(&login.browser, &dev, "acme", page).await;
    assert_eq!(
        resp.status(),
        303,
        "{:?}",
        resp.headers().get("x-error-kind")
    );
    assert!(location(&resp).starts_with(REDIRECT_URI));
    // Once used, the response is spent: a later cookieless copy gets no resubmit page.
    let resp = flow::post_acs_from(&cookieless, &dev, "acme", &saml, &login.relay_state).await;
    assert_ne!(resp.status(), 200);
    assert!(resp.headers().get("x-acs-step").is_none());
}

#[tokio::test]
async fn case_019_resubmit_page_escapes_what_it_echoes() {
    let (acme_idp, beta_idp) = (
        TestIdp::new("https://idp.acme.test"),
        TestIdp::new("https://idp.beta.test"),
    );
    let dev = two_connection_bridge(&acme_idp, &beta_idp, None).await;
    let login = flow::start(&dev, "jane@acme.test", false).await;
    let saml = acme_idp.response_b64(&login.spec(&dev, "acme"));
    // RelayState is not covered by the signature: whatever arrives is echoed, escaped.
    let hostile = r#"x"><script>alert(1)</script><input name="a"#;
    let resp = flow::post_acs_from(&browser(), &dev, "acme", &saml, hostile).await;
    assert_eq!(resp.headers()["x-acs-step"], "same-site-resubmit");
    let html = resp.text().await.unwrap();
    assert!(!html.contains(hostile), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("\"><"), "{html}");
    assert_eq!(
        common::browser::input_value(&html, "RelayState").as_deref(),
        Some(hostile)
    );
    assert_eq!(
        common::browser::input_value(&html, "SAMLResponse").as_deref(),
        Some(saml.as_str())
    );
}

#[tokio::test]
async fn authn_request_over_the_post_binding_has_a_no_script_button() {
    let idp = TestIdp::new("https://idp.acme.test");
    let metadata = idp.metadata().replace(
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
    );
    let bridge = Bridge::start(t0(), |dir, base| {
        make_config(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: "binding = \"post\"\nforce_authn = true\nname_id_format = \"persistent\"",
            }],
        )
    })
    .await;
    let (_, challenge) = pkce();
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", "alice@acme.test");
    let b = browser();
    let resp = b.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"<form method="post" action="https://idp.acme.test/sso">"#),
        "{html}"
    );
    assert!(html.contains(r#"<button type="submit">"#));
    let marker = r#"name="SAMLRequest" value=""#;
    let at = html.find(marker).unwrap() + marker.len();
    let value = &html[at..at + html[at..].find('"').unwrap()];
    use base64::Engine;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap(),
    )
    .unwrap();
    assert!(xml.contains(r#"ForceAuthn="true""#), "{xml}");
    assert!(xml.contains("nameid-format:persistent"), "{xml}");
    assert!(xml.contains(r#"Destination="https://idp.acme.test/sso""#));
}
