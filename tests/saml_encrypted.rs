//! Encrypted assertions: every supported key transport × content algorithm is accepted with the
//! inner signature alone, and each one-change mutation of an accepted response is refused with
//! its own error kind (so no test passes because a fixture failed to decrypt by accident).

mod common;

use common::saml_enc::{ContentAlg, Digest, Encryption, KeyPlacement, Transport};
use common::saml_idp::{ResponseSpec, TestIdp};
use common::sp_keys::SpPair;
use common::{make_config, t0, ConnSpec};
use sso_bridge::config::RuntimeConfig;
use sso_bridge::saml::acs::{self, AcsError, VerifiedAssertion};

/// The shared ACS fixture, with an SP key pair the test IdP encrypts to.
struct Fixture {
    base: common::acs_fixture::AcsFixture,
    sp: SpPair,
}

impl std::ops::Deref for Fixture {
    type Target = common::acs_fixture::AcsFixture;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

impl Fixture {
    fn new() -> Self {
        Self::with("")
    }

    fn with(extra: &str) -> Self {
        let sp = SpPair::generate();
        let base = common::acs_fixture::AcsFixture::with_setup(|dir| {
            sp.write(dir, "sp");
            format!("{}{extra}", SpPair::config_lines("sp"))
        });
        Fixture { base, sp }
    }

    /// A valid response whose assertion is signed, then encrypted; the Response is unsigned.
    fn spec(&self) -> ResponseSpec {
        let mut s = self.base.spec();
        s.encrypt = Some(Encryption::new(&self.sp.cert));
        s
    }

    fn accepted(&self, spec: &ResponseSpec) -> VerifiedAssertion {
        let v = self
            .verify(spec)
            .unwrap_or_else(|e| panic!("must be accepted: {e:?}"));
        assert_eq!(v.email.as_str(), "alice@acme.test");
        assert_eq!(v.subject, "00u-alice-0001");
        assert_eq!(v.groups, vec!["lf-admins", "ml-team"]);
        assert_eq!(v.in_response_to.as_deref(), Some("_req1"));
        v
    }

    /// Asserts `spec` is accepted, then that `mutate(spec)` fails with `expected`.
    fn refuses(&self, mutate: impl FnOnce(&mut ResponseSpec), expected: AcsError) {
        let spec = self.spec();
        self.accepted(&spec);
        let mut bad = spec.clone();
        mutate(&mut bad);
        assert_eq!(self.verify(&bad).unwrap_err(), expected);
    }
}

fn set_encryption(s: &mut ResponseSpec, f: impl FnOnce(&mut Encryption)) {
    f(s.encrypt.as_mut().unwrap())
}

#[test]
fn every_supported_algorithm_combination_is_accepted_with_only_the_inner_signature() {
    let f = Fixture::new();
    let transports = [
        Transport::OaepMgf1p(None),
        Transport::OaepMgf1p(Some(Digest::Sha1)),
        Transport::OaepMgf1p(Some(Digest::Sha256)),
        Transport::Oaep11 {
            digest: Digest::Sha256,
            mgf: Digest::Sha1,
        },
        Transport::Oaep11 {
            digest: Digest::Sha256,
            mgf: Digest::Sha256,
        },
        Transport::Oaep11 {
            digest: Digest::Sha1,
            mgf: Digest::Sha1,
        },
    ];
    for transport in transports {
        for content in ContentAlg::ALL {
            for placement in [KeyPlacement::InKeyInfo, KeyPlacement::Sibling] {
                let mut spec = f.spec();
                set_encryption(&mut spec, |e| {
                    e.transport = transport;
                    e.content = content;
                    e.placement = placement;
                });
                assert!(!spec.sign_response && spec.sign_assertion);
                let v = f.verify(&spec);
                assert!(
                    v.is_ok(),
                    "{transport:?} {content:?} {placement:?}: {:?}",
                    v.unwrap_err()
                );
            }
        }
    }
}

#[test]
fn signed_response_with_encrypted_assertion_signed_or_not_is_accepted() {
    let f = Fixture::new();
    for sign_assertion in [false, true] {
        let mut spec = f.spec();
        spec.sign_response = true;
        spec.sign_assertion = sign_assertion;
        f.accepted(&spec);
    }
}

#[test]
fn broken_inner_signature_with_unsigned_response_is_a_signature_error() {
    let f = Fixture::new();
    let spec = f.spec();
    f.accepted(&spec);
    // Sign the assertion, change a claim, then encrypt: only the signature check can notice.
    let mut assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    assertion = assertion.replace("alice@acme.test", "admin@acme.test");
    let encrypted = common::saml_enc::encrypt_assertion(&assertion, spec.encrypt.as_ref().unwrap());
    let xml = spec.response_xml(&f.idp, &encrypted);
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::Signature);
}

