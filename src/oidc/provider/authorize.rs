//! The authorize step: validate Langfuse's request. An unknown client or a redirect_uri that is
//! not registered exactly is answered with a page, never a redirect; every other problem is sent
//! back to the (verified) redirect_uri as an OAuth error.

use serde::Deserialize;

use crate::config::RuntimeConfig;
use crate::login::PendingLogin;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown as a page.
    UnknownClient,
    /// Shown as a page.
    RedirectUriMismatch,
    /// Sent back to the client's redirect_uri.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

impl AuthorizeError {
    pub fn kind(&self) -> &'static str {
        match self {
            AuthorizeError::UnknownClient => "unknown_client",
            AuthorizeError::RedirectUriMismatch => "redirect_uri_mismatch",
            AuthorizeError::Redirect { error, .. } => error,
        }
    }
}

const MAX_PARAM: usize = 2048;

pub fn validate(
    config: &RuntimeConfig,
    p: AuthorizeParams,
) -> Result<PendingLogin, AuthorizeError> {
    let client = p
        .client_id
        .as_deref()
        .and_then(|id| config.client(id))
        .ok_or(AuthorizeError::UnknownClient)?;
    let redirect_uri = p
        .redirect_uri
        .clone()
        .filter(|r| client.redirect_uris.iter().any(|known| known == r))
        .ok_or(AuthorizeError::RedirectUriMismatch)?;

    let state = p.state.clone();
    let fail = |error: &'static str, description: &'static str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description,
    };
    let too_long = [
        &p.state,
        &p.nonce,
        &p.scope,
        &p.login_hint,
        &p.code_challenge,
    ]
    .iter()
    .any(|v| v.as_ref().is_some_and(|s| s.len() > MAX_PARAM));
    if too_long {
        return Err(fail("invalid_request", "a parameter is too long"));
    }
    if p.request.is_some() || p.request_uri.is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let scope = p.scope.clone().unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(fail("invalid_scope", "the scope must include openid"));
    }
    let challenge = p.code_challenge.clone().ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: send code_challenge with method S256",
        )
    })?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(fail(
            "invalid_request",
            "PKCE code_challenge_method must be S256",
        ));
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 digest",
        ));
    }

    Ok(PendingLogin {
        client_id: client.id.clone(),
        redirect_uri,
        state: p.state.filter(|s| !s.is_empty()),
        nonce: p.nonce.filter(|s| !s.is_empty()),
        code_challenge: challenge,
        scope,
        login_hint: p.login_hint.filter(|s| !s.is_empty()),
    })
}

/// The success redirect: `code`, `state` when the client sent one, and `iss` (RFC 9207).
pub fn success_redirect(
    redirect_uri: &str,
    code: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    redirect_with(redirect_uri, &[("code", code)], state, issuer)
}

/// The error redirect for `AuthorizeError::Redirect` (and later login refusals).
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    redirect_with(
        redirect_uri,
        &[("error", error), ("error_description", description)],
        state,
        issuer,
    )
}

/// `redirect_uri` (already matched against the client's registered URIs, so it parses) with
/// `pairs`, then `state` when the client sent one, then `iss`.
fn redirect_with(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut url = url::Url::parse(redirect_uri)
        .unwrap_or_else(|_| url::Url::parse("about:invalid").expect("static URL"));
    {
        let mut q = url.query_pairs_mut();
        q.extend_pairs(pairs);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    url.into()
}
