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
