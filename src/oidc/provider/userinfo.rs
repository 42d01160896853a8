//! The userinfo step: the claims an access token stands for, matching the ID token, so Langfuse
//! finds the email whichever path it reads (field case 021).

use serde_json::{json, Value};

use super::{OAuthError, UserClaims};
use crate::secret::token_digest;
use crate::store::{KvStore, Namespace, StoreError};

pub enum UserinfoError {
    InvalidToken(OAuthError),
    Store(StoreError),
}

pub async fn claims(
    store: &dyn KvStore,
    access_token: Option<&str>,
) -> Result<Value, UserinfoError> {
    let invalid = || {
        UserinfoError::InvalidToken(OAuthError::new(
            "invalid_token",
            "the access token is invalid or expired",
        ))
    };
    let token = access_token
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(invalid)?;
    let raw = store
        .get(Namespace::AccessToken, &token_digest(token))
        .await
        .map_err(UserinfoError::Store)?
        .filter(|v| v.as_slice() != super::token::REVOKED)
        .ok_or_else(invalid)?;
    let user: UserClaims =
        serde_json::from_slice(&raw).map_err(|e| UserinfoError::Store(StoreError::Corrupt(e)))?;
    let mut out = json!({
        "sub": user.sub,
        "email": user.email,
        "email_verified": true,
        "groups": user.groups,
    });
    if let Some(name) = user.name {
        out["name"] = json!(name);
    }
    Ok(out)
}
