//! Full validation of one signed SAML Response (signature, then every check, claims read from
//! the signed bytes), single thread. DESIGN.md §9 aims at ≥ 5,000 responses/s per core; compare
//! runs by their medians, on the same machine, never inside tests.
//!
//!   cargo bench --bench acs_verify

#[path = "../tests/common/saml_enc.rs"]
#[allow(dead_code)]
mod saml_enc;
#[path = "../tests/common/saml_idp.rs"]
#[allow(dead_code)]
mod saml_idp;
#[path = "../tests/common/sp_keys.rs"]
#[allow(dead_code)]
mod sp_keys;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saml_idp::{ResponseSpec, TestIdp};
use sso_bridge::saml::acs;

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    let idp = TestIdp::new("https://idp.acme.test");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.xml"), idp.metadata()).unwrap();
    let sp = sp_keys::SpPair::generate();
    sp.write(dir.path(), "sp");
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
sp_key_file = "sp.key"
sp_cert_file = "sp.crt"
"#;
    let config = sso_bridge::config::from_toml(toml, dir.path(), &|_| None).unwrap();
    let conn = &config.connections[0].saml;

    let mut group = c.benchmark_group("acs_verify");
    group.throughput(Throughput::Elements(1));
    use saml_enc::{ContentAlg, Encryption};
    // Encrypted: one RSA-2048 private-key operation (the key unwrap, ~1 ms) dominates.
    for (name, sign_response, sign_assertion, content) in [
        ("assertion_signed", false, true, None),
        ("response_signed", true, false, None),
        ("both_signed", true, true, None),
        (
            "encrypted_gcm_assertion_signed",
            false,
            true,
            Some(ContentAlg::Aes128Gcm),
        ),
        (
            "encrypted_cbc_response_signed",
            true,
            false,
            Some(ContentAlg::Aes128Cbc),
        ),
    ] {
        let mut spec = ResponseSpec::new(&conn.acs_url, &conn.sp_entity_id, "_req1", now);
        spec.sign_response = sign_response;
        spec.sign_assertion = sign_assertion;
        spec.encrypt = content.map(|c| Encryption {
            content: c,
            ..Encryption::new(&sp.cert)
        });
        spec.groups = (0..20).map(|i| format!("group-{i}")).collect();
        let xml = idp.response(&spec).into_bytes();
        acs::verify(&xml, conn, now).expect("fixture verifies");
        group.bench_function(name, |b| b.iter(|| acs::verify(&xml, conn, now).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
