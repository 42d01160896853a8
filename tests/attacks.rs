//! Attacks on the ACS and the OIDC provider, written by a tester: signature wrapping, comment
//! and encoding tricks, malformed conditions, and protocol abuse over HTTP. Each SAML test first
//! shows the honest response is accepted, so a refusal is never an accident of a broken fixture.

mod common;

use common::saml_idp::{ResponseSpec, TestIdp};
use common::{make_config, t0, ConnSpec};
use sso_bridge::config::RuntimeConfig;
use sso_bridge::saml::acs::{self, AcsError, VerifiedAssertion};

const PUBLIC: &str = "https://sso.example.com";

struct Fixture {
    idp: TestIdp,
    config: RuntimeConfig,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let idp = TestIdp::new("https://idp.acme.test");
        let dir = tempfile::tempdir().unwrap();
        let config = make_config(
            dir.path(),
            PUBLIC,
            None,
            &[common::REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: idp.metadata(),
                extra: "",
            }],
        );
        Fixture {
            idp,
            config,
            _dir: dir,
        }
    }

    fn conn(&self) -> &sso_bridge::config::SamlConnection {
        &self.config.connections[0].saml
    }

    fn spec(&self) -> ResponseSpec {
        ResponseSpec::new(
            &self.conn().acs_url,
            &self.conn().sp_entity_id,
            "_req1",
            t0(),
        )
    }

    fn verify_xml(&self, xml: &str) -> Result<VerifiedAssertion, AcsError> {
        acs::verify(xml.as_bytes(), self.conn(), t0())
    }

    /// A response whose assertion is first edited by `edit_assertion` and then signed (so the
    /// IdP really signed the edited assertion), wrapped in an unsigned Response.
    fn signed_edited(
        &self,
        spec: &ResponseSpec,
        edit_assertion: impl Fn(&str) -> String,
    ) -> String {
        let assertion = edit_assertion(&spec.assertion_xml(&self.idp));
        let signed = self.idp.sign(&assertion);
        spec.response_xml(&self.idp, &signed)
    }
}

// ---------------------------------------------------------------------------------------------
// Signature wrapping (XSW)
// ---------------------------------------------------------------------------------------------

/// The evil unsigned assertion an attacker places where a naive SP looks first.
fn evil_assertion(f: &Fixture, spec: &ResponseSpec) -> String {
    let mut evil = spec.clone();
    evil.sign_assertion = false;
    evil.assertion_id = "_evil".into();
    evil.name_id = "00u-admin".into();
    evil.email = Some("admin@acme.test".into());
    evil.assertion_xml(&f.idp)
}

#[test]
fn xsw_signed_assertion_moved_into_extensions_with_evil_one_in_place() {
    let f = Fixture::new();
    let spec = f.spec();
    let signed_assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    let honest = spec.response_xml(&f.idp, &signed_assertion);
    f.verify_xml(&honest).unwrap();

    let evil = evil_assertion(&f, &spec);
    let ext = format!("<samlp:Extensions>{signed_assertion}</samlp:Extensions>");
    let wrapped = spec.response_xml(&f.idp, &evil).replacen(
        "<samlp:Status>",
        &format!("{ext}<samlp:Status>"),
        1,
    );
    let got = f.verify_xml(&wrapped);
    assert!(
        !matches!(&got, Ok(v) if v.email.as_str() == "admin@acme.test"),
        "XSW accepted: {got:?}"
    );
    assert!(got.is_err(), "{got:?}");
}

#[test]
fn xsw_evil_assertion_in_advice_of_the_signed_one_is_refused() {
    // Advice inside the signed assertion would break its digest; so put an evil assertion in an
    // Advice of an unsigned wrapper instead and the signed one elsewhere.
    let f = Fixture::new();
    let spec = f.spec();
    let signed_assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    let evil = evil_assertion(&f, &spec).replacen(
        "<saml:Subject>",
        &format!("<saml:Advice>{signed_assertion}</saml:Advice><saml:Subject>"),
        1,
    );
    let xml = spec.response_xml(&f.idp, &evil);
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::AssertionCount);
}

