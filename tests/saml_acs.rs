//! ACS validation against responses signed at test time. Every rejection test first shows the
//! unmutated response is accepted, then changes one thing and asserts the kind of error, so no
//! test can pass because a fixture was broken or expired by accident.

mod common;

use chrono::Duration;
use common::saml_idp::{ResponseSpec, TestIdp, RSA_SHA1, SHA1};
use common::t0;
use sso_bridge::saml::acs::{self, AcsError};

type Fixture = common::acs_fixture::AcsFixture;

impl Fixture {
    fn refuses(&self, mutate: impl FnOnce(&mut ResponseSpec), expected: AcsError) {
        let spec = self.spec();
        self.verify(&spec)
            .expect("the unmutated response must be accepted");
        let mut bad = spec.clone();
        mutate(&mut bad);
        assert_eq!(self.verify(&bad).unwrap_err(), expected);
    }
}

#[test]
fn accepts_assertion_signed_response_signed_and_both() {
    let f = Fixture::new();
    for (resp, assertion) in [(false, true), (true, false), (true, true)] {
        let mut spec = f.spec();
        spec.sign_response = resp;
        spec.sign_assertion = assertion;
        let v = f
            .verify(&spec)
            .unwrap_or_else(|e| panic!("resp={resp} assertion={assertion}: {e:?}"));
        assert_eq!(v.email.as_str(), "alice@acme.test");
        assert_eq!(v.subject, "00u-alice-0001");
        assert_eq!(v.name.as_deref(), Some("Alice Anderson"));
        assert_eq!(v.groups, vec!["lf-admins", "ml-team"]);
        assert_eq!(v.in_response_to.as_deref(), Some("_req1"));
    }
}

#[test]
fn unsigned_response_is_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| {
            s.sign_assertion = false;
            s.sign_response = false;
        },
        AcsError::Unsigned,
    );
}

#[test]
fn tampered_signature_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    let tampered = xml.replace("alice@acme.test", "admin@acme.test");
    assert_ne!(tampered, xml);
    assert_eq!(f.verify_xml(&tampered).unwrap_err(), AcsError::Signature);
}

#[test]
fn signature_from_another_key_is_refused_even_with_its_cert_in_keyinfo() {
    let f = Fixture::new();
    let attacker = TestIdp::new("https://idp.acme.test");
    let spec = f.spec();
    f.verify(&spec).unwrap();
    // Same issuer, same everything, but signed by a key the metadata does not hold; the
    // attacker's certificate travels in KeyInfo, which must never be trusted.
    let forged = attacker.response(&spec);
    assert_eq!(f.verify_xml(&forged).unwrap_err(), AcsError::Signature);
}

#[test]
fn wrong_audience_is_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| s.audience = "https://other-sp.example.com/metadata".into(),
        AcsError::Audience,
    );
    // A prefix or a trailing slash is not the audience either.
    f.refuses(|s| s.audience.push('/'), AcsError::Audience);
}

#[test]
fn expired_assertion_is_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| {
            s.not_on_or_after = t0() - Duration::seconds(121);
            s.confirmation_not_on_or_after = t0() + Duration::seconds(300);
        },
        AcsError::Expired,
    );
    f.refuses(
        |s| s.confirmation_not_on_or_after = t0() - Duration::seconds(121),
        AcsError::Expired,
    );
}

#[test]
fn skew_boundaries_are_exact() {
    // Default skew is 120 s: NotOnOrAfter is exclusive, widened by the skew.
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.not_on_or_after = t0() - Duration::seconds(119);
    f.verify(&spec)
        .expect("expired 119 s ago is within the 120 s skew");
    spec.not_on_or_after = t0() - Duration::seconds(120);
    assert_eq!(f.verify(&spec).unwrap_err(), AcsError::Expired);

    let mut spec = f.spec();
    spec.not_before = t0() + Duration::seconds(120);
    f.verify(&spec).expect("valid in 120 s is within the skew");
    spec.not_before = t0() + Duration::seconds(121);
    assert_eq!(f.verify(&spec).unwrap_err(), AcsError::NotYetValid);
}

