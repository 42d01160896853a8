//! Field cases 003-007, 015, 016, 018 and 019 (../shared/cases), one test per case, named
//! after its number. Responses are signed at test time; each refusal is shown next to the
//! accepted unmutated response, and asserts the kind of error.

mod common;

use chrono::Duration;
use common::flow;
use common::saml_idp::{esc, inflate_request, ResponseSpec, TestIdp};
use common::{browser, location, make_config, pkce, t0, Bridge, ConnSpec, CLIENT_ID, REDIRECT_URI};
use sso_bridge::config::{RuntimeConfig, SamlConnection};
use sso_bridge::saml::acs::{self, AcsError, VerifiedAssertion};
use sso_bridge::saml::request::{self, Delivery};

const PUBLIC: &str = "https://sso.example.com";

/// One connection with `extra` TOML under its `[connections.saml]`.
struct Case {
    idp: TestIdp,
    config: RuntimeConfig,
    _dir: tempfile::TempDir,
}

impl Case {
    fn new(domain: &str, extra: &str) -> Self {
        let idp = TestIdp::new("https://idp.example.net");
        let dir = tempfile::tempdir().unwrap();
        let config = make_config(
            dir.path(),
            PUBLIC,
            None,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &[domain],
                idp_metadata: idp.metadata(),
                extra,
            }],
        );
        Case {
            idp,
            config,
            _dir: dir,
        }
    }

    fn conn(&self) -> &SamlConnection {
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

    fn verify(&self, spec: &ResponseSpec) -> Result<VerifiedAssertion, AcsError> {
        self.verify_xml(&self.idp.response(spec))
    }

    fn verify_xml(&self, xml: &str) -> Result<VerifiedAssertion, AcsError> {
        acs::verify(xml.as_bytes(), self.conn(), t0())
    }
}

fn attr(name: &str, values: &[&str]) -> String {
    let vals: String = values
        .iter()
        .map(|v| format!("<saml:AttributeValue>{}</saml:AttributeValue>", esc(v)))
        .collect();
    format!(
        r#"<saml:Attribute Name="{}">{vals}</saml:Attribute>"#,
        esc(name)
    )
}

fn statement(attrs: &[String]) -> String {
    format!(
        "<saml:AttributeStatement>{}</saml:AttributeStatement>",
        attrs.concat()
    )
}