#[test]
fn xsw_signed_assertion_wrapped_in_unknown_element_yields_only_signed_claims() {
    let f = Fixture::new();
    let spec = f.spec();
    let signed_assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    let xml = spec.response_xml(
        &f.idp,
        &format!("<x:Wrapper xmlns:x=\"urn:evil\">{signed_assertion}</x:Wrapper>"),
    );
    // Whatever the outcome, the claims can only be the signed ones.
    if let Ok(v) = f.verify_xml(&xml) {
        assert_eq!(v.email.as_str(), "alice@acme.test");
        assert_eq!(v.subject, "00u-alice-0001");
    }
}

#[test]
fn xsw_duplicate_ids_are_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let signed_assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    let mut evil = spec.clone();
    evil.sign_assertion = false;
    evil.email = Some("admin@acme.test".into());
    // Same ID as the signed assertion, placed first.
    let evil_xml = evil.assertion_xml(&f.idp);
    let xml = spec.response_xml(&f.idp, &format!("{evil_xml}{signed_assertion}"));
    assert!(f.verify_xml(&xml).is_err());
    // An unknown element carrying the same ID (not an assertion, so not counted).
    let xml = spec.response_xml(
        &f.idp,
        &format!(
            "<x:Evil xmlns:x=\"urn:evil\" ID=\"{}\"/>{signed_assertion}",
            spec.assertion_id
        ),
    );
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::DuplicateId);
}

// ---------------------------------------------------------------------------------------------
// Comments, whitespace and encodings
// ---------------------------------------------------------------------------------------------

#[test]
fn comment_inside_email_cannot_truncate_the_signed_value() {
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.email = Some("alice@acme.test.evil.test".into());
    let xml = f.idp.response(&spec);
    assert_eq!(
        f.verify_xml(&xml).unwrap().email.as_str(),
        "alice@acme.test.evil.test"
    );
    // Comments are not part of exclusive c14n, so the signature still verifies after this.
    let tampered = xml.replace(
        "alice@acme.test.evil.test",
        "alice@acme.test<!---->.evil.test",
    );
    assert_ne!(tampered, xml);
    match f.verify_xml(&tampered) {
        Ok(v) => assert_eq!(v.email.as_str(), "alice@acme.test.evil.test"),
        Err(e) => assert_ne!(e, AcsError::Doctype, "{e:?}"),
    }
}

#[test]
fn comment_inside_name_id_cannot_truncate_the_subject() {
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.name_id = "00u-alice-0001-attacker".into();
    let xml = f.idp.response(&spec);
    assert_eq!(
        f.verify_xml(&xml).unwrap().subject,
        "00u-alice-0001-attacker"
    );
    let tampered = xml.replace("00u-alice-0001-attacker", "00u-alice-0001<!---->-attacker");
    if let Ok(v) = f.verify_xml(&tampered) {
        assert_eq!(v.subject, "00u-alice-0001-attacker");
    }
}

#[test]
fn attribute_values_with_surrounding_whitespace_are_trimmed_not_split() {
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.email = Some("\n   Alice@ACME.test \n".into());
    spec.groups = vec!["  lf-admins\n".into(), "ml team".into()];
    let v = f.verify_xml(&f.idp.response(&spec)).unwrap();
    assert_eq!(v.email.as_str(), "alice@acme.test");
    assert_eq!(v.groups, vec!["lf-admins", "ml team"]);
    // A newline inside the address is not an address.
    spec.email = Some("alice@acme.test\nbob@acme.test".into());
    assert_eq!(
        f.verify_xml(&f.idp.response(&spec)).unwrap_err(),
        AcsError::Email
    );
}

/// The DOCTYPE guard scans raw bytes for `<!DOCTYPE`, but libxml2 honours the document's
/// declared encoding. In UTF-7, `<` may be written `+ADw-`, so a DTD passes the byte scan and
/// reaches the parser (design §6: "no DTD").
#[test]
fn doctype_hidden_by_a_declared_encoding_is_refused() {
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.sign_response = true;
    spec.sign_assertion = false;
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    // Every '+' of the base64 values must be written "+-" in UTF-7.
    let body = xml.replace('+', "+-");
    let utf7 = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-7\"?>+ADw-!DOCTYPE samlp:Response +AFs-+ADw-!ENTITY e \"x\"+AD4-+AF0-+AD4-{body}"
    );
    assert!(!utf7.contains("<!DOCTYPE"));
    let got = f.verify_xml(&utf7);
    assert!(
        matches!(got, Err(AcsError::Malformed | AcsError::Doctype)),
        "a UTF-7 document with a DTD was accepted: {got:?}"
    );
}

