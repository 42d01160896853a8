//! IdP-initiated login, completed through the client's own sign-in. The ACS verifies the
//! unsolicited response, stores the identity here under a random id that only this browser's
//! cookie knows, and sends the browser to the client's sign-in start. The client then runs a
//! normal authorization code flow with its own state, nonce and PKCE; the bridge's authorize
//! step finds the record, takes it (single use) and issues the code without asking the IdP
//! again. So the client never has to accept an unsolicited code.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Identity;
use crate::secret::{random_token, token_digest};
use crate::store::{self, KvStore, Namespace, StoreError};

/// How long the browser has to come back through the client's authorize request.
pub const TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsolicitedLogin {
    pub identity: Identity,
    /// Only this client's authorize request may complete it.
    pub client_id: String,
}

impl UnsolicitedLogin {
    pub const COOKIE: &'static str = "ssob_idpinit";

    /// Stores the record and returns the cookie value (the store keeps only its digest, so a
    /// store dump cannot be replayed as cookies).
    pub async fn start(&self, store: &dyn KvStore) -> Result<String, StoreError> {
        let token = random_token(24);
        store::put_json(
            store,
            Namespace::UnsolicitedLogin,
            &token_digest(&token),
            self,
            TTL,
        )
        .await?;
        Ok(token)
    }

    /// Takes the record for this cookie value, if any (single use).
    pub async fn finish(store: &dyn KvStore, token: &str) -> Result<Option<Self>, StoreError> {
        if token.len() != 32 {
            return Ok(None);
        }
        store::take_json(store, Namespace::UnsolicitedLogin, &token_digest(token)).await
    }
}
