//! The token step: authenticate the client, take the code atomically, check its bindings, mint
//! the ID token and an access token. The response holds only standard fields, because Langfuse
//! stores the whole token response as a database row (field case 021).
//!
//! A code presented twice is refused, and the access token the first redemption issued is
//! revoked (RFC 6749 §4.1.2).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::code::{self, CodeGrant};
use super::keys::SigningKeys;
use super::OAuthError;
use crate::config::{Client, RuntimeConfig};
use crate::secret::{random_token, token_digest};
use crate::store::{KvStore, Namespace, StoreError};

#[derive(Debug, Default, Clone, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Exactly the standard fields; `expires_in` fits in 32 bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u32,
    pub id_token: String,
    pub scope: String,
}

#[derive(Debug)]
pub enum TokenError {
    /// Refused; `replay_revoked` is true when a spent code came back and the access token it
    /// had issued was revoked.
    OAuth {
        error: OAuthError,
        replay_revoked: bool,
    },
    Store(StoreError),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        TokenError::Store(e)
    }
}

fn refused(error: &'static str, d: &str) -> TokenError {
    TokenError::OAuth {
        error: OAuthError::new(error, d),
        replay_revoked: false,
    }
}

fn grant_err(d: &str) -> TokenError {
    refused("invalid_grant", d)
}

fn request_err(d: &str) -> TokenError {
    refused("invalid_request", d)
}

pub struct TokenContext<'a> {
    pub config: &'a RuntimeConfig,
    pub store: &'a dyn KvStore,
    pub keys: &'a SigningKeys,
    pub now: i64,
}

/// Redeems a code for an authenticated client; returns the response and the user's `sub`.
pub async fn exchange(
    ctx: &TokenContext<'_>,
    client: &Client,
    form: &TokenForm,
) -> Result<(TokenResponse, String), TokenError> {
    match form.grant_type.as_deref() {
        Some("authorization_code") => {}
        None => return Err(request_err("grant_type is required")),
        Some(_) => {
            return Err(refused(
                "unsupported_grant_type",
                "only authorization_code is supported",
            ))
        }
    }
    let presented_code = form
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .ok_or_else(|| request_err("code is required"))?;

    let Some(grant) = code::take(ctx.store, presented_code).await? else {
        let revoked = revoke_after_replay(ctx.store, presented_code).await?;
        return Err(TokenError::OAuth {
            error: OAuthError::new(
                "invalid_grant",
                "the code is invalid, expired or already used",
            ),
            replay_revoked: revoked,
        });
    };
    check_bindings(&grant, client, form)?;

    let access_token = random_token(32);
    let access_ttl = ctx.config.tokens.access_token;
    // The spent-code marker goes first and the token is only stored if no replay has revoked
    // it meanwhile: a replay racing this redemption either finds no marker (and the code is
    // already gone) or tombstones the token before it exists, and then this redemption fails.
    ctx.store
        .put(
            Namespace::SpentCode,
            &token_digest(presented_code),
            token_digest(&access_token).into_bytes(),
            access_ttl.max(Duration::from_secs(600)),
        )
        .await?;
    let record = serde_json::to_vec(&grant.user).map_err(StoreError::Corrupt)?;
    let stored = ctx
        .store
        .put_if_absent(
            Namespace::AccessToken,
            &token_digest(&access_token),
            record,
            access_ttl,
        )
        .await?;
    if !stored {
        return Err(TokenError::OAuth {
            error: OAuthError::new(
                "invalid_grant",
                "the code was replayed; its tokens are revoked",
            ),
            replay_revoked: true,
        });
    }

    let id_token = ctx
        .keys
        .sign_jwt(&id_token_claims(ctx, &grant, &access_token))
        .map_err(|_| refused("server_error", "signing failed"))?;
    let response = TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: u32::try_from(access_ttl.as_secs())
            .unwrap_or(u32::MAX)
            .min(i32::MAX as u32),
        id_token,
        scope: grant.scope.clone(),
    };
    Ok((response, grant.user.sub))
}

fn check_bindings(grant: &CodeGrant, client: &Client, form: &TokenForm) -> Result<(), TokenError> {
    if grant.client_id != client.id {
        return Err(grant_err("the code was issued to another client"));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(grant_err(
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| grant_err("code_verifier is required (PKCE)"))?;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let matches: bool =
        subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), grant.code_challenge.as_bytes()).into();
    if !(well_formed && matches) {
        return Err(grant_err("PKCE verification failed"));
    }
    Ok(())
}

/// A spent code came back: revoke the access token it produced. `true` when something was
/// revoked.
async fn revoke_after_replay(store: &dyn KvStore, code: &str) -> Result<bool, StoreError> {
    match store
        .take(Namespace::SpentCode, &token_digest(code))
        .await?
    {
        Some(at_digest) => {
            let key = String::from_utf8_lossy(&at_digest).into_owned();
            // A tombstone, not a delete: it also stops a token the first redemption has not
            // stored yet (see `exchange`).
            store
                .put(
                    Namespace::AccessToken,
                    &key,
                    REVOKED.to_vec(),
                    Duration::from_secs(86_400),
                )
                .await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The value that marks a revoked access token.
pub const REVOKED: &[u8] = b"revoked";

fn id_token_claims(ctx: &TokenContext<'_>, grant: &CodeGrant, access_token: &str) -> Value {
    let digest = Sha256::digest(access_token.as_bytes());
    let at_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);
    let mut claims = json!({
        "iss": ctx.config.public_url,
        "sub": grant.user.sub,
        "aud": grant.client_id,
        "iat": ctx.now,
        "exp": ctx.now + ctx.config.tokens.id_token.as_secs() as i64,
        "auth_time": grant.auth_time,
        "at_hash": at_hash,
        "email": grant.user.email,
        "email_verified": true,
        "groups": grant.user.groups,
    });
    if let Some(name) = &grant.user.name {
        claims["name"] = json!(name);
    }
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    claims
}