#[test]
fn not_before_in_the_future_is_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| s.not_before = t0() + Duration::seconds(600),
        AcsError::NotYetValid,
    );
}

#[test]
fn wrong_destination_and_recipient_are_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| s.destination = Some("https://evil.example.com/acs".into()),
        AcsError::Destination,
    );
    f.refuses(|s| s.destination = None, AcsError::Destination);
    f.refuses(
        |s| s.recipient = "https://evil.example.com/acs".into(),
        AcsError::Recipient,
    );
}

#[test]
fn wrong_issuer_and_failed_status_are_refused() {
    let f = Fixture::new();
    f.refuses(
        |s| s.issuer = Some("https://idp.other.test".into()),
        AcsError::Issuer,
    );
    f.refuses(
        |s| s.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".into(),
        AcsError::Status("Responder".into()),
    );
}

#[test]
fn sha1_signatures_are_refused_by_default_and_accepted_on_opt_in() {
    let f = Fixture::new();
    f.refuses(
        |s| {
            s.signature_alg = RSA_SHA1.into();
            s.digest_alg = SHA1.into();
        },
        AcsError::Algorithm,
    );
    f.refuses(|s| s.digest_alg = SHA1.into(), AcsError::Algorithm);
    let legacy = Fixture::with("allow_sha1 = true");
    let mut spec = legacy.spec();
    spec.signature_alg = RSA_SHA1.into();
    spec.digest_alg = SHA1.into();
    legacy.verify(&spec).expect("SHA-1 accepted on opt-in");
    assert!(legacy
        .config
        .lints
        .iter()
        .any(|l| l.key.ends_with("allow_sha1")));
}

#[test]
fn doctype_is_refused_before_parsing() {
    let f = Fixture::new();
    let xml = f.idp.response(&f.spec());
    f.verify_xml(&xml).unwrap();
    let with_entity =
        format!("<!DOCTYPE samlp:Response [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{xml}");
    assert_eq!(f.verify_xml(&with_entity).unwrap_err(), AcsError::Doctype);
}

#[test]
fn a_second_unsigned_assertion_is_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    let mut evil = spec.clone();
    evil.sign_assertion = false;
    evil.assertion_id = "_evil".into();
    evil.email = Some("admin@acme.test".into());
    let extra = evil.assertion_xml(&f.idp);
    let doubled = xml.replace("</samlp:Response>", &format!("{extra}</samlp:Response>"));
    assert_eq!(
        f.verify_xml(&doubled).unwrap_err(),
        AcsError::AssertionCount
    );
}

#[test]
fn subject_and_email_are_required() {
    let f = Fixture::new();
    f.refuses(
        |s| s.name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into(),
        AcsError::Subject,
    );
    f.refuses(
        |s| s.email = None,
        AcsError::MissingAttribute {
            attribute: "email".into(),
            received: vec!["displayName".into(), "groups".into()],
        },
    );
    f.refuses(|s| s.email = Some("not-an-address".into()), AcsError::Email);
}

#[test]
fn missing_groups_mean_no_groups() {
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.groups.clear();
    assert!(f.verify(&spec).unwrap().groups.is_empty());
}

#[test]
fn garbage_never_panics() {
    let f = Fixture::new();
    for input in [
        &b""[..],
        b"<",
        b"not xml",
        b"<samlp:Response/>",
        &[0xff, 0xfe, 0x00],
        b"<a><b></a>",
    ] {
        assert!(acs::verify(input, f.conn(), t0()).is_err());
    }
    assert_eq!(
        acs::decode_form_value("%%%").unwrap_err(),
        AcsError::Encoding
    );
}

#[test]
fn metadata_without_a_signing_certificate_is_a_config_error() {
    let idp = TestIdp::new("https://idp.acme.test");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("idp.xml"),
        idp.metadata_with_use(Some("encryption")),
    )
    .unwrap();
    let toml = r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_file = "idp.xml"
"#;
    let err = sso_bridge::config::from_toml(toml, dir.path(), &|_| None).unwrap_err();
    assert_eq!(err.key, "connections[0].saml.idp_metadata_file");
    assert!(err.message.contains("signing"), "{err}");
    // The same file with the certificate marked for signing loads.
    std::fs::write(dir.path().join("idp.xml"), idp.metadata()).unwrap();
    sso_bridge::config::from_toml(toml, dir.path(), &|_| None).unwrap();
}

