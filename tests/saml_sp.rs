//! The SP side of a connection: key material named in the config (loaded once, refused early
//! when incomplete or mismatched) and the SP metadata that publishes it.

mod common;

use common::saml_idp::TestIdp;
use common::sp_keys::SpPair;
use sso_bridge::config::{self, ConfigError, RuntimeConfig};

/// Resolves a one-connection config in `dir`, with `saml_extra` lines in [connections.saml].
fn load(dir: &std::path::Path, saml_extra: &str) -> Result<RuntimeConfig, ConfigError> {
    let idp = TestIdp::new("https://idp.acme.test");
    std::fs::write(dir.join("idp.xml"), idp.metadata()).unwrap();
    let toml = format!(
        r#"public_url = "https://sso.example.com"
[keys]
files = ["signing.pem"]
generate_if_missing = true
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_file = "idp.xml"
{saml_extra}
"#
    );
    config::from_toml(&toml, dir, &|_| None)
}

#[test]
fn a_key_pair_in_pkcs8_or_pkcs1_loads_and_signs_and_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let sp = SpPair::generate();
    sp.write(dir.path(), "sp");
    let cfg = load(dir.path(), &SpPair::config_lines("sp")).unwrap();
    let conn = &cfg.connections[0].saml;
    assert_eq!(conn.sp_signing.as_ref().unwrap().cert_b64(), sp.cert_b64());
    // Without a separate encryption pair, the one pair also decrypts.
    assert_eq!(
        conn.sp_decryption.as_ref().unwrap().cert_b64(),
        sp.cert_b64()
    );
    assert!(!conn.sign_authn_requests && !conn.require_encrypted);

    // PKCS#1 ("BEGIN RSA PRIVATE KEY", openssl genrsa -traditional) works too.
    let pkcs1 = sp.key.rsa().unwrap().private_key_to_pem().unwrap();
    assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PRIVATE KEY"));
    std::fs::write(dir.path().join("sp.key"), pkcs1).unwrap();
    load(dir.path(), &SpPair::config_lines("sp")).unwrap();
}

#[test]
fn a_separate_encryption_pair_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (sign, enc) = (SpPair::generate(), SpPair::generate());
    sign.write(dir.path(), "sign");
    enc.write(dir.path(), "enc");
    let extra = format!(
        "{}sp_encryption_key_file = \"enc.key\"\nsp_encryption_cert_file = \"enc.crt\"\nrequire_encrypted = true\n",
        SpPair::config_lines("sign")
    );
    let cfg = load(dir.path(), &extra).unwrap();
    let conn = &cfg.connections[0].saml;
    assert_eq!(
        conn.sp_signing.as_ref().unwrap().cert_b64(),
        sign.cert_b64()
    );
    assert_eq!(
        conn.sp_decryption.as_ref().unwrap().cert_b64(),
        enc.cert_b64()
    );
    assert!(conn.require_encrypted);
}

#[test]
fn incomplete_or_mismatched_key_material_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (SpPair::generate(), SpPair::generate());
    a.write(dir.path(), "a");
    b.write(dir.path(), "b");
    let err = |extra: &str| load(dir.path(), extra).unwrap_err().key;
    load(dir.path(), &SpPair::config_lines("a")).expect("the matching pair loads");

    assert_eq!(
        err("sp_key_file = \"a.key\"\n"),
        "connections[0].saml.sp_cert_file"
    );
    assert_eq!(
        err("sp_cert_file = \"a.crt\"\n"),
        "connections[0].saml.sp_key_file"
    );
    assert_eq!(
        err("sp_key_file = \"a.key\"\nsp_cert_file = \"b.crt\"\n"),
        "connections[0].saml.sp_key_file"
    );
    assert_eq!(
        err("sp_key_file = \"a.key\"\nsp_cert_file = \"missing.crt\"\n"),
        "connections[0].saml.sp_cert_file"
    );
    assert_eq!(
        err("sp_key_file = \"a.crt\"\nsp_cert_file = \"a.crt\"\n"),
        "connections[0].saml.sp_key_file"
    );
    // Features that need a key, without one.
    assert_eq!(
        err("require_encrypted = true\n"),
        "connections[0].saml.require_encrypted"
    );
    assert_eq!(
        err("sign_authn_requests = true\n"),
        "connections[0].saml.sign_authn_requests"
    );
}

