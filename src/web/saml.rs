//! SAML endpoints: SP metadata and the ACS (SP-initiated and, where enabled, IdP-initiated).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

use super::login::{clear_binding_cookie, expired, store_down};
use super::pages::{render_page, SamlResubmitPage};
use super::params::Params;
use super::{cookie, AppState, CorrelationId, PageError};
use crate::audit::Event;
use crate::config::IdpInitiated;
use crate::login::{unsolicited, BrowserBinding, Identity, PendingLogin, UnsolicitedLogin};
use crate::oidc::provider::{authorize, code};
use crate::policy::decide::DenialReason;
use crate::policy::routing::{self, GuardRefusal};
use crate::policy::{self, Decision, Facts};
use crate::saml::acs::{self, AcsError, Solicitation};
use crate::saml::metadata::sp_metadata_xml;

fn unknown_connection(cid: &str) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "unknown_connection",
        "There is no such sign-in connection.",
        cid,
    )
}

pub async fn metadata(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path(connection): Path<String>,
) -> Result<Response, PageError> {
    let conn = state
        .config
        .connection(&connection)
        .ok_or_else(|| unknown_connection(&cid.0))?;
    let xml = sp_metadata_xml(&conn.saml);
    let mut resp = xml.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    Ok(resp)
}

/// The HTTP status for a refused response: malformed input is the sender's fault (400), a
/// well-formed but unacceptable one is refused (403).
fn status_for(e: &AcsError) -> StatusCode {
    match e {
        AcsError::Store => StatusCode::SERVICE_UNAVAILABLE,
        AcsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        AcsError::Encoding | AcsError::Doctype | AcsError::Malformed | AcsError::DuplicateId => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::FORBIDDEN,
    }
}

