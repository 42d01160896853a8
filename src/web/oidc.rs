//! Handlers for the provider side Langfuse talks to: discovery, JWKS, authorize, token,
//! userinfo.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};

use super::error::OAuthJson;
use super::params::Params;
use super::{login, AppState, CorrelationId, PageError};
use crate::audit::Event;
use crate::login::{PendingLogin, UnsolicitedLogin};
use crate::oidc::provider::authorize::{self, AuthorizeError, AuthorizeParams};
use crate::oidc::provider::client_auth::{self, ClientAuthError};
use crate::oidc::provider::code;
use crate::oidc::provider::token::{self, TokenContext, TokenError, TokenForm};
use crate::oidc::provider::userinfo::{self, UserinfoError};
use crate::oidc::provider::{discovery, OAuthError};

pub async fn discovery(State(state): State<AppState>) -> Response {
    cached_json(discovery::document(&state.config.public_url))
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    cached_json(state.keys.jwks())
}

fn cached_json(v: serde_json::Value) -> Response {
    let mut resp = Json(v).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

pub async fn authorize(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let cid = &cid.0;
    let mut p = Params::parse(query.unwrap_or_default().as_bytes()).map_err(|d| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The sign-in request is malformed: a parameter appears twice.",
            cid,
        )
        .logged(&format!("duplicate parameter {}", d.0))
    })?;
    let params = AuthorizeParams {
        client_id: p.take("client_id"),
        redirect_uri: p.take("redirect_uri"),
        response_type: p.take("response_type"),
        scope: p.take("scope"),
        state: p.take("state"),
        nonce: p.take("nonce"),
        code_challenge: p.take("code_challenge"),
        code_challenge_method: p.take("code_challenge_method"),
        login_hint: p.take("login_hint"),
        response_mode: p.take("response_mode"),
        request: p.take("request"),
        request_uri: p.take("request_uri"),
    };
    let pending = match authorize::validate(&state.config, params) {
        Ok(p) => p,
        Err(AuthorizeError::UnknownClient) => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "unknown_client",
                "The application that sent you here is not registered with this sign-in service.",
                cid,
            )
            .advice("Tell your administrator: the client_id in the application's configuration does not match the bridge's [[clients]].")
            .logged(&"unknown client_id"));
        }
        Err(AuthorizeError::RedirectUriMismatch) => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                "The application asked to return to an address that is not registered for it.",
                cid,
            )
            .advice("Tell your administrator: the redirect_uri must match one of the client's redirect_uris exactly.")
            .logged(&"redirect_uri not registered"));
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state: st,
            error,
            description,
        }) => {
            tracing::info!(correlation_id = %cid, error, description, "authorize request refused");
            let to = authorize::error_redirect(
                &redirect_uri,
                error,
                description,
                st.as_deref(),
                &state.config.public_url,
            );
            return Ok(Redirect::to(&to).into_response());
        }
    };
    if let Some(token) = super::cookie(&headers, UnsolicitedLogin::COOKIE) {
        if let Some(resp) = complete_unsolicited(&state, cid, &pending, token).await? {
            return Ok(resp);
        }
    }
    let login_id = pending
        .start(state.store.as_ref(), state.config.tokens.login)
        .await
        .map_err(|e| login::store_down(cid, &e))?;
    state.audit.record(
        cid,
        &Event::LoginStarted {
            client_id: pending.client_id.clone(),
        },
    );
    login::after_authorize(&state, cid, &login_id, pending.login_hint.as_deref()).await
}