#[test]
fn documents_libxml_would_not_read_as_utf8_are_refused() {
    let f = Fixture::new();
    let xml = f.idp.response(&f.spec());
    let declared = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{xml}");
    f.verify_xml(&declared).unwrap();
    for label in ["ISO-8859-1", "UTF-16", "UTF-7", "ebcdic-cp-us"] {
        let relabelled = format!("<?xml version=\"1.0\" encoding=\"{label}\"?>{xml}");
        assert_eq!(
            f.verify_xml(&relabelled).unwrap_err(),
            AcsError::Malformed,
            "{label}"
        );
    }
    // UTF-16 without a BOM is valid UTF-8 byte-wise (ASCII plus NULs); libxml2 detects it.
    let utf16: Vec<u8> = xml.bytes().flat_map(|b| [b, 0]).collect();
    assert!(acs::verify(&utf16, f.conn(), t0()).is_err());
}

// ---------------------------------------------------------------------------------------------
// Conditions, status, envelope
// ---------------------------------------------------------------------------------------------

#[test]
fn conditions_without_audience_restriction_are_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    f.verify_xml(&f.signed_edited(&spec, |a| a.to_owned()))
        .unwrap();
    let aud = format!(
        "<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>",
        spec.audience
    );
    let xml = f.signed_edited(&spec, |a| a.replace(&aud, ""));
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::Audience);
    // No Conditions at all.
    let xml = f.signed_edited(&spec, |a| {
        let start = a.find("<saml:Conditions").unwrap();
        let end = a.find("</saml:Conditions>").unwrap() + "</saml:Conditions>".len();
        format!("{}{}", &a[..start], &a[end..])
    });
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::Audience);
}

#[test]
fn every_audience_restriction_must_name_us() {
    let f = Fixture::new();
    let spec = f.spec();
    let ours = format!(
        "<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>",
        spec.audience
    );
    let other = "<saml:AudienceRestriction><saml:Audience>https://other.example/sp</saml:Audience></saml:AudienceRestriction>";
    let xml = f.signed_edited(&spec, |a| a.replace(&ours, &format!("{ours}{other}")));
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::Audience);
    let xml = f.signed_edited(&spec, |a| a.replace(&ours, &format!("{ours}{ours}")));
    f.verify_xml(&xml).unwrap();
}

#[test]
fn response_without_status_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    let start = xml.find("<samlp:Status>").unwrap();
    let end = xml.find("</samlp:Status>").unwrap() + "</samlp:Status>".len();
    let no_status = format!("{}{}", &xml[..start], &xml[end..]);
    assert!(matches!(
        f.verify_xml(&no_status).unwrap_err(),
        AcsError::Status(_) | AcsError::Malformed
    ));
}

#[test]
fn response_in_response_to_differing_from_the_signed_assertion_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    let other = xml.replacen("InResponseTo=\"_req1\"", "InResponseTo=\"_req2\"", 1);
    assert_ne!(other, xml);
    assert_eq!(f.verify_xml(&other).unwrap_err(), AcsError::InResponseTo);
}

#[test]
fn confirmation_without_not_on_or_after_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let noa = format!(
        "NotOnOrAfter=\"{}\" Recipient",
        spec.confirmation_not_on_or_after
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let xml = f.signed_edited(&spec, |a| {
        assert!(a.contains(&noa));
        a.replace(&noa, "Recipient")
    });
    assert_eq!(
        f.verify_xml(&xml).unwrap_err(),
        AcsError::SubjectConfirmation
    );
}