/// The pieces of a response with only the assertion signed, for building wrapping attacks.
struct Parts {
    signed: String,
    assertion: String,
    signature: String,
    evil: String,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let a = s.find(start).unwrap();
    let b = s[a..].find(end).unwrap() + a + end.len();
    &s[a..b]
}

impl Fixture {
    fn parts(&self, spec: &ResponseSpec) -> Parts {
        let signed = self.idp.response(spec);
        let assertion = between(&signed, "<saml:Assertion", "</saml:Assertion>").to_owned();
        let signature = between(&assertion, "<ds:Signature", "</ds:Signature>").to_owned();
        let mut evil = spec.clone();
        evil.sign_assertion = false;
        evil.assertion_id = "_evil".into();
        evil.email = Some("admin@acme.test".into());
        evil.groups = vec!["lf-owners".into()];
        Parts {
            signed,
            assertion,
            signature,
            evil: evil.assertion_xml(&self.idp),
        }
    }
}

fn with_signature(assertion: &str, signature: &str) -> String {
    assertion.replacen("</saml:Issuer>", &format!("</saml:Issuer>{signature}"), 1)
}

fn with_inside(signature: &str, content: &str) -> String {
    signature.replacen("</ds:Signature>", &format!("{content}</ds:Signature>"), 1)
}

#[test]
fn signature_wrapping_xsw1_to_xsw8_is_refused() {
    let f = Fixture::new();
    // XSW1/XSW2: a signed Response wrapped by an evil one.
    let mut rs = f.spec();
    rs.sign_response = true;
    rs.sign_assertion = false;
    let signed_response = f.idp.response(&rs);
    f.verify_xml(&signed_response).unwrap();
    let rsig = between(&signed_response, "<ds:Signature", "</ds:Signature>").to_owned();
    let original_unsigned = signed_response.replacen(&rsig, "", 1);
    let p = f.parts(&f.spec());
    let mut evil_envelope = rs.clone();
    evil_envelope.response_id = "_evilresp".into();
    evil_envelope.sign_response = false;
    let xsw1 = evil_envelope.response_xml(&f.idp, &p.evil);
    let xsw1 = xsw1.replacen(
        "</saml:Issuer>",
        &format!(
            "</saml:Issuer>{}",
            with_inside(
                &rsig,
                &format!("<ds:Object>{original_unsigned}</ds:Object>")
            )
        ),
        1,
    );
    let xsw2 = evil_envelope.response_xml(&f.idp, &p.evil).replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer>{original_unsigned}{rsig}"),
        1,
    );

    // XSW3-XSW8: a signed assertion and an evil one.
    let spec = f.spec();
    let p = f.parts(&spec);
    f.verify_xml(&p.signed).unwrap();
    let original_unsigned = p.assertion.replacen(&p.signature, "", 1);
    let wrap = |body: &str| spec.response_xml(&f.idp, body);
    let evil_signed = with_signature(&p.evil, &p.signature);
    let attacks = [
        ("XSW1", xsw1),
        ("XSW2", xsw2),
        ("XSW3", wrap(&format!("{}{}", p.evil, p.assertion))),
        (
            "XSW4",
            wrap(&p.evil.replacen(
                "</saml:Assertion>",
                &format!("{}</saml:Assertion>", p.assertion),
                1,
            )),
        ),
        ("XSW5", wrap(&format!("{evil_signed}{original_unsigned}"))),
        (
            "XSW6",
            wrap(&with_signature(
                &p.evil,
                &with_inside(&p.signature, &original_unsigned),
            )),
        ),
        (
            "XSW7",
            wrap(&format!(
                "<samlp:Extensions>{}</samlp:Extensions>{}",
                p.assertion, p.evil
            )),
        ),
        (
            "XSW8",
            wrap(&with_signature(
                &p.evil,
                &with_inside(
                    &p.signature,
                    &format!("<ds:Object>{original_unsigned}</ds:Object>"),
                ),
            )),
        ),
    ];
    for (name, xml) in attacks {
        let result = f.verify_xml(&xml);
        assert_eq!(result.unwrap_err(), AcsError::AssertionCount, "{name}");
    }
    // The one-assertion rule alone is not what stops them: the evil assertion moved into the
    // signed one's place, with the signed one removed, fails the signature.
    let swapped = wrap(&evil_signed);
    assert_eq!(f.verify_xml(&swapped).unwrap_err(), AcsError::Signature);
}

