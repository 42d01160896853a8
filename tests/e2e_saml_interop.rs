//! Interop with a real IdP (SimpleSAMLphp 1.19) for what the bridge signs and decrypts: each
//! signing mode of the IdP (response only, assertion only, both), assertions encrypted by the
//! IdP (rsa-oaep-mgf1p + AES-128-CBC, the only combination it uses with a certificate), and
//! AuthnRequests the bridge signs (HTTP-Redirect query signature, HTTP-POST enveloped
//! signature), which the IdP verifies against our certificate — accepting them, and refusing
//! them once tampered with or unsigned. openid-client v5 plays Langfuse throughout.

mod common;

use common::servers::{self, free_port, SspOptions};
use common::sp_keys::SpPair;
use common::{browser, make_config, Bridge, ConnSpec, CLIENT_SECRET, REDIRECT_URI};
use sso_bridge::login::subject_id;

struct World {
    bridge: Bridge,
    idp: servers::SimpleSamlPhp,
    rp: servers::NodeRp,
}

/// A bridge with an SP key pair, and SimpleSAMLphp set up with `ssp` and our certificate.
async fn world(ssp: SspOptions, saml_extra: &str) -> World {
    world_with(ssp, saml_extra, false).await
}

/// `post_sso`: also list SimpleSAMLphp's SSO endpoint with the HTTP-POST binding (the same
/// SSOService.php serves both) in the metadata the bridge reads.
async fn world_with(ssp: SspOptions, saml_extra: &str, post_sso: bool) -> World {
    let rp_port = free_port();
    let callback = format!("http://127.0.0.1:{rp_port}/api/auth/callback/custom");
    let mut idp = None;
    let bridge = Bridge::start(chrono::Utc::now(), |dir, base| {
        let sp = SpPair::generate();
        sp.write(dir, "sp");
        let server = servers::simplesamlphp_with(
            &format!("{base}/saml/acme/metadata"),
            &format!("{base}/saml/acme/acs"),
            &SspOptions {
                sp_cert_pem: Some(sp.cert_pem()),
                ..ssp
            },
        );
        let mut metadata = server.metadata_xml();
        if post_sso {
            let sso = format!("{}/saml2/idp/SSOService.php", server.base);
            metadata = metadata.replace(
                "  </md:IDPSSODescriptor>",
                &format!("    <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{sso}\"/>\n  </md:IDPSSODescriptor>"),
            );
        }
        idp = Some(server);
        let extra = format!(
            "{}{saml_extra}\n[connections.saml.attributes]\nemail = \"email\"\nname = \"displayName\"\ngroups = \"groups\"\n",
            SpPair::config_lines("sp")
        );
        make_config(
            dir,
            base,
            None,
            &[&callback, REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: &extra,
            }],
        )
    })
    .await;
    let rp = servers::node_rp_on(
        &bridge.base,
        "client_secret_basic",
        true,
        CLIENT_SECRET,
        rp_port,
    );
    World {
        bridge,
        idp: idp.unwrap(),
        rp,
    }
}