pub async fn acs(
    State(state): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let cid = &cid.0;
    let refuse = |e: AcsError, conn: Option<&str>| {
        state.audit.record(
            cid,
            &Event::LoginRefused {
                connection: conn.map(str::to_owned),
                reason: e.kind().into(),
                detail: e.to_string(),
            },
        );
        let page = PageError::new(status_for(&e), e.kind(), e.to_string(), cid);
        let page = match e {
            AcsError::GroupOverage => page.advice("Tell your administrator: in the Entra ID enterprise application, set the groups claim to \"Groups assigned to the application\" (or filter groups), then sign in again."),
            AcsError::MissingAttribute { .. } => page.advice("Tell your administrator: the attribute names configured for this connection do not match what the identity provider sends (the names it sent are listed above)."),
            _ => page,
        };
        page.logged(&e.kind())
    };
    let conn_index = state
        .config
        .connections
        .iter()
        .position(|c| c.id == connection)
        .ok_or_else(|| unknown_connection(cid))?;
    let conn = &state.config.connections[conn_index];
    let conn_id = Some(conn.id.as_str());

    let body = body.map_err(|_| refuse(AcsError::TooLarge, conn_id))?;
    let mut form = Params::parse(&body).map_err(|_| refuse(AcsError::Malformed, conn_id))?;
    let relay_state = form.take("RelayState").unwrap_or_default();
    let saml_response = form
        .take("SAMLResponse")
        .ok_or_else(|| refuse(AcsError::Encoding, conn_id))?;
    let resubmitted = form.take(RESUBMIT_FIELD).is_some_and(|v| v == "1");

    // Login CSRF: a response to a login started here must come back to the browser that
    // started it. A cookie for another login is refused before any XML work; no cookie at all
    // is either an IdP-initiated login or a browser that withheld the cookie (decided below).
    let binding = cookie(&headers, BrowserBinding::COOKIE);
    if binding.is_some() && !BrowserBinding::matches(binding, &relay_state) {
        return Err(browser_refusal(
            &state,
            cid,
            conn_id,
            "browser_mismatch",
            "This sign-in was started in another browser or has expired.",
            "binding cookie for another login",
        ));
    }

    let xml = acs::decode_form_value(&saml_response).map_err(|e| refuse(e, conn_id))?;
    let now = state.clock.now();
    let permit = state
        .xml_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| refuse(AcsError::Store, conn_id))?;
    let config = state.config.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        acs::verify(&xml, &config.connections[conn_index].saml, now)
    })
    .await
    .map_err(|_| refuse(AcsError::Malformed, conn_id))?
    .map_err(|e| refuse(e, conn_id))?;

    let how = match (binding, verified.in_response_to.as_deref()) {
        (Some(_), _) => Solicitation::Login(&relay_state),
        (None, None) => Solicitation::Unsolicited {
            allowed: conn.saml.idp_initiated.is_some(),
        },
        (None, Some(request_id)) => {
            // A response to a request we really sent, without that browser's cookie: the
            // cookie was withheld (SameSite) or this is another browser (field case 019 B).
            let known = acs::request_known(state.store.as_ref(), request_id)
                .await
                .map_err(|e| refuse(e, conn_id))?;
            if known && !resubmitted {
                // Bounce once through a page of our own: its POST is same-site, so a Lax
                // cookie comes along. Nothing has been consumed yet.
                return same_site_resubmit(cid, &conn.saml.acs_url, &saml_response, &relay_state);
            }
            if known {
                return Err(browser_refusal(
                    &state,
                    cid,
                    conn_id,
                    "cookie_missing",
                    "Your browser did not send the sign-in cookie with the identity provider's answer. Start the sign-in again from the application; if it keeps failing, allow cookies for this site.",
                    "state cookie missing (cross-site POST)",
                ));
            }
            Solicitation::Unsolicited { allowed: false }
        }
    };
    acs::accept(state.store.as_ref(), &verified, &conn.id, how, now)
        .await
        .map_err(|e| refuse(e, conn_id))?;

    if let Err(refusal) =
        routing::guard(&state.routing, &state.routing[conn_index], &verified.email)
    {
        let (reason, message) = match &refusal {
            GuardRefusal::ForeignDomain => (
                "foreign_domain",
                format!(
                    "Your identity provider signed you in as an address in {}, which this connection may not vouch for.",
                    verified.email.domain()
                ),
            ),
            GuardRefusal::EnforcedElsewhere { .. } => (
                "sso_enforced_elsewhere",
                format!("Addresses in {} must sign in through their own organisation's connection.", verified.email.domain()),
            ),
        };
        state.audit.record(
            cid,
            &Event::LoginRefused {
                connection: conn_id.map(str::to_owned),
                reason: reason.into(),
                detail: format!("{}: {refusal:?}", verified.email.domain()),
            },
        );
        return Err(PageError::new(StatusCode::FORBIDDEN, reason, message, cid)
            .advice("Tell your administrator: add the domain to this connection, or sign in through the connection that owns it.")
            .logged(&"domain guard"));
    }

    let identity = Identity {
        connection_id: conn.id.clone(),
        subject: verified.subject,
        email: verified.email,
        name: verified.name,
        groups: verified.groups,
    };
    let decision = policy::decide(
        &Facts {
            connection: &conn.id,
            groups: &identity.groups,
        },
        &state.config.policy.rules,
    );
    if !decision.allowed {
        let message = denial_message(&state, &decision);
        state.audit.record(
            cid,
            &Event::LoginDenied {
                connection: conn.id.clone(),
                sub: identity.sub(),
                email: identity.email.to_string(),
                groups: identity.groups.clone(),
                decision,
            },
        );
        if let Solicitation::Login(_) = how {
            // The pending login is spent: a refused user starts again from Langfuse.
            let _ = PendingLogin::finish(state.store.as_ref(), &relay_state).await;
        }
        return Err(
            PageError::new(StatusCode::FORBIDDEN, "access_denied", message, cid)
                .advice("Ask your administrator for access, then sign in again from Langfuse."),
        );
    }

    // Before the redirect, so the user lands in Langfuse with the right roles.
    super::provision::at_login(&state, cid, &identity, &decision).await?;

    if let (Solicitation::Unsolicited { .. }, Some(target)) = (how, &conn.saml.idp_initiated) {
        state
            .audit
            .record(cid, &login_succeeded(&identity, decision));
        return unsolicited_hand_off(&state, cid, identity, target).await;
    }

    let pending = PendingLogin::finish(state.store.as_ref(), &relay_state)
        .await
        .map_err(|e| store_down(cid, &e))?
        .ok_or_else(|| expired(cid))?;
    let code = code::issue(
        state.store.as_ref(),
        &pending,
        &identity,
        now.timestamp(),
        state.config.tokens.code,
    )
    .await
    .map_err(|e| store_down(cid, &e))?;
    state
        .audit
        .record(cid, &login_succeeded(&identity, decision));
    let to = authorize::success_redirect(
        &pending.redirect_uri,
        &code,
        pending.state.as_deref(),
        &state.config.public_url,
    );
    Ok(clear_binding_cookie(Redirect::to(&to).into_response()))
}

