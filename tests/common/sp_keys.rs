//! SP key material for tests: an RSA key and self-signed certificate written as PEM files into
//! a config folder, so configs can name them with `sp_key_file` / `sp_cert_file`.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

pub struct SpPair {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl SpPair {
    pub fn generate() -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sso-bridge test SP")
            .unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Self {
            key,
            cert: b.build(),
        }
    }

    /// Writes `<stem>.key` (PKCS#8, as OpenSSL 3 writes it) and `<stem>.crt` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) {
        std::fs::write(
            dir.join(format!("{stem}.key")),
            self.key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{stem}.crt")), self.cert.to_pem().unwrap()).unwrap();
    }

    /// The `[connections.saml]` lines naming the files written by `write(dir, stem)`.
    pub fn config_lines(stem: &str) -> String {
        format!("sp_key_file = \"{stem}.key\"\nsp_cert_file = \"{stem}.crt\"\n")
    }

    pub fn cert_b64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.cert.to_der().unwrap())
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }
}
