//! Signing keys: RSA keys from PEM files, published as a JWKS (kid = RFC 7638 thumbprint), and
//! RS256 JWT signing with the first key. Older keys stay published for rollover.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM RSA private key")]
    NotRsaPem,
    #[error("RSA keys must have at least 2048 bits")]
    TooSmall,
    #[error("no signing key")]
    Empty,
    #[error("signing failed")]
    Sign,
}

pub struct SigningKey {
    kid: String,
    pkey: PKey<Private>,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// Accepts PKCS#1 or PKCS#8 PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let pkey = PKey::private_key_from_pem(pem).map_err(|_| KeyError::NotRsaPem)?;
        let rsa = pkey.rsa().map_err(|_| KeyError::NotRsaPem)?;
        if rsa.size() < 256 {
            return Err(KeyError::TooSmall);
        }
        let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
        let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
        // RFC 7638: members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(Self { kid, pkey, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// A fresh RSA-2048 private key as PKCS#8 PEM (what `keys generate` writes).
pub fn generate_pem() -> Result<Vec<u8>, KeyError> {
    let rsa = Rsa::generate(2048).map_err(|_| KeyError::Sign)?;
    let pkey = PKey::from_rsa(rsa).map_err(|_| KeyError::Sign)?;
    pkey.private_key_to_pem_pkcs8().map_err(|_| KeyError::Sign)
}

#[derive(Debug)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl SigningKeys {
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { keys })
    }

    pub fn active(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// A compact RS256 JWS over `claims`, signed by the active key.
    pub fn sign_jwt(&self, claims: &Value) -> Result<String, KeyError> {
        let key = self.active();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer =
            Signer::new(MessageDigest::sha256(), &key.pkey).map_err(|_| KeyError::Sign)?;
        signer
            .update(signing_input.as_bytes())
            .map_err(|_| KeyError::Sign)?;
        let sig = signer.sign_to_vec().map_err(|_| KeyError::Sign)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;

    #[test]
    fn signs_verifiable_rs256_and_publishes_the_key() {
        let key = SigningKey::from_pem(&generate_pem().unwrap()).unwrap();
        let public_pem = key.pkey.public_key_to_pem().unwrap();
        let keys = SigningKeys::new(vec![key]).unwrap();
        let jwt = keys.sign_jwt(&json!({"sub": "x"})).unwrap();
        let parts: Vec<_> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], keys.jwks()["keys"][0]["kid"]);
        let public = PKey::public_key_from_pem(&public_pem).unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(v
            .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap());
    }

    #[test]
    fn refuses_small_and_non_rsa_keys() {
        let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let pem = small.private_key_to_pem_pkcs8().unwrap();
        assert!(matches!(
            SigningKey::from_pem(&pem),
            Err(KeyError::TooSmall)
        ));
        assert!(matches!(
            SigningKey::from_pem(b"nope"),
            Err(KeyError::NotRsaPem)
        ));
    }
}