#[test]
fn a_comment_inside_signed_text_cannot_truncate_it() {
    // The IdP signs "alice@acme.test.evil.test"; an attacker splits it with a comment after
    // signing (exclusive c14n drops comments, so the digest still matches). A parser that
    // read the first text node would see "alice@acme.test".
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.email = Some("alice@acme.test.evil.test".into());
    spec.name_id = "alice@acme.test.evil.test".into();
    let xml = f.idp.response(&spec);
    let v = f.verify_xml(&xml).unwrap();
    assert_eq!(v.email.as_str(), "alice@acme.test.evil.test");
    let split = xml.replace(
        ">alice@acme.test.evil.test<",
        ">alice@acme.test<!---->.evil.test<",
    );
    assert_eq!(split.matches("<!---->").count(), 2, "NameID and attribute");
    let v = f.verify_xml(&split).unwrap();
    assert_eq!(v.email.as_str(), "alice@acme.test.evil.test");
    assert_eq!(v.subject, "alice@acme.test.evil.test");
    // A processing instruction is part of the canonical form: inserting one breaks the digest.
    let pi = xml.replace(
        ">alice@acme.test.evil.test<",
        ">alice@acme.test<?x y?>.evil.test<",
    );
    assert_eq!(f.verify_xml(&pi).unwrap_err(), AcsError::Signature);
}

#[test]
fn a_signature_over_another_element_covers_no_claims() {
    let f = Fixture::new();
    let spec = f.spec();
    f.verify(&spec).unwrap();
    // A valid IdP signature, but over an Extensions element, not the Response or assertion.
    let mut unsigned = spec.clone();
    unsigned.sign_assertion = false;
    let assertion = unsigned.assertion_xml(&f.idp);
    let response = unsigned.response_xml(&f.idp, &assertion);
    let ext = format!(
        r#"<samlp:Extensions ID="_ext">{}<x xmlns="urn:x">y</x></samlp:Extensions>"#,
        spec.signature_template(&f.idp, "_ext")
    );
    let with_ext = response.replacen("<samlp:Status>", &format!("{ext}<samlp:Status>"), 1);
    let signed = f.idp.sign(&with_ext);
    assert!(signed.contains("<ds:SignatureValue>") && !signed.contains("<ds:SignatureValue></"));
    assert_eq!(f.verify_xml(&signed).unwrap_err(), AcsError::Signature);
}

#[test]
fn duplicate_ids_are_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    let dup = xml.replacen(
        "<samlp:Status>",
        &format!(
            r#"<samlp:Extensions><x xmlns="urn:x" ID="{}"/></samlp:Extensions><samlp:Status>"#,
            spec.assertion_id
        ),
        1,
    );
    assert_eq!(f.verify_xml(&dup).unwrap_err(), AcsError::DuplicateId);
}

