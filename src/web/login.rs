//! The login page (home-realm discovery by email domain) and the hand-off to a connection.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

use super::pages::{render_page, ChoosePage, LoginPage, SamlPostPage};
use super::params::Params;
use super::{AppState, CorrelationId, PageError};
use crate::audit::Event;
use crate::config::Connection;
use crate::login::{BrowserBinding, PendingLogin};
use crate::policy::{routing, Email};
use crate::saml::{acs, request};
use crate::store::StoreError;

pub fn store_down(cid: &str, e: &StoreError) -> PageError {
    PageError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "The sign-in service cannot reach its session store.",
        cid,
    )
    .logged(e)
}

pub fn expired(cid: &str) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "login_expired",
        "This sign-in has expired or was already completed.",
        cid,
    )
}

/// After a valid authorize request: straight to the IdP when `login_hint` routes to exactly one
/// connection, otherwise to the login page. Sets the cookie that binds the login to this browser.
pub async fn after_authorize(
    state: &AppState,
    cid: &str,
    login_id: &str,
    login_hint: Option<&str>,
) -> Result<Response, PageError> {
    let hinted = login_hint
        .and_then(|h| Email::parse(h).ok())
        .and_then(|email| single_connection(state, &email));
    let resp = match hinted {
        Some(conn) => begin_connection(state, cid, login_id, conn).await?,
        None => Redirect::to(&format!("/login?login={login_id}")).into_response(),
    };
    Ok(with_binding_cookie(state, resp, login_id))
}

fn single_connection<'s>(state: &'s AppState, email: &Email) -> Option<&'s Connection> {
    match routing::connections_for(&state.routing, email.domain()).as_slice() {
        [only] => state.config.connection(&only.connection_id),
        _ => None,
    }
}

/// Where the binding cookie is sent: only the SAML endpoints need it.
const BINDING_COOKIE_PATH: &str = "/saml/";

