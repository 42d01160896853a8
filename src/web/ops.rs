//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::error!(cause = %e, "store ping failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
