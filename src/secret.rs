//! Secret values: redacted in `Debug`/`Display`, compared in constant time, and never serialised.

use std::fmt;

use subtle::ConstantTimeEq;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the few places that must hand it on (signing, HTTP auth).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison against a presented value. The length of the stored secret is
    /// not treated as confidential.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Random URL-safe token with `bytes` bytes of entropy (codes, login ids, access tokens).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a token, base64url: what the store keys on, so a store dump holds no usable code.
pub fn token_digest(token: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("Lf+9/q:Zx=w%1");
        assert!(s.matches(b"Lf+9/q:Zx=w%1"));
        assert!(!s.matches(b"Lf 9/q:Zx=w%1"));
        assert!(!s.matches(b"Lf+9/q:Zx=w%"));
        assert!(!s.matches(b""));
    }
}
