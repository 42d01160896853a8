//! The OpenID provider Langfuse logs in with, one file per protocol step. Nothing here knows
//! HTTP: each step takes plain inputs, the store and the keys, and returns typed results.

pub mod authorize;
pub mod client_auth;
pub mod code;
pub mod discovery;
pub mod keys;
pub mod token;
pub mod userinfo;

use serde::{Deserialize, Serialize};

/// What an access token (and a code) stands for: the claims userinfo returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    pub sub: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// An OAuth error as the token and userinfo endpoints report it (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
}
