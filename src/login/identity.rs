//! The identity a connection vouches for, and the stable `sub` Langfuse keys accounts on.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::Email;

/// A verified identity, after the domain guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub connection_id: String,
    /// The IdP's own stable subject (persistent NameID or configured attribute).
    pub subject: String,
    pub email: Email,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn sub(&self) -> String {
        subject_id(&self.connection_id, &self.subject)
    }
}

/// `sub` = base64url(SHA-256("sso-bridge/v1\0" + connection id + "\0" + IdP subject)).
/// Unkeyed on purpose: no key rotation can orphan a Langfuse account, and the email is not part
/// of it, so an address change at the IdP keeps the account (DESIGN.md §10).
pub fn subject_id(connection_id: &str, idp_subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sso-bridge/v1\0");
    h.update(connection_id.as_bytes());
    h.update(b"\0");
    h.update(idp_subject.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned (computed independently with Python hashlib): changing the derivation would give every existing user a new Langfuse account.
    #[test]
    fn subject_id_fixed_vector() {
        assert_eq!(
            subject_id("acme-okta", "00u1abcd2EFGH3ijk4l5"),
            "brl7V-SC7WlSgVficFS_Be8upRpzEOzycsJkKPdUemU"
        );
    }

    #[test]
    fn subject_id_separates_connections_and_subjects() {
        assert_ne!(subject_id("a", "bc"), subject_id("ab", "c"));
        assert_ne!(subject_id("acme", "u1"), subject_id("other", "u1"));
        assert_eq!(subject_id("acme", "u1"), subject_id("acme", "u1"));
    }
}