/// The audit event of an allowed login, whichever way it continues.
fn login_succeeded(identity: &Identity, decision: Decision) -> Event {
    Event::LoginSucceeded {
        connection: identity.connection_id.clone(),
        sub: identity.sub(),
        email: identity.email.to_string(),
        groups: identity.groups.clone(),
        decision,
    }
}

/// What a refused user is told: which groups to ask for, when the config allows naming them.
fn denial_message(state: &AppState, decision: &Decision) -> String {
    match decision.denial.as_ref().map(|d| d.reason) {
        Some(DenialReason::DenyRule) => "Your account is not allowed to use Langfuse.".to_owned(),
        _ => {
            let groups = state.config.policy.granting_groups();
            if state.config.policy.list_groups_on_denial && !groups.is_empty() {
                format!(
                    "You are not in a group that grants access to Langfuse. Ask your administrator to add you to one of: {}.",
                    groups.join(", ")
                )
            } else {
                "You are not in a group that grants access to Langfuse. Ask your administrator to add you to the right group.".to_owned()
            }
        }
    }
}

/// The form field that marks the bridge's own resubmit of a response (field case 019).
const RESUBMIT_FIELD: &str = "resubmit";

/// Field case 019: the IdP's POST to the ACS is cross-site, so a `SameSite=Lax` binding cookie
/// (plain http) is not sent with it, and a browser blocking third-party cookies may withhold a
/// `SameSite=None` one too. For a response to a request this bridge really sent, answer once
/// with an auto-submitting page from the bridge's own origin that posts the same SAMLResponse
/// and RelayState back here with a marker; that POST is same-site and carries the cookie. Only
/// a marked POST that still lacks the cookie is refused (`cookie_missing`), so there is no loop.
fn same_site_resubmit(
    cid: &str,
    acs_url: &str,
    saml_response: &str,
    relay_state: &str,
) -> Result<Response, PageError> {
    let page = SamlResubmitPage {
        acs_url,
        saml_response,
        relay_state,
        marker: RESUBMIT_FIELD,
    };
    let mut resp = render_page(&page, StatusCode::OK, cid)?;
    tracing::info!(correlation_id = %cid, "binding cookie withheld on the IdP's POST: same-site resubmit");
    resp.headers_mut()
        .insert("x-acs-step", HeaderValue::from_static("same-site-resubmit"));
    Ok(resp)
}

fn browser_refusal(
    state: &AppState,
    cid: &str,
    conn_id: Option<&str>,
    kind: &'static str,
    message: &'static str,
    log: &'static str,
) -> PageError {
    state.audit.record(
        cid,
        &Event::LoginRefused {
            connection: conn_id.map(str::to_owned),
            reason: kind.into(),
            detail: log.into(),
        },
    );
    let status = if kind == "cookie_missing" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    PageError::new(status, kind, message, cid).logged(&log)
}

/// IdP-initiated login: remember the verified user for this browser only, and send it to the
/// client's own sign-in start, whose authorize request the bridge then completes at once.
async fn unsolicited_hand_off(
    state: &AppState,
    cid: &str,
    identity: Identity,
    target: &IdpInitiated,
) -> Result<Response, PageError> {
    let record = UnsolicitedLogin {
        identity,
        client_id: target.client_id.clone(),
    };
    let token = record
        .start(state.store.as_ref())
        .await
        .map_err(|e| store_down(cid, &e))?;
    state.audit.record(
        cid,
        &Event::LoginRouted {
            connection: record.identity.connection_id.clone(),
            domain: record.identity.email.domain().to_string(),
        },
    );
    let mut resp = Redirect::to(&target.start_url).into_response();
    // Lax is enough: the browser comes back to /oidc/authorize by top-level GET navigation.
    let secure = if state.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{}={token}; Path=/oidc/authorize; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        UnsolicitedLogin::COOKIE,
        unsolicited::TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}
