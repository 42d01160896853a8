//! The SP's own key material: an RSA private key and its certificate, parsed once at config load
//! (never per request). One pair signs AuthnRequests; the same pair, or a separate one, decrypts
//! encrypted assertions. The private key never appears in `Debug` output or logs.

use std::fmt;

use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// Smallest RSA modulus accepted for the SP key, in bits.
const MIN_RSA_BITS: u32 = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpKeyError {
    #[error("is not a PEM private key (PKCS#1 or PKCS#8, unencrypted)")]
    Key,
    #[error("is not an RSA key of at least 2048 bits (SAML encryption needs RSA)")]
    KeyType,
    #[error("is not a PEM X.509 certificate")]
    Certificate,
    #[error("the certificate does not belong to the private key")]
    Mismatch,
}

/// A private key and the certificate published for it in our SP metadata.
#[derive(Clone)]
pub struct SpKeyPair {
    key: PKey<Private>,
    /// Base64 of the certificate's DER, as metadata carries it.
    cert_b64: String,
}

impl SpKeyPair {
    /// Parses PEM text of both files; the key must be RSA (what every IdP can encrypt to) and
    /// match the certificate, so a swapped file is a config error, not a failed login later.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, SpKeyError> {
        let key = rsa_key_from_pem(key_pem)?;
        let cert = X509::from_pem(cert_pem).map_err(|_| SpKeyError::Certificate)?;
        let public = cert.public_key().map_err(|_| SpKeyError::Certificate)?;
        if !public.public_eq(&key) {
            return Err(SpKeyError::Mismatch);
        }
        let der = cert.to_der().map_err(|_| SpKeyError::Certificate)?;
        Ok(Self {
            key,
            cert_b64: base64::engine::general_purpose::STANDARD.encode(der),
        })
    }

    pub fn private_key(&self) -> &PKey<Private> {
        &self.key
    }

    pub fn cert_b64(&self) -> &str {
        &self.cert_b64
    }
}

fn rsa_key_from_pem(pem: &[u8]) -> Result<PKey<Private>, SpKeyError> {
    let key = PKey::private_key_from_pem(pem).map_err(|_| SpKeyError::Key)?;
    if !key.rsa().is_ok_and(|r| r.size() * 8 >= MIN_RSA_BITS) {
        return Err(SpKeyError::KeyType);
    }
    Ok(key)
}

/// The private key of a retired SP certificate: no longer published, still tried when
/// decrypting, so IdPs that have not fetched the new certificate yet keep working during a
/// rollover.
#[derive(Clone)]
pub struct RetiredKey(PKey<Private>);

impl RetiredKey {
    pub fn from_pem(key_pem: &[u8]) -> Result<Self, SpKeyError> {
        rsa_key_from_pem(key_pem).map(RetiredKey)
    }

    pub fn private_key(&self) -> &PKey<Private> {
        &self.0
    }
}

impl fmt::Debug for RetiredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetiredKey(***)")
    }
}

impl fmt::Debug for SpKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpKeyPair")
            .field("key", &"***")
            .field("cert_b64_len", &self.cert_b64.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::{asn1::Asn1Time, hash::MessageDigest, rsa::Rsa, x509};

    fn pair(bits: u32) -> (Vec<u8>, Vec<u8>) {
        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sp").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (
            key.private_key_to_pem_pkcs8().unwrap(),
            b.build().to_pem().unwrap(),
        )
    }

    #[test]
    fn parses_a_matching_pair_and_redacts_the_key() {
        let (key, cert) = pair(2048);
        let p = SpKeyPair::from_pem(&key, &cert).unwrap();
        assert!(!p.cert_b64().is_empty());
        let debug = format!("{p:?}");
        assert!(debug.contains("***") && !debug.contains("PRIVATE"));
    }

    #[test]
    fn refuses_mismatch_small_keys_and_garbage() {
        let (key, _) = pair(2048);
        let (_, other_cert) = pair(2048);
        assert_eq!(
            SpKeyPair::from_pem(&key, &other_cert).unwrap_err(),
            SpKeyError::Mismatch
        );
        let (small, small_cert) = pair(1024);
        assert_eq!(
            SpKeyPair::from_pem(&small, &small_cert).unwrap_err(),
            SpKeyError::KeyType
        );
        assert_eq!(
            SpKeyPair::from_pem(b"nope", &other_cert).unwrap_err(),
            SpKeyError::Key
        );
        assert_eq!(
            SpKeyPair::from_pem(&key, b"nope").unwrap_err(),
            SpKeyError::Certificate
        );
    }
}
