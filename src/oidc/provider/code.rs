//! Authorization codes: random, single use, short-lived, bound to client, redirect_uri and the
//! PKCE challenge. Stored under their digest; the browser holds the only copy of the code.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::UserClaims;
use crate::login::{Identity, PendingLogin};
use crate::secret::{random_token, token_digest};
use crate::store::{self, KvStore, Namespace, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub user: UserClaims,
}

/// Issues a code for a finished login.
pub async fn issue(
    store: &dyn KvStore,
    pending: &PendingLogin,
    identity: &Identity,
    auth_time: i64,
    ttl: Duration,
) -> Result<String, StoreError> {
    let code = random_token(32);
    let grant = CodeGrant {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        scope: pending.scope.clone(),
        auth_time,
        user: UserClaims {
            sub: identity.sub(),
            email: identity.email.as_str().to_owned(),
            name: identity.name.clone(),
            groups: identity.groups.clone(),
        },
    };
    store::put_json(
        store,
        Namespace::AuthCode,
        &token_digest(&code),
        &grant,
        ttl,
    )
    .await?;
    Ok(code)
}

/// Takes a code atomically: of two concurrent redemptions, one wins.
pub async fn take(store: &dyn KvStore, code: &str) -> Result<Option<CodeGrant>, StoreError> {
    store::take_json(store, Namespace::AuthCode, &token_digest(code)).await
}
