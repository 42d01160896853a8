//! The HTTP face of the bridge: one `router()` for everything, thin handlers that turn requests
//! into calls on the protocol modules and their results into pages, redirects or JSON. Only this
//! module knows axum and status codes.

mod error;
mod login;
mod oidc;
mod ops;
mod pages;
mod params;
mod provision;
mod saml;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

pub use error::PageError;

use crate::audit::SharedSink;
use crate::clock::SharedClock;
use crate::config::RuntimeConfig;
use crate::oidc::provider::keys::SigningKeys;
use crate::policy::routing::ConnectionDomains;
use crate::provision::Provisioner;
use crate::secret::random_token;
use crate::store::SharedStore;

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<RuntimeConfig>,
    pub store: SharedStore,
    pub keys: Arc<SigningKeys>,
    pub clock: SharedClock,
    pub audit: SharedSink,
    /// Counters of the audit events, served at `/metrics`.
    pub metrics: Arc<crate::audit::metrics::Metrics>,
    pub routing: Vec<ConnectionDomains>,
    /// Langfuse provisioning at login; `None` when every organization has provisioning off.
    pub provisioner: Option<Arc<Provisioner>>,
    /// Bounds concurrent XML verification on the blocking pool, so a flood of hostile documents
    /// queues instead of exhausting threads.
    pub xml_permits: Arc<Semaphore>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        config: Arc<RuntimeConfig>,
        store: SharedStore,
        keys: Arc<SigningKeys>,
        clock: SharedClock,
        audit: SharedSink,
        provisioner: Option<Arc<Provisioner>>,
    ) -> Self {
        let routing = config.connections.iter().map(|c| c.routing()).collect();
        let (audit, metrics) = crate::audit::metrics::counted(audit);
        Self(Arc::new(Inner {
            config,
            store,
            keys,
            clock,
            audit,
            metrics,
            routing,
            provisioner,
            xml_permits: Arc::new(Semaphore::new(16)),
        }))
    }
}

/// A request's correlation id: in every log line, audit event and error page it causes.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

async fn correlate(mut req: Request, next: Next) -> Response {
    let id = random_token(9);
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let span = tracing::info_span!("request", correlation_id = %id, method = %req.method(), path = %req.uri().path());
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    resp
}

/// Largest form body the ACS accepts (a base64 SAMLResponse plus RelayState).
const ACS_BODY_LIMIT: usize = 1024 * 1024;
/// Every other body.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        // A Langfuse configured with a trailing slash on AUTH_CUSTOM_ISSUER asks for this path.
        .route("//.well-known/openid-configuration", get(oidc::discovery))
        .route("/oidc/jwks", get(oidc::jwks))
        .route("/oidc/authorize", get(oidc::authorize))
        .route("/oidc/token", post(oidc::token))
        .route("/oidc/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/login", get(login::show).post(login::submit))
        .route("/saml/{connection}/metadata", get(saml::metadata))
        .route(
            "/saml/{connection}/acs",
            post(saml::acs).layer(DefaultBodyLimit::max(ACS_BODY_LIMIT)),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(correlate))
        .with_state(state)
}

/// Reads one cookie from the request headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