#[test]
fn unsigned_assertion_in_an_unsigned_response_is_refused_even_encrypted() {
    // Anyone can encrypt to the SP's public certificate: encryption proves nothing.
    let f = Fixture::new();
    f.refuses(|s| s.sign_assertion = false, AcsError::Unsigned);
}

#[test]
fn signature_policy_still_applies_after_decryption() {
    let f = Fixture::with("require_signed = \"response\"\n");
    let mut ok = f.spec();
    ok.sign_response = true;
    f.accepted(&ok);
    assert_eq!(
        f.verify(&f.spec()).unwrap_err(),
        AcsError::SignaturePolicy("the response")
    );

    let f = Fixture::with("require_signed = \"assertion\"\n");
    f.accepted(&f.spec());
    let mut only_response = f.spec();
    only_response.sign_response = true;
    only_response.sign_assertion = false;
    assert_eq!(
        f.verify(&only_response).unwrap_err(),
        AcsError::SignaturePolicy("the assertion")
    );
}

#[test]
fn wrong_sp_key_is_a_decryption_error() {
    let f = Fixture::new();
    let other = SpPair::generate();
    f.refuses(
        |s| set_encryption(s, |e| e.to = other.cert.clone()),
        AcsError::Decryption,
    );
}

#[test]
fn rsa_1_5_key_transport_is_refused() {
    let f = Fixture::new();
    for content in [ContentAlg::Aes128Cbc, ContentAlg::Aes256Gcm] {
        f.refuses(
            |s| {
                set_encryption(s, |e| {
                    e.transport = Transport::Rsa15;
                    e.content = content;
                })
            },
            AcsError::EncryptionAlgorithm,
        );
    }
}

#[test]
fn tampered_gcm_ciphertext_or_tag_is_refused() {
    use base64::Engine;
    let f = Fixture::new();
    let mut spec = f.spec();
    set_encryption(&mut spec, |e| e.content = ContentAlg::Aes256Gcm);
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    // The content CipherValue is the last one in the document (after the EncryptedKey's).
    let start = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let end = start + xml[start..].find('<').unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = b64.decode(&xml[start..end]).unwrap();
    for at in [20, data.len() - 1] {
        // One bit in the ciphertext body, then one in the tag.
        let mut bad = data.clone();
        bad[at] ^= 1;
        let tampered = format!("{}{}{}", &xml[..start], b64.encode(&bad), &xml[end..]);
        assert_eq!(f.verify_xml(&tampered).unwrap_err(), AcsError::Decryption);
    }
}

#[test]
fn encrypted_and_plain_assertion_side_by_side_are_refused() {
    let f = Fixture::new();
    let spec = f.spec();
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    // A second, validly signed plain assertion (another user) next to the encrypted one:
    // before or after it, whichever the attacker hopes the SP reads.
    let mut other = spec.clone();
    other.encrypt = None;
    other.assertion_id = "_other".into();
    other.email = Some("mallory@acme.test".into());
    let plain = f.idp.sign(&other.assertion_xml(&f.idp));
    let end = xml.find("</saml:EncryptedAssertion>").unwrap() + "</saml:EncryptedAssertion>".len();
    let after = format!("{}{plain}{}", &xml[..end], &xml[end..]);
    let begin = xml.find("<saml:EncryptedAssertion").unwrap();
    let before = format!("{}{plain}{}", &xml[..begin], &xml[begin..]);
    for doc in [after, before] {
        assert_eq!(f.verify_xml(&doc).unwrap_err(), AcsError::AssertionCount);
    }
    // Two encrypted assertions are refused too.
    let enc = &xml[begin..end];
    let two = format!("{}{enc}{}", &xml[..end], &xml[end..]);
    assert_eq!(f.verify_xml(&two).unwrap_err(), AcsError::AssertionCount);
}