async fn alice_logs_in(w: &World) {
    let verdict = browser::login(
        &w.rp.base,
        &w.bridge.base,
        &w.idp.base,
        "alice@acme.test",
        "alice",
    )
    .await
    .verdict();
    let claims = &verdict["claims"];
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["lf-admins", "ml-team"])
    );
    assert_eq!(claims["sub"], subject_id("acme", "alice-0001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_response_only_assertion_only_and_both_signed() {
    // Each mode against a connection that requires exactly what the IdP signs, so a login
    // only passes if the IdP really signed that part.
    for (sign_response, sign_assertion, require) in [
        (true, false, "response"),
        (false, true, "assertion"),
        (true, true, "either"),
    ] {
        let w = world(
            SspOptions {
                sign_response,
                sign_assertion,
                ..SspOptions::default()
            },
            &format!("require_signed = \"{require}\"\n"),
        )
        .await;
        alice_logs_in(&w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_encrypted_assertions_are_decrypted() {
    // require_encrypted: a plain assertion would be refused, so a login proves the IdP
    // encrypted and the bridge decrypted. Assertion-only signing is the case samael refuses
    // (the only signature is inside the encrypted assertion); response-only signing leaves
    // the decrypted assertion covered by the outer signature alone.
    for (sign_response, sign_assertion) in [(false, true), (true, false)] {
        let w = world(
            SspOptions {
                sign_response,
                sign_assertion,
                encrypt: true,
                ..SspOptions::default()
            },
            "require_encrypted = true\n",
        )
        .await;
        alice_logs_in(&w).await;
    }
}

/// GETs the IdP's SSO URL: SimpleSAMLphp redirects to its login form only for a request it
/// accepts.
async fn idp_accepts(b: &reqwest::Client, to_idp: &str) -> (bool, String) {
    let resp = b.get(to_idp).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.unwrap_or_default();
    // SimpleSAMLphp's error page (showerrors on) names the exception.
    let reason = body
        .lines()
        .filter(|l| l.contains("ignature") || l.contains("Exception"))
        .map(str::trim)
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ");
    (
        status == 302 && location.contains("loginuserpass"),
        format!("{status} {location} {reason}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_verifies_signed_authn_requests_and_refuses_tampered_ones() {
    let w = world(
        SspOptions {
            sign_assertion: true,
            validate_authnrequest: true,
            ..SspOptions::default()
        },
        "sign_authn_requests = true\n",
    )
    .await;
    // The whole login, through the IdP that insists on signed requests.
    alice_logs_in(&w).await;

    let login = common::flow::start(&w.bridge, "alice@acme.test", false).await;
    assert!(login.to_idp.contains("&Signature="), "{}", login.to_idp);
    let (ok, why) = idp_accepts(&login.browser, &login.to_idp).await;
    assert!(ok, "the signed request must be accepted: {why}");

    // One change each: another RelayState under the same signature, the signature dropped.
    let login = common::flow::start(&w.bridge, "alice@acme.test", false).await;
    let relay = format!("RelayState={}", login.relay_state);
    assert!(login.to_idp.contains(&relay));
    let tampered = login.to_idp.replace(&relay, "RelayState=forged");
    let (ok, why) = idp_accepts(&login.browser, &tampered).await;
    assert!(!ok, "a tampered request must be refused: {why}");
    assert!(why.contains("Unable to validate signature"), "{why}");
    let cut = login.to_idp.find("&Signature=").unwrap();
    let (ok, why) = idp_accepts(&login.browser, &login.to_idp[..cut]).await;
    assert!(!ok, "an unsigned request must be refused: {why}");
    assert!(why.contains("no signature found"), "{why}");
}

/// The bridge's auto-submitting POST-binding page for a fresh login: (action, SAMLRequest,
/// RelayState), and the browser holding that login's cookies.
async fn post_binding_form(bridge: &Bridge) -> (reqwest::Client, String, String, String) {
    use common::browser::{form_action, input_value};
    let b = common::browser();
    let (_, challenge) = common::pkce();
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", common::CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", "s1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let resp = b.get(url).send().await.unwrap();
    let login_page = bridge.url(&common::location(&resp));
    let login_id = common::query_param(&login_page, "login").unwrap();
    let page = b
        .post(bridge.url("/login"))
        .form(&[("login", login_id.as_str()), ("email", "alice@acme.test")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (
        b,
        form_action(&page).expect("auto-post form"),
        input_value(&page, "SAMLRequest").expect("SAMLRequest"),
        input_value(&page, "RelayState").expect("RelayState"),
    )
}

/// Posts an AuthnRequest to the IdP like the auto-submitting form would.
async fn idp_accepts_post(
    b: &reqwest::Client,
    action: &str,
    saml_request: &str,
    relay: &str,
) -> (bool, String) {
    let resp = b
        .post(action)
        .form(&[("SAMLRequest", saml_request), ("RelayState", relay)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.unwrap_or_default();
    let reason = body
        .lines()
        .filter(|l| l.contains("ignature") || l.contains("Exception"))
        .map(str::trim)
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ");
    (
        // 303 after a POST: the redirect to the login form.
        matches!(status, 302 | 303) && location.contains("loginuserpass"),
        format!("{status} {location} {reason}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplesamlphp_verifies_enveloped_signatures_on_post_binding_requests() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let w = world_with(
        SspOptions {
            sign_assertion: true,
            validate_authnrequest: true,
            ..SspOptions::default()
        },
        "sign_authn_requests = true\nbinding = \"post\"\n",
        true,
    )
    .await;
    let (b, action, request, relay) = post_binding_form(&w.bridge).await;
    assert!(action.starts_with(&w.idp.base), "{action}");
    let (ok, why) = idp_accepts_post(&b, &action, &request, &relay).await;
    assert!(ok, "the signed POST request must be accepted: {why}");

    // One change under the signature, then the signature removed.
    let (b, action, request, relay) = post_binding_form(&w.bridge).await;
    let xml = String::from_utf8(b64.decode(&request).unwrap()).unwrap();
    let tampered = xml.replace(r#"AllowCreate="true""#, r#"AllowCreate="false""#);
    assert_ne!(tampered, xml);
    let (ok, why) = idp_accepts_post(&b, &action, &b64.encode(&tampered), &relay).await;
    // SimpleSAMLphp drops a signature whose reference fails to validate, then reports the
    // message as unsigned; AllowCreate is the only difference from the accepted request.
    assert!(!ok, "a tampered request must be refused: {why}");
    assert!(why.contains("no signature found"), "{why}");
    let start = xml.find("<ds:Signature").unwrap();
    let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &xml[..start], &xml[end..]);
    let (ok, why) = idp_accepts_post(&b, &action, &b64.encode(&unsigned), &relay).await;
    assert!(!ok, "an unsigned request must be refused: {why}");
    assert!(why.contains("no signature found"), "{why}");
}
