//! Fuzz the ACS input: the raw POST body (form-encoded, as a browser sends it) through form
//! parsing, base64 decoding and full response verification. Any panic is a bug; every input
//! must end in `Ok` or a typed `AcsError`.
#![no_main]

use std::sync::OnceLock;

use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;
use sso_bridge::config::RuntimeConfig;
use sso_bridge::saml::acs;

fn config() -> &'static RuntimeConfig {
    static CONFIG: OnceLock<RuntimeConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let toml = r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.example"]
[connections.saml]
idp_metadata_file = "idp-metadata.xml"
"#;
        sso_bridge::config::from_toml(toml, dir, &|_| None).expect("fuzz config")
    })
}

fuzz_target!(|body: &[u8]| {
    let conn = &config().connections[0].saml;
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    // As a form body…
    for (k, v) in form_urlencoded_pairs(body) {
        if k == "SAMLResponse" {
            if let Ok(xml) = acs::decode_form_value(&v) {
                let _ = acs::verify(&xml, conn, now);
            }
        }
    }
    // …and as the decoded document itself.
    let _ = acs::verify(body, conn, now);
});

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace('+', " ")))
        .collect()
}