fn set(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

#[test]
fn case_003_signature_placements_and_wrapped_base64() {
    let c = Case::new("acme.test", "");
    let place = |resp: bool, assertion: bool| {
        let mut s = c.spec();
        s.sign_response = resp;
        s.sign_assertion = assertion;
        s
    };
    // A: assertion only; B: response only (covering the assertion).
    for (r, a) in [(false, true), (true, false)] {
        let v = c.verify(&place(r, a)).unwrap();
        assert_eq!(v.email.as_str(), "alice@acme.test");
    }
    // C: neither signed.
    assert_eq!(
        c.verify(&place(false, false)).unwrap_err(),
        AcsError::Unsigned
    );
    // D: a valid assertion signature plus a Response signature by a key not in the metadata.
    let good = c.idp.response(&place(false, true));
    c.verify_xml(&good).unwrap();
    let attacker = TestIdp::new("https://idp.example.net");
    let spec = place(false, true);
    let inner = {
        // The same signed assertion, inside a Response the attacker signs.
        let start = good.find("<saml:Assertion").unwrap();
        let end = good.rfind("</samlp:Response>").unwrap();
        good[start..end].to_owned()
    };
    let mut outer = spec.clone();
    outer.sign_response = true;
    let forged = attacker.sign(&outer.response_xml(&attacker, &inner));
    assert_eq!(c.verify_xml(&forged).unwrap_err(), AcsError::Signature);
    // B with require_signed = "assertion": refused with its own kind, no crash.
    let strict = Case::new("acme.test", r#"require_signed = "assertion""#);
    let mut b = strict.spec();
    b.sign_response = true;
    b.sign_assertion = false;
    let mut a = b.clone();
    a.sign_response = false;
    a.sign_assertion = true;
    strict.verify(&a).unwrap();
    assert_eq!(
        strict.verify(&b).unwrap_err(),
        AcsError::SignaturePolicy("the assertion")
    );
    // E: base64 wrapped every 76 characters with CRLF decodes like A.
    let plain = c.idp.response_b64(&place(false, true));
    let wrapped: Vec<String> = plain
        .as_bytes()
        .chunks(76)
        .map(|ch| String::from_utf8(ch.to_vec()).unwrap())
        .collect();
    let wrapped = wrapped.join("\r\n");
    let xml = acs::decode_form_value(&wrapped).unwrap();
    acs::verify(&xml, c.conn(), t0()).unwrap();
    // Characters outside the alphabet: a clean "malformed" (400-class), not a crash.
    assert_eq!(
        acs::decode_form_value(&format!("{}*!", &plain[..40])).unwrap_err(),
        AcsError::Encoding
    );
}

#[test]
fn case_004_doctype_bomb_external_entity_and_bare_doctype() {
    let c = Case::new("acme.test", "");
    let good = c.idp.response(&c.spec());
    c.verify_xml(&good).unwrap();
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE samlp:Response [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0" IssueInstant="2026-12-03T10:00:00Z">
  <saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">&f;</saml:Issuer>
</samlp:Response>"#;
    let started = std::time::Instant::now();
    assert_eq!(c.verify_xml(bomb).unwrap_err(), AcsError::Doctype);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let external = |target: &str| {
        format!(
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY f SYSTEM "{target}"><!ENTITY n SYSTEM "http://127.0.0.1:9/xxe-probe">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_y" Version="2.0" IssueInstant="2026-12-03T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">&f;&n;</saml:Issuer></samlp:Response>"#
        )
    };
    assert_eq!(
        c.verify_xml(&external("file:///etc/hostname")).unwrap_err(),
        AcsError::Doctype
    );
    // D: a bare DOCTYPE in front of a valid signed response.
    let bare = format!("<!DOCTYPE samlp:Response>{good}");
    assert_eq!(c.verify_xml(&bare).unwrap_err(), AcsError::Doctype);
}

#[test]
fn case_005_entra_group_overage_is_refused_not_treated_as_no_groups() {
    let c = Case::new("example.com", r#"preset = "entra""#);
    let oid = "http://schemas.microsoft.com/identity/claims/objectidentifier";
    let email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    let groups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
    let admin = "11111111-1111-1111-1111-111111111111";
    let base = vec![
        attr(email, &["lead@example.com"]),
        attr(oid, &["00000000-0000-0000-0000-0000000000bb"]),
        attr(
            "http://schemas.microsoft.com/identity/claims/tenantid",
            &["00000000-0000-0000-0000-0000000000aa"],
        ),
    ];
    // C: 140 other groups plus the admin group: all read, no overage handling.
    let many: Vec<String> = (0..140)
        .map(|i| format!("{i:08}-0000-0000-0000-000000000000"))
        .chain([admin.to_owned()])
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut spec = c.spec();
    let mut attrs = base.clone();
    attrs.push(attr(groups, &many_refs));
    spec.attribute_statements = Some(statement(&attrs));
    let v = c.verify(&spec).unwrap();
    assert!(v.groups.iter().any(|g| g == admin));
    assert_eq!(v.groups.len(), 141);
    assert_eq!(v.subject, "00000000-0000-0000-0000-0000000000bb");
    // A: the link instead of the groups.
    let mut attrs = base.clone();
    attrs.push(attr(
        "http://schemas.microsoft.com/claims/groups.link",
        &["https://graph.windows.net/00000000-0000-0000-0000-0000000000aa/users/00000000-0000-0000-0000-0000000000bb/getMemberObjects"],
    ));
    spec.attribute_statements = Some(statement(&attrs));
    let err = c.verify(&spec).unwrap_err();
    assert_eq!(err, AcsError::GroupOverage);
    assert!(err.to_string().contains("Entra ID group overage"));
    assert!(err.to_string().contains("assigned to the application"));
}

#[test]
fn case_007_clock_skew_boundaries() {
    // Default skew: 120 s (the case assumes at most 180 s).
    let c = Case::new("acme.test", "");
    let ok = |s: &ResponseSpec| c.verify(s).map(|_| ());
    // A: the IdP 0.4 s ahead, millisecond NotBefore.
    let mut a = c.spec();
    a.raw_not_before = Some("2026-12-03T12:00:00.400Z".into());
    a.raw_issue_instant = Some("2026-12-03T12:00:00.400Z".into());
    ok(&a).unwrap();
    // B: the IdP 10 minutes ahead.
    let mut b = c.spec();
    b.not_before = t0() + Duration::minutes(10);
    b.issue_instant = t0() + Duration::minutes(10);
    b.not_on_or_after = t0() + Duration::minutes(70);
    b.confirmation_not_on_or_after = t0() + Duration::minutes(15);
    assert_eq!(ok(&b).unwrap_err(), AcsError::NotYetValid);
    // C: expired an hour ago.
    let mut cc = c.spec();
    cc.not_before = t0() - Duration::hours(2);
    cc.issue_instant = t0() - Duration::hours(2);
    cc.not_on_or_after = t0() - Duration::hours(1);
    cc.confirmation_not_on_or_after = t0() - Duration::hours(1);
    assert_eq!(ok(&cc).unwrap_err(), AcsError::Expired);
    // D: expired 60 s ago, within the skew, on both Conditions and SubjectConfirmationData.
    let mut d = c.spec();
    d.not_before = t0() - Duration::minutes(10);
    d.issue_instant = t0() - Duration::minutes(10);
    d.not_on_or_after = t0() - Duration::seconds(60);
    d.confirmation_not_on_or_after = t0() - Duration::seconds(60);
    ok(&d).unwrap();
    let strict = Case::new("acme.test", "clock_skew_secs = 0");
    let mut d0 = strict.spec();
    d0.not_before = d.not_before;
    d0.issue_instant = d.issue_instant;
    d0.not_on_or_after = d.not_on_or_after;
    d0.confirmation_not_on_or_after = d.confirmation_not_on_or_after;
    assert_eq!(strict.verify(&d0).unwrap_err(), AcsError::Expired);
    // Skew 0: NotOnOrAfter == now is exclusive, one second later is fine.
    let mut edge = strict.spec();
    edge.not_on_or_after = t0() + Duration::seconds(1);
    strict.verify(&edge).unwrap();
    edge.not_on_or_after = t0();
    assert_eq!(strict.verify(&edge).unwrap_err(), AcsError::Expired);
    let mut edge = strict.spec();
    edge.confirmation_not_on_or_after = t0();
    assert_eq!(strict.verify(&edge).unwrap_err(), AcsError::Expired);
    // E: seven fractional digits (ADFS).
    let mut e = c.spec();
    e.raw_not_before = Some("2026-12-03T11:59:00.1234567Z".into());
    e.raw_not_on_or_after = Some("2026-12-03T13:00:00.1234567Z".into());
    e.raw_issue_instant = Some("2026-12-03T11:59:00.1234567Z".into());
    ok(&e).unwrap();
    // F: an offset instead of Z decides exactly like the equivalent Z form.
    let mut f = c.spec();
    f.raw_not_before = Some("2026-12-03T12:59:00+01:00".into());
    f.raw_not_on_or_after = Some("2026-12-03T14:00:00+01:00".into());
    ok(&f).unwrap();
    for (offset, zulu) in [
        ("2026-12-03T12:57:00+01:00", "2026-12-03T11:57:00Z"),
        ("2026-12-03T12:59:00+01:00", "2026-12-03T11:59:00Z"),
    ] {
        let mut with_offset = c.spec();
        with_offset.raw_not_on_or_after = Some(offset.into());
        let mut with_z = c.spec();
        with_z.raw_not_on_or_after = Some(zulu.into());
        assert_eq!(ok(&with_offset), ok(&with_z), "{offset}");
    }
    // The skew is capped: an operator cannot switch expiry off.
    let idp = TestIdp::new("https://idp.example.net");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.xml"), idp.metadata()).unwrap();
    let toml = "public_url = \"https://sso.example.com\"\n[keys]\nfiles = [\"k.pem\"]\n[[connections]]\nid = \"acme\"\nkind = \"saml\"\ndomains = [\"acme.test\"]\n[connections.saml]\nidp_metadata_file = \"idp.xml\"\nclock_skew_secs = 3600\n";
    let err = sso_bridge::config::from_toml(toml, dir.path(), &|_| None).unwrap_err();
    assert_eq!(err.key, "connections[0].saml.clock_skew_secs");
}

#[test]
fn case_015_adfs_claim_uris_and_multivalued_attributes() {
    let c = Case::new("example.com", r#"preset = "adfs""#);
    let email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    let group = "http://schemas.xmlsoap.org/claims/Group";
    let expected = set(&["Domain Users", "LF-Members", "LF-Admins"]);
    let run = |statements: String| {
        let mut s = c.spec();
        s.attribute_statements = Some(statements);
        c.verify(&s)
    };
    // A: one element, several values.
    let a = run(statement(&[
        attr(email, &["mo.ali@example.com"]),
        attr(group, &["Domain Users", "LF-Members", "LF-Admins"]),
    ]))
    .unwrap();
    assert_eq!(a.groups, expected);
    assert_eq!(a.email.as_str(), "mo.ali@example.com");
    // B: repeated elements across two AttributeStatements; C: the reverse order.
    let b = run(format!(
        "{}{}",
        statement(&[
            attr(group, &["LF-Admins"]),
            attr(email, &["mo.ali@example.com"])
        ]),
        statement(&[attr(group, &["Domain Users"]), attr(group, &["LF-Members"])])
    ))
    .unwrap();
    assert_eq!(b.groups, expected);
    let cc = run(format!(
        "{}{}",
        statement(&[
            attr(group, &["LF-Members"]),
            attr(email, &["mo.ali@example.com"])
        ]),
        statement(&[attr(group, &["Domain Users"]), attr(group, &["LF-Admins"])])
    ))
    .unwrap();
    assert_eq!(cc.groups, expected);
    // D: short names configured: refused, naming the attribute and listing what arrived.
    let short = Case::new(
        "example.com",
        "[connections.saml.attributes]\nemail = \"email\"\ngroups = \"groups\"",
    );
    let mut d = short.spec();
    d.attribute_statements = Some(statement(&[
        attr(email, &["mo.ali@example.com"]),
        attr(group, &["LF-Admins"]),
    ]));
    let err = short.verify(&d).unwrap_err();
    assert_eq!(
        err,
        AcsError::MissingAttribute {
            attribute: "email".into(),
            received: vec![group.into(), email.into()],
        }
    );
    assert!(err.to_string().contains(email));
    // E: two different emails, as one element or two: ambiguous, refused.
    for statements in [
        statement(&[attr(
            email,
            &["mo.ali@example.com", "someone.else@example.com"],
        )]),
        statement(&[
            attr(email, &["mo.ali@example.com"]),
            attr(email, &["someone.else@example.com"]),
        ]),
    ] {
        assert_eq!(
            run(statements).unwrap_err(),
            AcsError::AmbiguousAttribute(email.into())
        );
    }
    // F: FriendlyName is never matched; empty and nil values are dropped.
    let f = run(statement(&[
        attr(email, &["mo.ali@example.com"]),
        format!(r#"<saml:Attribute FriendlyName="{group}" Name="urn:example:not-groups"><saml:AttributeValue>LF-Admins</saml:AttributeValue></saml:Attribute>"#),
        format!(r#"<saml:Attribute Name="{group}"><saml:AttributeValue/><saml:AttributeValue xsi:nil="true"/><saml:AttributeValue>EXAMPLE\LF-Admins</saml:AttributeValue></saml:Attribute>"#),
    ]))
    .unwrap();
    // Compared exactly as sent: a domain-qualified name stays domain-qualified.
    assert_eq!(f.groups, vec!["EXAMPLE\\LF-Admins".to_owned()]);
}

#[test]
fn case_016_google_nameid_follows_the_request_and_groups_may_be_absent() {
    let extra = "preset = \"google\"\n[connections.saml.attributes]\ngroups = \"lf_groups\"";
    let c = Case::new("example.com", extra);
    // The AuthnRequest asks for emailAddress explicitly; the generic default asks for nothing,
    // and nothing ever asks for transient by default.
    let xml = redirect_request_xml(c.conn());
    assert!(xml.contains(r#"<samlp:NameIDPolicy AllowCreate="true" Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"></samlp:NameIDPolicy>"#), "{xml}");
    let generic = Case::new("example.com", "");
    let xml = redirect_request_xml(generic.conn());
    assert!(
        !xml.contains("Format=") && !xml.contains("transient"),
        "{xml}"
    );

    let email_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
    let spec = |name_id: &str, format: &str, attrs: Vec<String>| {
        let mut s = c.spec();
        s.name_id = name_id.into();
        s.name_id_format = format.into();
        s.attribute_statements = Some(statement(&attrs));
        s
    };
    // A: groups present.
    let a = c
        .verify(&spec(
            "li.wei@example.com",
            email_format,
            vec![
                attr("email", &["li.wei@example.com"]),
                attr("lf_groups", &["lf-admins@example.com"]),
            ],
        ))
        .unwrap();
    assert_eq!(a.groups, vec!["lf-admins@example.com"]);
    assert_eq!(a.subject, "li.wei@example.com");
    // B: no group attribute at all: an empty set, not an error.
    let b = c
        .verify(&spec(
            "li.wei@example.com",
            email_format,
            vec![
                attr("email", &["li.wei@example.com"]),
                attr("first_name", &["Li"]),
            ],
        ))
        .unwrap();
    assert!(b.groups.is_empty());
    assert_eq!(b.subject, a.subject);
    // C: a transient NameID never becomes the account key ...
    let transient = spec(
        "_8f3a0c1d",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        vec![attr("email", &["li.wei@example.com"])],
    );
    assert_eq!(c.verify(&transient).unwrap_err(), AcsError::Subject);
    // ... unless the connection keys on an attribute, which gives the same subject as A.
    let by_attr = Case::new(
        "example.com",
        "preset = \"google\"\n[connections.saml.attributes]\nsubject = \"email\"",
    );
    let mut t = transient.clone();
    t.audience = by_attr.conn().sp_entity_id.clone();
    t.destination = Some(by_attr.conn().acs_url.clone());
    t.recipient = by_attr.conn().acs_url.clone();
    let sig = by_attr.idp.response(&t);
    let v = by_attr.verify_xml(&sig).unwrap();
    assert_eq!(v.subject, "li.wei@example.com");
    // E: an unspecified NameID in other casing is the same account as A.
    let e = c
        .verify(&spec(
            "Li.Wei@Example.com",
            "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            vec![attr("email", &["Li.Wei@Example.com"])],
        ))
        .unwrap();
    assert_eq!(e.subject, a.subject);
    assert_eq!(e.email.as_str(), "li.wei@example.com");
}

/// The XML inside an HTTP-Redirect AuthnRequest, decoded by a strict raw-DEFLATE inflater that
/// requires the end of the stream.
fn redirect_request_xml(conn: &SamlConnection) -> String {
    let req = request::build(conn, "relay", t0()).expect("metadata loaded");
    let Delivery::Redirect(url) = req.delivery else {
        panic!("expected the redirect binding")
    };
    let value = common::query_param(&url, "SAMLRequest").unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .unwrap();
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(64 * 1024);
    let status = d
        .decompress_vec(&raw, &mut out, flate2::FlushDecompress::Finish)
        .unwrap();
    assert_eq!(
        status,
        flate2::Status::StreamEnd,
        "DEFLATE stream not finished"
    );
    assert_eq!(
        d.total_in() as usize,
        raw.len(),
        "trailing bytes after the stream"
    );
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn case_018_redirect_binding_encoding_and_relay_state() {
    let idp = TestIdp::new("https://idp.acme.test");
    let c = Case::new("acme.test", "force_authn = true");
    let xml = redirect_request_xml(c.conn());
    assert!(
        !xml.contains("Signature"),
        "no enveloped signature in the redirect binding"
    );
    assert!(xml.contains(r#"ForceAuthn="true""#));

    // Through the bridge: a 200-character state stays server-side; RelayState is a short
    // opaque handle.
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
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    assert!(login.relay_state.len() <= 80);
    let long_state: String = "s".repeat(200);
    let (_, challenge) = pkce();
    let b = browser();
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", &long_state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", "alice@acme.test");
    let resp = b.get(url).send().await.unwrap();
    let to_idp = location(&resp);
    let relay = common::query_param(&to_idp, "RelayState").unwrap();
    assert!(relay.len() <= 80 && !relay.contains(&long_state));
    inflate_request(&common::query_param(&to_idp, "SAMLRequest").unwrap());

    // 8: a RelayState the bridge never issued (an attacker URL) is never followed.
    let saml = idp.response_b64(&login.spec(&bridge, "acme"));
    let resp = login.post_acs(&bridge, "acme", &saml).await;
    assert_eq!(resp.status(), 303, "the unmutated post is accepted");
    let again = flow::start(&bridge, "alice@acme.test", false).await;
    let saml = idp.response_b64(&again.spec(&bridge, "acme"));
    let resp = flow::post_acs_from(
        &again.browser,
        &bridge,
        "acme",
        &saml,
        "https://attacker.example/x",
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("location").is_none());
}
