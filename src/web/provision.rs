//! Provisioning at login, in web terms: run the provisioner between the policy decision and the
//! authorization code, write one audit event per action (and one per failed organization, listing
//! what was and was not applied), and turn a failure under `on_error = "deny"` into a page.

use axum::http::StatusCode;

use super::{AppState, PageError};
use crate::login::Identity;
use crate::policy::Decision;
use crate::provision::reconcile;

pub(super) async fn at_login(
    state: &AppState,
    cid: &str,
    identity: &Identity,
    decision: &Decision,
) -> Result<(), PageError> {
    let Some(provisioner) = &state.provisioner else {
        return Ok(());
    };
    // Remembered even if provisioning fails below, so a later reconcile can fix this user.
    if let Err(e) = reconcile::remember(state.store.as_ref(), identity, state.clock.now()).await {
        tracing::warn!(correlation_id = cid, error = %e, "could not record the user for reconcile");
    }
    let report = provisioner.provision(identity, decision, false).await;
    let deny = report.deny_login();
    for org in report.failed() {
        if let Some(error) = &org.error {
            tracing::warn!(correlation_id = cid, org = %org.org, %error, "Langfuse provisioning failed");
        }
    }
    let login = if deny { "denied" } else { "allowed" };
    for event in report.events(identity, login) {
        state.audit.record(cid, &event);
    }
    if !deny {
        return Ok(());
    }
    let licence = report
        .failed()
        .any(|o| o.error.as_ref().is_some_and(|e| e.licence_missing()));
    let message = if licence {
        "Langfuse provisioning is unavailable: this Langfuse instance has no Enterprise licence, which its admin API needs to set your roles."
    } else {
        "Langfuse provisioning is unavailable: your roles could not be set in Langfuse."
    };
    Err(PageError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "provisioning_unavailable",
        message,
        cid,
    )
    .advice("Try again in a few minutes. If it keeps happening, tell your administrator and quote the reference below.")
    .logged(&"provisioning failed under on_error = deny"))
}