#[test]
fn require_encrypted_refuses_plain_assertions() {
    let f = Fixture::with("require_encrypted = true\n");
    f.refuses(|s| s.encrypt = None, AcsError::NotEncrypted);
}

#[test]
fn an_encrypted_assertion_for_a_connection_without_a_key_is_refused() {
    let idp = TestIdp::new("https://idp.acme.test");
    let dir = tempfile::tempdir().unwrap();
    let config = make_config(
        dir.path(),
        "https://sso.example.com",
        None,
        &[common::REDIRECT_URI],
        &[ConnSpec {
            id: "acme",
            domains: &["acme.test"],
            idp_metadata: idp.metadata(),
            extra: "",
        }],
    );
    let conn = &config.connections[0].saml;
    let mut spec = ResponseSpec::new(&conn.acs_url, &conn.sp_entity_id, "_req1", t0());
    acs::verify(idp.response(&spec).as_bytes(), conn, t0()).unwrap();
    spec.encrypt = Some(Encryption::new(&SpPair::generate().cert));
    assert_eq!(
        acs::verify(idp.response(&spec).as_bytes(), conn, t0()).unwrap_err(),
        AcsError::Encrypted
    );
}

#[test]
fn decrypted_assertion_gets_every_plain_check() {
    let f = Fixture::new();
    f.refuses(
        |s| s.audience = "https://other.example.com".into(),
        AcsError::Audience,
    );
    f.refuses(
        |s| s.recipient = "https://evil.example.com/acs".into(),
        AcsError::Recipient,
    );
    f.refuses(
        |s| s.destination = Some("https://evil.example.com/acs".into()),
        AcsError::Destination,
    );
    f.refuses(
        |s| s.not_on_or_after = t0() - chrono::Duration::seconds(600),
        AcsError::Expired,
    );
    // The plaintext's own ID colliding with the Response's.
    f.refuses(
        |s| s.assertion_id = s.response_id.clone(),
        AcsError::DuplicateId,
    );
}

#[test]
fn ciphertext_changed_under_a_response_signature_is_a_signature_error() {
    // With only the Response signed, its signature is what protects the (unauthenticated) CBC
    // ciphertext: it is checked before anything is decrypted.
    let f = Fixture::new();
    let mut spec = f.spec();
    spec.sign_response = true;
    spec.sign_assertion = false;
    let xml = f.idp.response(&spec);
    f.verify_xml(&xml).unwrap();
    let at = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len() + 30;
    let flipped = if &xml[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &xml[..at], &xml[at + 1..]);
    assert_eq!(f.verify_xml(&tampered).unwrap_err(), AcsError::Signature);
}

#[test]
fn mutated_encrypted_responses_never_panic_and_never_change_the_user() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let f = Fixture::new();
    for content in [ContentAlg::Aes128Cbc, ContentAlg::Aes256Gcm] {
        let mut spec = f.spec();
        set_encryption(&mut spec, |e| e.content = content);
        let xml = f.idp.response(&spec).into_bytes();
        let good = f.verify_xml(std::str::from_utf8(&xml).unwrap()).unwrap();
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(0..xml.len(), any::<u8>()), |(at, byte)| {
                let mut bad = xml.clone();
                bad[at] = byte;
                // Any outcome but a different identity: most changes are refused; a few (a
                // byte in an unsigned envelope attribute) leave the same verified user.
                if let Ok(v) = acs::verify(&bad, f.conn(), t0()) {
                    prop_assert_eq!(&v.email, &good.email);
                    prop_assert_eq!(&v.subject, &good.subject);
                    prop_assert_eq!(&v.groups, &good.groups);
                }
                Ok(())
            })
            .unwrap();
    }
}