#[test]
fn conditions_without_not_on_or_after_still_expire_with_the_confirmation() {
    let f = Fixture::new();
    let spec = f.spec();
    let noa = format!(
        " NotOnOrAfter=\"{}\"><saml:AudienceRestriction>",
        spec.not_on_or_after
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let xml = f.signed_edited(&spec, |a| {
        assert!(a.contains(&noa));
        a.replace(&noa, "><saml:AudienceRestriction>")
    });
    let v = f.verify_xml(&xml).unwrap();
    assert_eq!(
        v.expires_at,
        spec.confirmation_not_on_or_after + chrono::Duration::seconds(120)
    );
}

// ---------------------------------------------------------------------------------------------
// OIDC provider over HTTP
// ---------------------------------------------------------------------------------------------

mod http {
    use super::*;
    use common::flow::{self, basic_auth, redeem, token_request};
    use common::{
        browser, location, pkce, query_param, Bridge, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
    };

    pub async fn bridge_with(idp: &TestIdp, redis: Option<&str>) -> Bridge {
        let metadata = idp.metadata();
        Bridge::start(t0(), |dir, base| {
            make_config(
                dir,
                base,
                redis,
                &[REDIRECT_URI],
                &[ConnSpec {
                    id: "acme",
                    domains: &["acme.test"],
                    idp_metadata: metadata,
                    extra: "",
                }],
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
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Two connections listing the same domain: the login page can route that domain to neither
/// (it says "no single sign-on is configured"), yet the domain guard lets *both* IdPs assert its
/// addresses — so a second tenant's IdP added by mistake (or for another subsidiary) can sign in
/// as any user of the first. `check` must refuse it.
#[test]
/// A domain served by two connections is allowed (the login page lets the user choose), but
/// `check` flags it: both IdPs may then assert its addresses.
fn a_domain_claimed_by_two_connections_is_flagged() {
    let a = TestIdp::new("https://idp.acme.test");
    let b = TestIdp::new("https://idp.partner.test");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.xml"), a.metadata()).unwrap();
    std::fs::write(dir.path().join("b.xml"), b.metadata()).unwrap();
    let toml = |b_domains: &str| {
        format!(
            r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_file = "a.xml"
[[connections]]
id = "partner"
kind = "saml"
domains = {b_domains}
[connections.saml]
idp_metadata_file = "b.xml"
"#
        )
    };
    let clean =
        sso_bridge::config::from_toml(&toml(r#"["partner.test"]"#), dir.path(), &|_| None).unwrap();
    assert!(!clean
        .lints
        .iter()
        .any(|l| l.message.contains("also served by")));
    for (dup, key) in [
        (
            r#"["partner.test", "acme.test"]"#,
            "connections[1].domains[1]",
        ),
        (r#"["ACME.test."]"#, "connections[1].domains[0]"),
    ] {
        let cfg = sso_bridge::config::from_toml(&toml(dup), dir.path(), &|_| None).unwrap();
        let lint = cfg
            .lints
            .iter()
            .find(|l| l.message.contains("also served by"))
            .unwrap_or_else(|| panic!("no lint for {dup}"));
        assert_eq!(lint.key, key);
        assert!(lint.message.contains("acme"), "{}", lint.message);
    }
}

/// Keycloak before 12 and federation aggregates publish an `EntitiesDescriptor` around the
/// IdP's `EntityDescriptor`. The operator must be told that, not "has no entityID".
#[test]
fn an_entities_descriptor_wrapper_gets_an_error_that_says_so() {
    let idp = TestIdp::new("https://idp.acme.test");
    let md = idp.metadata().replace("<?xml version=\"1.0\"?>", "");
    let wrapped = format!(
        "<?xml version=\"1.0\"?><md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" Name=\"urn:keycloak\">{md}</md:EntitiesDescriptor>"
    );
    let err = sso_bridge::saml::metadata::IdpMetadata::parse(&wrapped).unwrap_err();
    assert!(err.to_string().contains("EntitiesDescriptor"), "{err}");
}

/// SAML profiles §4.1.4.2: an assertion used for Web Browser SSO MUST contain an
/// AuthnStatement. Without one, the IdP vouched for attributes, not for a sign-in.
#[test]
fn an_assertion_without_authn_statement_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    f.verify_xml(&f.signed_edited(&spec, |a| a.to_owned()))
        .unwrap();
    let xml = f.signed_edited(&spec, |a| {
        let start = a.find("<saml:AuthnStatement").unwrap();
        let end = a.find("</saml:AuthnStatement>").unwrap() + "</saml:AuthnStatement>".len();
        format!("{}{}", &a[..start], &a[end..])
    });
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::AuthnStatement);
}
