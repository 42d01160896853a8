//! The pending login: one record per login in the store, keyed by a random id that travels as
//! SAML RelayState, and bound to the browser that started it by a cookie holding a digest of
//! that id. A response posted from another browser carries no such cookie and is refused.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::{random_token, token_digest};
use crate::store::{self, KvStore, Namespace, StoreError};

/// What Langfuse asked for; replayed into the authorization code once the user is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub login_hint: Option<String>,
}

impl PendingLogin {
    /// Stores the record under a fresh id and returns the id.
    pub async fn start(&self, store: &dyn KvStore, ttl: Duration) -> Result<String, StoreError> {
        let id = random_token(24);
        store::put_json(store, Namespace::PendingLogin, &id, self, ttl).await?;
        Ok(id)
    }

    /// Reads without consuming (the login page may be shown several times).
    pub async fn peek(store: &dyn KvStore, id: &str) -> Result<Option<Self>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        store::get_json(store, Namespace::PendingLogin, id).await
    }

    /// Consumes the record: a login completes at most once.
    pub async fn finish(store: &dyn KvStore, id: &str) -> Result<Option<Self>, StoreError> {
        if !plausible_id(id) {
            return Ok(None);
        }
        store::take_json(store, Namespace::PendingLogin, id).await
    }
}

/// Ids are 32 URL-safe characters; anything else is not looked up at all.
fn plausible_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The cookie that binds a login id to one browser.
pub struct BrowserBinding;

impl BrowserBinding {
    pub const COOKIE: &'static str = "ssob_login";

    pub fn cookie_value(login_id: &str) -> String {
        token_digest(login_id)
    }

    /// Constant-time check that the cookie was set for this login id.
    pub fn matches(cookie_value: Option<&str>, login_id: &str) -> bool {
        use subtle::ConstantTimeEq;
        match cookie_value {
            Some(v) => v
                .as_bytes()
                .ct_eq(Self::cookie_value(login_id).as_bytes())
                .into(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_matches_only_its_own_login() {
        let id = random_token(24);
        let other = random_token(24);
        let cookie = BrowserBinding::cookie_value(&id);
        assert!(BrowserBinding::matches(Some(&cookie), &id));
        assert!(!BrowserBinding::matches(Some(&cookie), &other));
        assert!(!BrowserBinding::matches(None, &id));
        assert!(plausible_id(&id));
        assert!(!plausible_id("../../etc"));
    }
}