#[tokio::test]
async fn through_the_acs_an_encrypted_assertion_completes_the_login_and_failures_leak_nothing() {
    use common::flow;
    let idp = TestIdp::new("https://idp.acme.test");
    let sp = SpPair::generate();
    let metadata = idp.metadata();
    let bridge = common::Bridge::start(t0(), |dir, base| {
        sp.write(dir, "sp");
        make_config(
            dir,
            base,
            None,
            &[common::REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: &format!("{}require_encrypted = true\n", SpPair::config_lines("sp")),
            }],
        )
    })
    .await;
    // Our metadata, as served, offers the encryption certificate.
    let md = reqwest::get(bridge.url("/saml/acme/metadata"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains(r#"use="encryption""#) && md.contains(&sp.cert_b64()));

    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let mut spec = login.spec(&bridge, "acme");
    spec.encrypt = Some(Encryption::new(&sp.cert));
    login.complete(&bridge, &idp, &spec, "acme").await;

    // Encrypted to another key: a refusal page naming the kind, nothing of the document.
    let login = flow::start(&bridge, "alice@acme.test", false).await;
    let mut spec = login.spec(&bridge, "acme");
    spec.encrypt = Some(Encryption::new(&SpPair::generate().cert));
    let resp = login
        .post_acs(&bridge, "acme", &idp.response_b64(&spec))
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-error-kind"], "decryption");
    let page = resp.text().await.unwrap();
    assert!(page.contains("could not be decrypted"));
    assert!(!page.contains("CipherValue") && !page.contains("alice@acme.test"));
}

#[test]
fn a_retired_sp_key_still_decrypts_during_a_rollover() {
    let idp = TestIdp::new("https://idp.acme.test");
    let (old, new) = (SpPair::generate(), SpPair::generate());
    let dir = tempfile::tempdir().unwrap();
    old.write(dir.path(), "old");
    new.write(dir.path(), "new");
    let config_with = |retired: &str| {
        make_config(
            dir.path(),
            "https://sso.example.com",
            None,
            &[common::REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: idp.metadata(),
                extra: &format!("{}{retired}", SpPair::config_lines("new")),
            }],
        )
    };
    let rolling = config_with("sp_retired_key_files = [\"old.key\"]\n");
    let done = config_with("");
    let conn = &rolling.connections[0].saml;
    let mut spec = ResponseSpec::new(&conn.acs_url, &conn.sp_entity_id, "_req1", t0());
    for (to, rolling_ok, done_ok) in [(&new, true, true), (&old, true, false)] {
        spec.encrypt = Some(Encryption::new(&to.cert));
        let xml = idp.response(&spec);
        let verdict = |c: &RuntimeConfig| acs::verify(xml.as_bytes(), &c.connections[0].saml, t0());
        assert_eq!(verdict(&rolling).is_ok(), rolling_ok);
        match verdict(&done) {
            Ok(_) => assert!(done_ok),
            Err(e) => assert!(!done_ok && e == AcsError::Decryption, "{e:?}"),
        }
    }
    // Never published: the metadata names the current certificate only.
    let md = sso_bridge::saml::metadata::sp_metadata_xml(conn);
    assert!(md.contains(&new.cert_b64()) && !md.contains(&old.cert_b64()));
}

#[test]
fn a_plaintext_that_is_not_well_formed_is_a_decryption_error() {
    // Validly encrypted to our key (anyone can), but the plaintext is broken XML: the same
    // error as a wrong key or a bad tag, never "malformed", and never repaired by the parser.
    let f = Fixture::new();
    let spec = f.spec();
    f.accepted(&spec);
    let assertion = f.idp.sign(&spec.assertion_xml(&f.idp));
    let broken = assertion.replacen("</saml:Issuer>", "</saml:Issuer2>", 1);
    let encrypted = common::saml_enc::encrypt_assertion(&broken, spec.encrypt.as_ref().unwrap());
    let xml = spec.response_xml(&f.idp, &encrypted);
    assert_eq!(f.verify_xml(&xml).unwrap_err(), AcsError::Decryption);
}