/// The second half of an IdP-initiated login: the client's own authorize request, from the
/// browser that holds the cookie set at the ACS, completes with the identity verified there.
/// A record for another client is consumed and ignored (a normal login follows).
async fn complete_unsolicited(
    state: &AppState,
    cid: &str,
    pending: &PendingLogin,
    token: &str,
) -> Result<Option<Response>, PageError> {
    let Some(record) = UnsolicitedLogin::finish(state.store.as_ref(), token)
        .await
        .map_err(|e| login::store_down(cid, &e))?
    else {
        return Ok(None);
    };
    if record.client_id != pending.client_id {
        return Ok(None);
    }
    let identity = record.identity;
    let code = code::issue(
        state.store.as_ref(),
        pending,
        &identity,
        state.clock.now().timestamp(),
        state.config.tokens.code,
    )
    .await
    .map_err(|e| login::store_down(cid, &e))?;
    state.audit.record(
        cid,
        &Event::UnsolicitedLoginCompleted {
            connection: identity.connection_id.clone(),
            sub: identity.sub(),
            client_id: pending.client_id.clone(),
        },
    );
    let to = authorize::success_redirect(
        &pending.redirect_uri,
        &code,
        pending.state.as_deref(),
        &state.config.public_url,
    );
    let mut resp = Redirect::to(&to).into_response();
    let clear = format!(
        "{}=; Path=/oidc/authorize; HttpOnly; Max-Age=0",
        UnsolicitedLogin::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(Some(resp))
}

pub async fn token(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let cid = &cid.0;
    let bad = |d: &str| OAuthJson {
        status: StatusCode::BAD_REQUEST,
        error: OAuthError::new("invalid_request", d),
        www_authenticate: None,
    };
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return bad("the body must be application/x-www-form-urlencoded").into_response();
    }
    let Ok(body) = body else {
        return bad("the body could not be read or is too large").into_response();
    };
    let mut p = match Params::parse(&body) {
        Ok(p) => p,
        Err(d) => return bad(&format!("parameter {} appears more than once", d.0)).into_response(),
    };
    let form = TokenForm {
        grant_type: p.take("grant_type"),
        code: p.take("code"),
        redirect_uri: p.take("redirect_uri"),
        code_verifier: p.take("code_verifier"),
        client_id: p.take("client_id"),
        client_secret: p.take("client_secret"),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = client_auth::presented(
        authorization,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .and_then(|presented| client_auth::authenticate(&state.config, &presented));
    let client = match client {
        Ok(c) => c,
        Err(ClientAuthError::Request(e)) => {
            return OAuthJson {
                status: StatusCode::BAD_REQUEST,
                error: e,
                www_authenticate: None,
            }
            .into_response()
        }
        Err(ClientAuthError::Client { basic }) => {
            state.audit.record(
                cid,
                &Event::TokenRefused {
                    client_id: form.client_id.clone(),
                    error: "invalid_client".into(),
                },
            );
            return OAuthJson {
                status: StatusCode::UNAUTHORIZED,
                error: OAuthError::new("invalid_client", "client authentication failed"),
                www_authenticate: basic.then_some("Basic realm=\"sso-bridge\""),
            }
            .into_response();
        }
    };
    let ctx = TokenContext {
        config: &state.config,
        store: state.store.as_ref(),
        keys: &state.keys,
        now: state.clock.now().timestamp(),
    };
    match token::exchange(&ctx, client, &form).await {
        Ok((resp, sub)) => {
            state.audit.record(
                cid,
                &Event::TokenIssued {
                    client_id: client.id.clone(),
                    sub,
                },
            );
            let mut r = Json(resp).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(TokenError::OAuth {
            error: e,
            replay_revoked,
        }) => {
            if replay_revoked {
                state.audit.record(
                    cid,
                    &Event::CodeReplayRevoked {
                        client_id: client.id.clone(),
                    },
                );
            }
            state.audit.record(
                cid,
                &Event::TokenRefused {
                    client_id: Some(client.id.clone()),
                    error: e.error.into(),
                },
            );
            OAuthJson {
                status: StatusCode::BAD_REQUEST,
                error: e,
                www_authenticate: None,
            }
            .into_response()
        }
        Err(TokenError::Store(e)) => {
            tracing::error!(correlation_id = %cid, cause = %e, "token endpoint: store failed");
            OAuthJson {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: OAuthError::new(
                    "temporarily_unavailable",
                    "the session store is unavailable",
                ),
                www_authenticate: None,
            }
            .into_response()
        }
    }
}

pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let from_body = body
        .ok()
        .and_then(|b| Params::parse(&b).ok())
        .and_then(|mut p| p.take("access_token"));
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            // RFC 6750 §2: a request uses exactly one method to present its token.
            return OAuthJson {
                status: StatusCode::BAD_REQUEST,
                error: OAuthError::new("invalid_request", "present the access token one way only"),
                www_authenticate: Some("Bearer error=\"invalid_request\""),
            }
            .into_response();
        }
        (header, body) => header.or(body),
    };
    match userinfo::claims(state.store.as_ref(), token.as_deref()).await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(UserinfoError::InvalidToken(e)) => OAuthJson {
            status: StatusCode::UNAUTHORIZED,
            error: e,
            www_authenticate: Some("Bearer error=\"invalid_token\""),
        }
        .into_response(),
        Err(UserinfoError::Store(e)) => {
            tracing::error!(cause = %e, "userinfo: store failed");
            OAuthJson {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: OAuthError::new(
                    "temporarily_unavailable",
                    "the session store is unavailable",
                ),
                www_authenticate: None,
            }
            .into_response()
        }
    }
}
