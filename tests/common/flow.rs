//! Drives one login through a bridge the way a browser and Langfuse would, with the test IdP
//! answering, so tests can stop at any hop and mutate what travels.

use base64::Engine;
use serde_json::Value;

use super::saml_idp::{inflate_request, request_id, ResponseSpec, TestIdp};
use super::{browser, location, pkce, query_param, Bridge, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI};

pub struct Login {
    pub browser: reqwest::Client,
    pub verifier: String,
    pub state: String,
    pub nonce: Option<String>,
    /// RelayState: the opaque login id.
    pub relay_state: String,
    /// The AuthnRequest id the response must answer.
    pub request_id: String,
    /// The URL the bridge sent the browser to (the IdP's SSO endpoint with the request).
    pub to_idp: String,
}

/// authorize → login page → email → redirect to the IdP. Returns the login at the IdP.
pub async fn start(bridge: &Bridge, email: &str, nonce: bool) -> Login {
    let browser = browser();
    let (verifier, challenge) = pkce();
    let state = sso_bridge::secret::random_token(16);
    let nonce = nonce.then(|| sso_bridge::secret::random_token(16));
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile")
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(n) = &nonce {
            q.append_pair("nonce", n);
        }
    }
    let resp = browser.get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        303,
        "authorize should redirect to the login page"
    );
    let login_page = bridge.url(&location(&resp));
    let login_id = query_param(&login_page, "login").unwrap();
    let page = browser.get(&login_page).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let resp = browser
        .post(bridge.url("/login"))
        .form(&[("login", login_id.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        303,
        "login page should redirect to the IdP: {}",
        resp.text().await.unwrap()
    );
    let to_idp = location(&resp);
    let relay_state = query_param(&to_idp, "RelayState").unwrap();
    let xml = inflate_request(&query_param(&to_idp, "SAMLRequest").unwrap());
    Login {
        browser,
        verifier,
        state,
        nonce,
        relay_state,
        request_id: request_id(&xml),
        to_idp,
    }
}

impl Login {
    /// A valid response spec for this login at `connection`.
    pub fn spec(&self, bridge: &Bridge, connection: &str) -> ResponseSpec {
        let conn = bridge.state.config.connection(connection).unwrap();
        ResponseSpec::new(
            &conn.saml.acs_url,
            &conn.saml.sp_entity_id,
            &self.request_id,
            sso_bridge::clock::Clock::now(bridge.clock.as_ref()),
        )
    }

    /// Posts a response to the ACS from this login's browser.
    pub async fn post_acs(
        &self,
        bridge: &Bridge,
        connection: &str,
        saml_b64: &str,
    ) -> reqwest::Response {
        post_acs_from(
            &self.browser,
            bridge,
            connection,
            saml_b64,
            &self.relay_state,
        )
        .await
    }

    /// Posts the IdP's signed response and returns the authorization code.
    pub async fn complete(
        &self,
        bridge: &Bridge,
        idp: &TestIdp,
        spec: &ResponseSpec,
        connection: &str,
    ) -> String {
        let resp = self
            .post_acs(bridge, connection, &idp.response_b64(spec))
            .await;
        assert_eq!(
            resp.status(),
            303,
            "ACS refused: {:?}",
            resp.headers().get("x-error-kind")
        );
        let to = location(&resp);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        assert_eq!(
            query_param(&to, "state").as_deref(),
            Some(self.state.as_str())
        );
        assert_eq!(
            query_param(&to, "iss").as_deref(),
            Some(bridge.base.as_str())
        );
        query_param(&to, "code").unwrap()
    }
}

pub async fn post_acs_from(
    browser: &reqwest::Client,
    bridge: &Bridge,
    connection: &str,
    saml_b64: &str,
    relay_state: &str,
) -> reqwest::Response {
    browser
        .post(bridge.url(&format!("/saml/{connection}/acs")))
        .form(&[("SAMLResponse", saml_b64), ("RelayState", relay_state)])
        .send()
        .await
        .unwrap()
}

/// RFC 6749 §2.3.1 Basic credentials: form-url-encode each part, then base64.
pub fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// POSTs to the token endpoint with a raw Authorization header (or none) and form fields.
pub async fn token_request(
    bridge: &Bridge,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .post(bridge.url("/oidc/token"))
        .form(form);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// Redeems a code with client_secret_basic and the right verifier.
pub async fn redeem(bridge: &Bridge, code: &str, verifier: &str) -> (u16, Value) {
    let (s, b, _) = token_request(
        bridge,
        Some(&basic_auth(CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    (s, b)
}

/// Verifies an RS256 ID token against the bridge's JWKS and returns its claims.
pub async fn verify_id_token(bridge: &Bridge, jwt: &str) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use openssl::bn::BigNum;
    let jwks: Value = reqwest::get(bridge.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid published in JWKS");
    let n =
        BigNum::from_slice(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap()).unwrap();
    let e =
        BigNum::from_slice(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap()).unwrap();
    let pkey =
        openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::from_public_components(n, e).unwrap())
            .unwrap();
    let mut v =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
    v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    assert!(
        v.verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap(),
        "ID token signature"
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

/// Field case 019: the ACS answered a POST that came without the binding cookie with its
/// same-site resubmit page. Checks the page and posts its form from `browser`, as its script
/// would (a same-site POST, so a real browser now sends its Lax cookie).
pub async fn follow_resubmit(
    browser: &reqwest::Client,
    bridge: &Bridge,
    connection: &str,
    page: reqwest::Response,
) -> reqwest::Response {
    assert_eq!(
        page.status(),
        200,
        "{:?}",
        page.headers().get("x-error-kind")
    );
    let h = page.headers();
    assert_eq!(h["x-acs-step"], "same-site-resubmit");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    let action = super::browser::form_action(&html).expect("a form");
    let conn = bridge.state.config.connection(connection).unwrap();
    assert_eq!(action, conn.saml.acs_url, "posts back to the same ACS");
    assert!(html.contains("document.forms[0].submit()"), "auto-submits");
    assert!(
        html.contains("<button type=\"submit\">"),
        "a button without scripts"
    );
    let field = |name: &str| {
        super::browser::input_value(&html, name).unwrap_or_else(|| panic!("no {name}: {html}"))
    };
    let fields = [
        ("SAMLResponse", field("SAMLResponse")),
        ("RelayState", field("RelayState")),
        ("resubmit", field("resubmit")),
    ];
    assert_eq!(fields[2].1, "1");
    browser.post(action).form(&fields).send().await.unwrap()
}
