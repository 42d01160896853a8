//! Attacks on the ACS, written by a tester: signature wrapping, comment
//! and encoding tricks, malformed conditions (HTTP endpoints: attacks_http.rs). Each test first
//! shows the honest response is accepted, so a refusal is never an accident of a broken fixture.

mod common;

use common::saml_idp::{ResponseSpec, TestIdp};
use common::t0;
use sso_bridge::saml::acs::{self, AcsError};

type Fixture = common::acs_fixture::AcsFixture;

impl Fixture {
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
// Configuration
// ---------------------------------------------------------------------------------------------

/// Two connections listing the same domain: the login page can route that domain to neither
/// (it says "no single sign-on is configured"), yet the domain guard lets *both* IdPs assert its
/// addresses — so a second tenant's IdP added by mistake (or for another subsidiary) can sign in
/// as any user of the first.
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
