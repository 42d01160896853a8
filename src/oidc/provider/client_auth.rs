//! Client authentication at the token endpoint: `client_secret_basic` and `client_secret_post`,
//! exactly one per request (RFC 6749 §2.3.1).
//!
//! Basic credentials are form-url-encoded before base64 (the RFC; openid-client does it), so the
//! server splits on the first `:` and decodes each half. A documented fallback also accepts a
//! client that did not encode: when the decoded secret does not match, the raw secret is
//! compared too (both in constant time) — only the true secret can pass either comparison, and a
//! `+` turned into a space never matches. Field case 009.

use base64::Engine;

use super::OAuthError;
use crate::config::{Client, RuntimeConfig};

/// What the request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Basic { id: String, secret_raw: String },
    Post { id: String, secret: String },
}

/// Why authentication failed, as the endpoint must answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthError {
    /// 400 invalid_request (malformed, or two methods at once).
    Request(OAuthError),
    /// 401 invalid_client; `basic` says whether to send `WWW-Authenticate: Basic`.
    Client { basic: bool },
}

/// Collects the credentials from the `Authorization` header and the form body.
pub fn presented(
    authorization: Option<&str>,
    body_client_id: Option<&str>,
    body_client_secret: Option<&str>,
) -> Result<Presented, ClientAuthError> {
    let bad = |d: &str| ClientAuthError::Request(OAuthError::new("invalid_request", d));
    match (authorization, body_client_secret) {
        (Some(_), Some(_)) => Err(bad("use one client authentication method, not several")),
        (Some(header), None) => {
            let (scheme, value) = header
                .trim()
                .split_once(' ')
                .ok_or(ClientAuthError::Client { basic: true })?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(ClientAuthError::Client { basic: true });
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(ClientAuthError::Client { basic: true })?;
            let (id_enc, secret_raw) = decoded
                .split_once(':')
                .ok_or(ClientAuthError::Client { basic: true })?;
            let id = form_decode(id_enc).ok_or(ClientAuthError::Client { basic: true })?;
            if body_client_id.is_some_and(|b| b != id) {
                return Err(bad(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            Ok(Presented::Basic {
                id,
                secret_raw: secret_raw.to_owned(),
            })
        }
        (None, Some(secret)) => {
            let id = body_client_id.ok_or(ClientAuthError::Client { basic: false })?;
            Ok(Presented::Post {
                id: id.to_owned(),
                secret: secret.to_owned(),
            })
        }
        (None, None) => Err(ClientAuthError::Client { basic: false }),
    }
}

/// Authenticates the presented credentials against the registered clients.
pub fn authenticate<'c>(
    config: &'c RuntimeConfig,
    presented: &Presented,
) -> Result<&'c Client, ClientAuthError> {
    match presented {
        Presented::Basic { id, secret_raw } => {
            let client = config
                .client(id)
                .ok_or(ClientAuthError::Client { basic: true })?;
            let decoded_ok =
                form_decode(secret_raw).is_some_and(|s| client.secret.matches(s.as_bytes()));
            let raw_ok = client.secret.matches(secret_raw.as_bytes());
            if decoded_ok | raw_ok {
                Ok(client)
            } else {
                Err(ClientAuthError::Client { basic: true })
            }
        }
        Presented::Post { id, secret } => {
            let client = config
                .client(id)
                .ok_or(ClientAuthError::Client { basic: false })?;
            if client.secret.matches(secret.as_bytes()) {
                Ok(client)
            } else {
                Err(ClientAuthError::Client { basic: false })
            }
        }
    }
}

/// application/x-www-form-urlencoded decoding of one value; `None` on a malformed escape or
/// invalid UTF-8 (never a panic).
pub fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decode_handles_escapes_and_refuses_malformed_ones() {
        assert_eq!(
            form_decode("Lf%2B9%2Fq%3AZx%3Dw%251").as_deref(),
            Some("Lf+9/q:Zx=w%1")
        );
        assert_eq!(form_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(form_decode("w%1"), None);
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%ff"), None);
    }
}
