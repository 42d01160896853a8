//! Provisioning at login, in web terms: run the provisioner between the policy decision and the
//! authorization code, write one audit event per action (and one per failed organization, listing
//! what was and was not applied), and turn a failure under `on_error = "deny"` into a page.

use axum::http::StatusCode;

use super::{AppState, PageError};
use crate::audit::Event;
use crate::login::Identity;
use crate::policy::Decision;
use crate::provision::apply::Status;
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
    let sub = identity.sub();
    let email = identity.email.to_string();
    let deny = report.deny_login();
    for org in &report.orgs {
        for r in &org.results {
            let (outcome, detail) = match &r.status {
                Status::Applied => ("applied", None),
                Status::Refused(why) => ("refused", Some(why.clone())),
                // Failed and not attempted actions are listed in the failure event below.
                _ => continue,
            };
            state.audit.record(
                cid,
                &Event::ProvisionAction {
                    sub: sub.clone(),
                    email: email.clone(),
                    org: org.org.clone(),
                    project: r.action.project.clone(),
                    action: r.action.kind.as_str().into(),
                    from_role: r.action.from,
                    to_role: r.action.to,
                    rule: r.action.rule.clone(),
                    reason: r.action.reason.clone(),
                    outcome: outcome.into(),
                    detail,
                },
            );
        }
        if let Some(error) = &org.error {
            tracing::warn!(correlation_id = cid, org = %org.org, %error, "Langfuse provisioning failed");
            state.audit.record(
                cid,
                &Event::ProvisionFailed {
                    sub: sub.clone(),
                    email: email.clone(),
                    org: org.org.clone(),
                    error: error.to_string(),
                    licence_missing: error.licence_missing(),
                    applied: org.applied().map(|r| r.action.describe()).collect(),
                    not_applied: org.not_applied().map(|r| r.action.describe()).collect(),
                    login: if deny { "denied" } else { "allowed" }.into(),
                },
            );
        }
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
