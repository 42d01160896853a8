//! ACS validation against responses signed at test time. Every rejection test first shows the
//! unmutated response is accepted, then changes one thing and asserts the kind of error, so no
//! test can pass because a fixture was broken or expired by accident.

mod common;

use chrono::Duration;
use common::saml_idp::{ResponseSpec, TestIdp, RSA_SHA1, SHA1};
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

    fn verify(&self, spec: &ResponseSpec) -> Result<VerifiedAssertion, AcsError> {
        self.verify_xml(&self.idp.response(spec))
    }

    /// Asserts `spec` is accepted, then that `mutate(spec)` fails with `expected`.
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
        assert_eq!(v.in_response_to, "_req1");
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
        AcsError::Signature,
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
fn sha1_signatures_are_refused_by_default() {
    let f = Fixture::new();
    f.refuses(
        |s| {
            s.signature_alg = RSA_SHA1.into();
            s.digest_alg = SHA1.into();
        },
        AcsError::Signature,
    );
    f.refuses(|s| s.digest_alg = SHA1.into(), AcsError::Signature);
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
    f.refuses(|s| s.email = None, AcsError::Email);
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