#[test]
fn sp_metadata_publishes_both_certificates_and_the_configured_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (sign, enc) = (SpPair::generate(), SpPair::generate());
    sign.write(dir.path(), "sign");
    enc.write(dir.path(), "enc");
    let extra = format!(
        "{}sp_encryption_key_file = \"enc.key\"\nsp_encryption_cert_file = \"enc.crt\"\nsign_authn_requests = true\nname_id_format = \"emailAddress\"\n",
        SpPair::config_lines("sign")
    );
    let cfg = load(dir.path(), &extra).unwrap();
    let xml = sso_bridge::saml::metadata::sp_metadata_xml(&cfg.connections[0].saml);
    let entity: samael::metadata::EntityDescriptor = xml.parse().expect("well-formed metadata");
    let sp = &entity.sp_sso_descriptors.as_ref().unwrap()[0];
    assert_eq!(sp.authn_requests_signed, Some(true));
    assert_eq!(sp.want_assertions_signed, Some(true));
    let keys: Vec<(Option<&str>, &str)> = sp
        .key_descriptors
        .iter()
        .flatten()
        .map(|k| {
            (
                k.key_use.as_deref(),
                k.key_info.x509_data.as_ref().unwrap().certificates[0].as_str(),
            )
        })
        .collect();
    let (sign_b64, enc_b64) = (sign.cert_b64(), enc.cert_b64());
    assert_eq!(
        keys,
        vec![
            (Some("signing"), sign_b64.as_str()),
            (Some("encryption"), enc_b64.as_str())
        ]
    );
    assert_eq!(
        sp.name_id_formats.as_deref().unwrap_or_default(),
        ["urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"]
    );
    assert!(xml.contains("http://www.w3.org/2009/xmlenc11#aes256-gcm"));
    assert!(!xml.contains("rsa-1_5"), "never invite RSA PKCS#1 v1.5");

    // Without keys and formats: nothing published that the SP cannot honour.
    let bare = load(dir.path(), "require_signed = \"response\"\n").unwrap();
    let xml = sso_bridge::saml::metadata::sp_metadata_xml(&bare.connections[0].saml);
    assert!(xml.contains(r#"AuthnRequestsSigned="false""#));
    assert!(xml.contains(r#"WantAssertionsSigned="false""#));
    assert!(!xml.contains("KeyDescriptor") && !xml.contains("NameIDFormat"));
}

/// A config whose connection signs AuthnRequests with the `sp` pair, with `binding`.
fn signing_config(dir: &std::path::Path, sp: &SpPair, binding: &str) -> RuntimeConfig {
    sp.write(dir, "sp");
    // An entity id with characters canonical XML escapes differently from plain XML.
    let extra = format!(
        "{}sign_authn_requests = true\nbinding = \"{binding}\"\nforce_authn = true\nname_id_format = \"persistent\"\nsp_entity_id = \"https://sso.example.com/sp?a=1&b='x'>\"\n",
        SpPair::config_lines("sp")
    );
    let idp = TestIdp::new("https://idp.acme.test");
    let md = idp.metadata().replace(
        "</md:IDPSSODescriptor>",
        r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.acme.test/sso-post"/></md:IDPSSODescriptor>"#,
    );
    std::fs::write(dir.join("idp.xml"), md).unwrap();
    let toml = format!(
        "public_url = \"https://sso.example.com\"\n[keys]\nfiles = [\"signing.pem\"]\ngenerate_if_missing = true\n[[connections]]\nid = \"acme\"\nkind = \"saml\"\ndomains = [\"acme.test\"]\n[connections.saml]\nidp_metadata_file = \"idp.xml\"\n{extra}"
    );
    config::from_toml(&toml, dir, &|_| None).unwrap()
}

/// Verifies an enveloped signature with the xmlsec1 command line tool against `cert_pem` only.
fn xmlsec1_verifies(xml: &str, cert_pem: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.xml"), xml).unwrap();
    std::fs::write(dir.path().join("c.pem"), cert_pem).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args(["--verify", "--enabled-key-data", "x509"])
        .arg("--pubkey-cert-pem")
        .arg(dir.path().join("c.pem"))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
        ])
        .arg(dir.path().join("r.xml"))
        .output()
        .expect("xmlsec1");
    out.status.success()
}

#[test]
fn post_binding_requests_carry_an_enveloped_signature_xmlsec1_accepts() {
    use base64::Engine;
    use sso_bridge::saml::request::{self, Delivery};
    let dir = tempfile::tempdir().unwrap();
    let sp = SpPair::generate();
    let cfg = signing_config(dir.path(), &sp, "post");
    let req = request::build(&cfg.connections[0].saml, "relay-1", common::t0()).unwrap();
    let Delivery::Post { saml_request, .. } = req.delivery else {
        panic!("expected the POST binding")
    };
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(saml_request)
            .unwrap(),
    )
    .unwrap();
    assert!(xml.contains("<ds:Signature") && xml.contains(r#"ForceAuthn="true""#));
    assert!(
        xmlsec1_verifies(&xml, &sp.cert_pem()),
        "xmlsec1 refused: {xml}"
    );
    // One change anywhere the signature covers, and it no longer verifies.
    let tampered = xml.replace(r#"ForceAuthn="true" "#, "");
    assert_ne!(tampered, xml);
    assert!(!xmlsec1_verifies(&tampered, &sp.cert_pem()));
    // Nor does it verify against another certificate.
    assert!(!xmlsec1_verifies(&xml, &SpPair::generate().cert_pem()));
}

#[test]
fn redirect_binding_requests_are_signed_over_the_query_string() {
    use samael::crypto::UrlVerifier;
    use sso_bridge::saml::request::{self, Delivery};
    let dir = tempfile::tempdir().unwrap();
    let sp = SpPair::generate();
    let cfg = signing_config(dir.path(), &sp, "redirect");
    let req = request::build(&cfg.connections[0].saml, "relay-1", common::t0()).unwrap();
    let Delivery::Redirect(url) = req.delivery else {
        panic!("expected the redirect binding")
    };
    let url = url::Url::parse(&url).unwrap();
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, ["SAMLRequest", "RelayState", "SigAlg", "Signature"]);
    assert_eq!(
        common::query_param(url.as_str(), "SigAlg").as_deref(),
        Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    );
    // samael's independent verifier of the bindings spec §3.4.4.1 rule.
    let der = samael::crypto::CertificateDer::from(sp.cert.to_der().unwrap());
    let verifier = UrlVerifier::from_x509(&der).unwrap();
    assert!(verifier.verify_signed_request_url(&url).unwrap());
    let tampered = url::Url::parse(
        &url.as_str()
            .replace("RelayState=relay-1", "RelayState=relay-2"),
    )
    .unwrap();
    assert!(!verifier
        .verify_signed_request_url(&tampered)
        .unwrap_or(false));
}

#[test]
fn unsigned_requests_are_unchanged_in_shape() {
    use sso_bridge::saml::request::{self, Delivery};
    let dir = tempfile::tempdir().unwrap();
    let cfg = load(dir.path(), "").unwrap();
    let req = request::build(&cfg.connections[0].saml, "relay-1", common::t0()).unwrap();
    let Delivery::Redirect(url) = req.delivery else {
        panic!("expected the redirect binding")
    };
    let names: Vec<String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(names, ["SAMLRequest", "RelayState"]);
}

#[test]
fn a_private_key_readable_by_others_is_flagged_by_check() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sp = SpPair::generate();
    sp.write(dir.path(), "sp");
    let key = dir.path().join("sp.key");
    let lints = |cfg: &RuntimeConfig| -> Vec<String> {
        cfg.lints
            .iter()
            .filter(|l| l.key.ends_with("sp_key_file"))
            .map(|l| l.message.clone())
            .collect()
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = load(dir.path(), &SpPair::config_lines("sp")).unwrap();
    assert!(lints(&cfg).is_empty());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = load(dir.path(), &SpPair::config_lines("sp")).unwrap();
    assert!(lints(&cfg)[0].contains("chmod 600"), "{:?}", lints(&cfg));
}

#[test]
fn retired_keys_need_a_current_pair() {
    let dir = tempfile::tempdir().unwrap();
    let old = SpPair::generate();
    old.write(dir.path(), "old");
    let err = load(dir.path(), "sp_retired_key_files = [\"old.key\"]\n").unwrap_err();
    assert_eq!(err.key, "connections[0].saml.sp_retired_key_files[0]");
    let err = load(
        dir.path(),
        &format!(
            "{}sp_retired_key_files = [\"old.crt\"]\n",
            SpPair::config_lines("old")
        ),
    )
    .unwrap_err();
    assert_eq!(err.key, "connections[0].saml.sp_retired_key_files[0]");
}
