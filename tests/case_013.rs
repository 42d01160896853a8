//! Field case 013: SSO enforcement by email domain — case, suffix look-alikes, subdomains,
//! plus-addressing, trailing dots, IDN, a foreign tenant's IdP, and double-@ forms — through the
//! login page (routing) and through signed assertions (the domain guard).

mod common;

use common::flow;
use common::saml_idp::TestIdp;
use common::{
    browser, location, make_config, pkce, query_param, t0, Bridge, ConnSpec, REDIRECT_URI,
};

struct Tenants {
    bridge: Bridge,
    acme: TestIdp,
    beta: TestIdp,
}

async fn tenants(acme_extra_domain: &str) -> Tenants {
    let acme = TestIdp::new("https://idp.acme.test");
    let beta = TestIdp::new("https://idp.beta.test");
    let (ma, mb) = (acme.metadata(), beta.metadata());
    let domains_acme = ["example.com", "bücher.example", acme_extra_domain];
    let bridge = Bridge::start(t0(), move |dir, base| {
        let acme_domains: Vec<&str> = domains_acme
            .iter()
            .copied()
            .filter(|d| !d.is_empty())
            .collect();
        make_config(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[
                ConnSpec {
                    id: "acme-saml",
                    domains: &acme_domains,
                    idp_metadata: ma,
                    extra: "",
                },
                ConnSpec {
                    id: "beta-idp",
                    domains: &["beta.example.net"],
                    idp_metadata: mb,
                    extra: "",
                },
            ],
        )
    })
    .await;
    Tenants { bridge, acme, beta }
}

/// What the login page does with an address: `Ok(sso url)` or `Err(status)`.
async fn route(bridge: &Bridge, email: &str) -> Result<String, u16> {
    let b = browser();
    let (_, challenge) = pkce();
    let url = common::authorize_url(bridge, &challenge, &[]);
    let resp = b.get(url).send().await.unwrap();
    let login_id = query_param(&bridge.url(&location(&resp)), "login").unwrap();
    let resp = b
        .post(bridge.url("/login"))
        .form(&[("login", login_id.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        303 => Ok(location(&resp)),
        s => Err(s),
    }
}

/// A signed assertion from `connection`'s IdP carrying `email`: `Ok(email in the ID token)` or
/// `Err(error kind)`.
async fn assert_via(t: &Tenants, connection: &str, email: &str) -> Result<String, String> {
    let (idp, start_email) = if connection == "acme-saml" {
        (&t.acme, "jane@example.com")
    } else {
        (&t.beta, "x@beta.example.net")
    };
    let login = flow::start(&t.bridge, start_email, false).await;
    let mut spec = login.spec(&t.bridge, connection);
    spec.email = Some(email.into());
    let resp = login
        .post_acs(&t.bridge, connection, &idp.response_b64(&spec))
        .await;
    if resp.status() != 303 {
        return Err(resp
            .headers()
            .get("x-error-kind")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default());
    }
    let code = query_param(&location(&resp), "code").unwrap();
    let (_, body) = flow::redeem(&t.bridge, &code, &login.verifier).await;
    let claims = flow::verify_id_token(&t.bridge, body["id_token"].as_str().unwrap()).await;
    Ok(claims["email"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn case_013_domain_enforcement_normalization() {
    let t = tenants("").await;
    let acme_sso = &t.acme.sso_url;

    // (P) the login page.
    for email in [
        "Jane@EXAMPLE.COM",
        "jane+langfuse@example.com",
        "jane@example.com.",
        "jane@xn--bcher-kva.example",
        "jane@Bücher.example",
    ] {
        let to = route(&t.bridge, email)
            .await
            .unwrap_or_else(|s| panic!("{email}: {s}"));
        assert!(
            to.starts_with(acme_sso.as_str()),
            "{email} must be sent to acme's IdP: {to}"
        );
    }
    for email in [
        "jane@notexample.com",
        "jane@eu.example.com",
        "jane@example.com.attacker.example",
    ] {
        assert_eq!(
            route(&t.bridge, email).await,
            Err(400),
            "{email} is not enforced as example.com"
        );
    }
    for email in [
        "\"jane@example.com\"@attacker.example",
        "jane@example.com@attacker.example",
    ] {
        assert_eq!(
            route(&t.bridge, email).await,
            Err(400),
            "{email} is malformed"
        );
    }

    // (S) signed assertions.
    assert_eq!(
        assert_via(&t, "acme-saml", "Jane@EXAMPLE.COM")
            .await
            .as_deref(),
        Ok("jane@example.com")
    );
    assert_eq!(
        assert_via(&t, "acme-saml", "jane+langfuse@example.com")
            .await
            .as_deref(),
        Ok("jane+langfuse@example.com")
    );
    assert_eq!(
        assert_via(&t, "acme-saml", "jane@Bücher.example")
            .await
            .as_deref(),
        Ok("jane@xn--bcher-kva.example")
    );
    assert_eq!(
        assert_via(&t, "acme-saml", "jane@xn--bcher-kva.example")
            .await
            .as_deref(),
        Ok("jane@xn--bcher-kva.example")
    );
    for email in [
        "jane@notexample.com",
        "jane@example.com.attacker.example",
        "jane@eu.example.com",
    ] {
        assert_eq!(
            assert_via(&t, "acme-saml", email).await,
            Err("foreign_domain".into()),
            "{email}"
        );
    }
    // Another tenant's IdP asserting Acme's domain.
    assert_eq!(
        assert_via(&t, "beta-idp", "jane@example.com").await,
        Err("foreign_domain".into())
    );
    assert_eq!(
        assert_via(&t, "beta-idp", "x@beta.example.net")
            .await
            .as_deref(),
        Ok("x@beta.example.net")
    );
    // Double-@ forms are never an example.com address.
    assert_eq!(
        assert_via(&t, "acme-saml", "jane@example.com@attacker.example").await,
        Err("email".into())
    );
    assert_eq!(
        assert_via(&t, "acme-saml", "\"jane@example.com\"@attacker.example").await,
        Err("email".into())
    );
}

#[tokio::test]
async fn case_013_subdomains_only_when_enabled() {
    // Same tenants, acme additionally owning eu.example.com's parent with subdomains on.
    let acme = TestIdp::new("https://idp.acme.test");
    let md = acme.metadata();
    let bridge = Bridge::start(t0(), move |dir, base| {
        let mut cfg = make_config(
            dir,
            base,
            None,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme-saml",
                domains: &["example.com"],
                idp_metadata: md,
                extra: "",
            }],
        );
        cfg.connections[0].domains[0].include_subdomains = true;
        cfg
    })
    .await;
    let t = Tenants {
        bridge,
        acme,
        beta: TestIdp::new("https://unused.test"),
    };
    let to = route(&t.bridge, "jane@eu.example.com").await.unwrap();
    assert!(to.starts_with(t.acme.sso_url.as_str()));
    assert_eq!(
        assert_via(&t, "acme-saml", "jane@EU.example.com")
            .await
            .as_deref(),
        Ok("jane@eu.example.com")
    );
    assert_eq!(
        assert_via(&t, "acme-saml", "jane@notexample.com").await,
        Err("foreign_domain".into())
    );
}
