//! The one web error type. Its message is the public text; the cause is logged with the
//! correlation id that the page (or the JSON body) also shows. Foreign error text never reaches a
//! response.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::pages::ErrorPage;
use crate::oidc::provider::OAuthError;

/// An error shown to a person, as a page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    pub advice: &'static str,
    /// Stable short name for logs and tests (`x-error-kind` header).
    pub kind: &'static str,
    pub correlation_id: String,
}

impl PageError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
        correlation_id: &str,
    ) -> Self {
        Self {
            status,
            title: if status.is_server_error() {
                "Sign-in is unavailable"
            } else {
                "Sign-in failed"
            },
            message: message.into(),
            advice: if status.is_server_error() {
                "Try again in a minute. If it keeps happening, tell your administrator."
            } else {
                "Go back to Langfuse and start the sign-in again. If it fails again, tell your administrator."
            },
            kind,
            correlation_id: correlation_id.to_owned(),
        }
    }

    pub fn advice(mut self, advice: &'static str) -> Self {
        self.advice = advice;
        self
    }

    /// Logs the internal cause under the correlation id and returns self.
    pub fn logged(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(correlation_id = %self.correlation_id, kind = self.kind, %cause, "request refused");
        self
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.title,
            message: &self.message,
            advice: self.advice,
            correlation_id: &self.correlation_id,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("Sign-in failed. Reference: {}", self.correlation_id));
        let mut resp = (self.status, Html(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-error-kind", HeaderValue::from_static(self.kind));
        resp
    }
}

/// An OAuth error as JSON (token and userinfo endpoints).
pub struct OAuthJson {
    pub status: StatusCode,
    pub error: OAuthError,
    pub www_authenticate: Option<&'static str>,
}

impl IntoResponse for OAuthJson {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error.error, "error_description": self.error.description});
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(v) = self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        resp
    }
}