#[test]
fn entity_expansion_bomb_is_refused_fast() {
    let f = Fixture::new();
    let xml = f.idp.response(&f.spec());
    f.verify_xml(&xml).unwrap();
    let mut dtd = String::from(r#"<!DOCTYPE samlp:Response [<!ENTITY l0 "lol">"#);
    for i in 1..10 {
        let prev = format!("&l{};", i - 1).repeat(10);
        dtd.push_str(&format!(r#"<!ENTITY l{i} "{prev}">"#));
    }
    dtd.push_str("]>");
    let bomb = format!("{dtd}{}", xml.replacen("Alice Anderson", "&l9;", 1));
    let started = std::time::Instant::now();
    assert_eq!(f.verify_xml(&bomb).unwrap_err(), AcsError::Doctype);
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
}

#[test]
fn signature_policy_response_requires_the_response_signature() {
    let f = Fixture::with("require_signed = \"response\"");
    let mut spec = f.spec();
    spec.sign_response = true;
    spec.sign_assertion = false;
    f.verify(&spec).unwrap();
    spec.sign_response = false;
    spec.sign_assertion = true;
    assert_eq!(
        f.verify(&spec).unwrap_err(),
        AcsError::SignaturePolicy("the response")
    );
}

#[tokio::test]
async fn a_replayed_assertion_is_refused_by_the_replay_cache() {
    use sso_bridge::saml::acs::{remember_request, Solicitation};
    let f = Fixture::new();
    let clock = sso_bridge::clock::ManualClock::new(t0());
    let store = sso_bridge::store::memory::MemoryStore::new(clock);
    let v = f.verify(&f.spec()).unwrap();
    let sent = acs::SentRequest {
        login_id: "login-1".into(),
        connection_id: "acme".into(),
    };
    let ttl = std::time::Duration::from_secs(600);
    remember_request(&store, "_req1", &sent, ttl).await.unwrap();
    acs::accept(&store, &v, "acme", Solicitation::Login("login-1"), t0())
        .await
        .unwrap();
    // Posted again: the request is consumed and the assertion is known.
    assert_eq!(
        acs::accept(&store, &v, "acme", Solicitation::Login("login-1"), t0())
            .await
            .unwrap_err(),
        AcsError::Replay
    );
    // Even with a fresh request record under the same id, the assertion itself was used.
    remember_request(&store, "_req1", &sent, ttl).await.unwrap();
    assert_eq!(
        acs::accept(&store, &v, "acme", Solicitation::Login("login-1"), t0())
            .await
            .unwrap_err(),
        AcsError::Replay
    );
    // Unsolicited reuse is caught the same way.
    let mut u = f.spec().unsolicited();
    u.assertion_id = "_unsolicited1".into();
    let v = f.verify(&u).unwrap();
    let allowed = Solicitation::Unsolicited { allowed: true };
    acs::accept(&store, &v, "acme", allowed, t0())
        .await
        .unwrap();
    assert_eq!(
        acs::accept(&store, &v, "acme", allowed, t0())
            .await
            .unwrap_err(),
        AcsError::Replay
    );
    // Disabled: refused as unsolicited, and nothing is burnt.
    let mut u2 = f.spec().unsolicited();
    u2.assertion_id = "_unsolicited2".into();
    let v2 = f.verify(&u2).unwrap();
    let off = Solicitation::Unsolicited { allowed: false };
    assert_eq!(
        acs::accept(&store, &v2, "acme", off, t0())
            .await
            .unwrap_err(),
        AcsError::Unsolicited
    );
    acs::accept(&store, &v2, "acme", allowed, t0())
        .await
        .unwrap();
}

/// OneTimeUse (SAML core §2.5.1.5): the assertion is honoured once. Every assertion is already
/// single use here (its id stays in the replay cache until it expires), so OneTimeUse is
/// accepted and a second use refused exactly like any replay.
#[tokio::test]
async fn one_time_use_is_honoured() {
    use sso_bridge::saml::acs::{remember_request, Solicitation};
    let f = Fixture::new();
    let clock = sso_bridge::clock::ManualClock::new(t0());
    let store = sso_bridge::store::memory::MemoryStore::new(clock);
    let mut spec = f.spec();
    spec.one_time_use = true;
    let v = f
        .verify(&spec)
        .expect("an assertion with OneTimeUse is accepted");
    let sent = acs::SentRequest {
        login_id: "login-1".into(),
        connection_id: "acme".into(),
    };
    let ttl = std::time::Duration::from_secs(600);
    remember_request(&store, "_req1", &sent, ttl).await.unwrap();
    acs::accept(&store, &v, "acme", Solicitation::Login("login-1"), t0())
        .await
        .unwrap();
    remember_request(&store, "_req1", &sent, ttl).await.unwrap();
    assert_eq!(
        acs::accept(&store, &v, "acme", Solicitation::Login("login-1"), t0())
            .await
            .unwrap_err(),
        AcsError::Replay
    );
}