/// `Set-Cookie` for the browser binding (field case 019). Over https it is
/// `SameSite=None; Secure`, because the IdP's POST to the ACS is a cross-site request: a Lax
/// cookie (or one without SameSite, after Chrome's two-minute Lax+POST grace) would not come
/// with it, and logins with slow MFA would fail. Over plain http (local testing) browsers refuse
/// `SameSite=None` without `Secure`, so it is Lax. Whenever the IdP's POST still arrives
/// without it (Lax, third-party cookie blocking, older WebKit treating `None` as `Strict`), the
/// ACS answers with a same-site resubmit page (`saml::same_site_resubmit`), whose POST carries
/// it. Only this cookie is relaxed; it holds a digest of the login id, never the id itself, and
/// expires with the login.
fn with_binding_cookie(state: &AppState, mut resp: Response, login_id: &str) -> Response {
    let attrs = if state.config.cookie_secure {
        "SameSite=None; Secure"
    } else {
        "SameSite=Lax"
    };
    let value = format!(
        "{}={}; Path={BINDING_COOKIE_PATH}; HttpOnly; {attrs}; Max-Age={}",
        BrowserBinding::COOKIE,
        BrowserBinding::cookie_value(login_id),
        state.config.tokens.login.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Clears the binding cookie once the login is finished.
pub fn clear_binding_cookie(mut resp: Response) -> Response {
    let value = format!(
        "{}=; Path={BINDING_COOKIE_PATH}; HttpOnly; Max-Age=0",
        BrowserBinding::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Sends the browser to the connection's IdP with a fresh AuthnRequest.
async fn begin_connection(
    state: &AppState,
    cid: &str,
    login_id: &str,
    conn: &Connection,
) -> Result<Response, PageError> {
    let req = match request::build(&conn.saml, login_id, state.clock.now()) {
        Ok(r) => r,
        Err(request::BuildError::NoMetadata) => return Err(PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata_unavailable",
            "The identity provider's metadata could not be loaded yet, so sign-in cannot start.",
            cid,
        )
        .logged(&format!(
            "connection {} has no usable IdP metadata",
            conn.id
        ))),
        Err(e) => {
            return Err(PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "request_signing",
                "The sign-in request could not be signed.",
                cid,
            )
            .logged(&e))
        }
    };
    let sent = acs::SentRequest {
        login_id: login_id.to_owned(),
        connection_id: conn.id.clone(),
    };
    acs::remember_request(
        state.store.as_ref(),
        &req.id,
        &sent,
        state.config.tokens.login,
    )
    .await
    .map_err(|e| store_down(cid, &e))?;
    match &req.delivery {
        request::Delivery::Redirect(url) => Ok(Redirect::to(url).into_response()),
        request::Delivery::Post {
            url,
            saml_request,
            relay_state,
        } => {
            let page = SamlPostPage {
                url,
                saml_request,
                relay_state,
            };
            render_page(&page, StatusCode::OK, cid)
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let cid = &cid.0;
    // Parsed like every other request here: a malformed or repeated parameter gets this page,
    // never the framework's plain-text deserialiser error.
    let Some(login_id) = Params::parse(query.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|mut p| p.take("login"))
        .filter(|l| !l.is_empty())
    else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "no_login",
            "This page is part of an application's sign-in: open the application (Langfuse) and choose single sign-on there.",
            cid,
        )
        .advice("Bookmark the application, not this page."));
    };
    let pending = PendingLogin::peek(state.store.as_ref(), &login_id)
        .await
        .map_err(|e| store_down(cid, &e))?
        .ok_or_else(|| expired(cid))?;
    let email = pending.login_hint.unwrap_or_default();
    render_login(&login_id, &email, None, None, StatusCode::OK)
}

fn render_login(
    login_id: &str,
    email: &str,
    error: Option<&str>,
    correlation_id: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let page = LoginPage {
        login_id,
        email,
        error,
        correlation_id,
    };
    render_page(&page, status, correlation_id.unwrap_or("-"))
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let cid = &cid.0;
    let mut form = body
        .ok()
        .and_then(|b| Params::parse(&b).ok())
        .ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "bad_form",
                "The form could not be read.",
                cid,
            )
        })?;
    let login_id = form.take("login").unwrap_or_default();
    let raw_email = form.take("email").unwrap_or_default();
    PendingLogin::peek(state.store.as_ref(), &login_id)
        .await
        .map_err(|e| store_down(cid, &e))?
        .ok_or_else(|| expired(cid))?;

    let email = match Email::parse(&raw_email) {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("That is not a usable email address ({e}).");
            return render_login(
                &login_id,
                &raw_email,
                Some(&msg),
                Some(cid),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let candidates = routing::connections_for(&state.routing, email.domain());
    let chosen = form.take("connection");
    let routed = match (candidates.as_slice(), chosen.as_deref()) {
        ([], _) => None,
        (cs, Some(id)) => cs.iter().find(|c| c.connection_id == id).copied(),
        ([one], None) => Some(*one),
        (cs, None) => {
            let page = ChoosePage {
                login_id: &login_id,
                email: email.as_str(),
                domain: email.domain().as_str(),
                connections: cs
                    .iter()
                    .filter_map(|c| state.config.connection(&c.connection_id))
                    .map(|c| (c.id.as_str(), c.display_name.as_str()))
                    .collect(),
            };
            return render_page(&page, StatusCode::OK, cid);
        }
    };
    let Some(conn) = routed.and_then(|c| state.config.connection(&c.connection_id)) else {
        state.audit.record(
            cid,
            &Event::LoginRefused {
                connection: None,
                reason: "unknown_domain".into(),
                detail: format!("no connection serves {}", email.domain()),
            },
        );
        let msg = format!(
            "No single sign-on is configured for {}. Check the address, or ask your administrator to add the domain to a connection.",
            email.domain()
        );
        return render_login(
            &login_id,
            email.as_str(),
            Some(&msg),
            Some(cid),
            StatusCode::BAD_REQUEST,
        );
    };
    state.audit.record(
        cid,
        &Event::LoginRouted {
            connection: conn.id.clone(),
            domain: email.domain().to_string(),
        },
    );
    begin_connection(&state, cid, &login_id, conn).await
}
