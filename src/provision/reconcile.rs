//! Reconcile: the bridge remembers, per user, the last identity and groups it saw at login, so
//! that after a rule change `sso-bridge reconcile` can recompute every known user's decision and
//! apply it (or, with `--dry-run`, print the plan), a bounded number of users at a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::apply::{Provisioner, Report};
use crate::login::Identity;
use crate::policy::rules::RuleSet;
use crate::policy::{decide, Facts};
use crate::store::{get_json, put_json, KvStore, Namespace, SharedStore, StoreError};

/// A user who has not logged in for this long drops out of reconcile.
const KEEP: Duration = Duration::from_secs(400 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownUser {
    pub identity: Identity,
    /// Unix seconds of the login that recorded this.
    pub seen_at: i64,
}

/// Records the identity of a login (keyed by `sub`, so an email change keeps one record).
pub async fn remember(
    store: &dyn KvStore,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let record = KnownUser {
        identity: identity.clone(),
        seen_at: now.timestamp(),
    };
    put_json(store, Namespace::KnownUser, &identity.sub(), &record, KEEP).await
}

/// Every known user, sorted by email for stable output.
pub async fn known_users(store: &dyn KvStore) -> Result<Vec<KnownUser>, StoreError> {
    let mut out = Vec::new();
    for key in store.keys(Namespace::KnownUser).await? {
        // A record that expired between listing and reading is simply skipped.
        if let Some(u) = get_json::<KnownUser>(store, Namespace::KnownUser, &key).await? {
            out.push(u);
        }
    }
    out.sort_by(|a, b| a.identity.email.as_str().cmp(b.identity.email.as_str()));
    Ok(out)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub users: usize,
    /// Actions applied (or planned, in a dry run).
    pub changes: usize,
    /// Users for whom some organization failed.
    pub failed_users: usize,
}

/// Recomputes and applies (or plans) every known user's decision, `concurrency` users at a
/// time; `on_user` sees each user's report in email order (reports that finish early wait for
/// their predecessors), so the printed plan is the same from run to run.
pub async fn run(
    provisioner: Arc<Provisioner>,
    store: SharedStore,
    rules: Arc<RuleSet>,
    dry_run: bool,
    concurrency: usize,
    mut on_user: impl FnMut(&KnownUser, &Report, usize, usize),
) -> Result<Summary, StoreError> {
    let users = known_users(store.as_ref()).await?;
    let total = users.len();
    let mut summary = Summary {
        users: total,
        ..Summary::default()
    };
    let mut pending = users.into_iter().enumerate();
    let mut running = JoinSet::new();
    // Reports by position; `None` for a task that crashed, so later reports still come out.
    let mut finished: std::collections::BTreeMap<usize, Option<(KnownUser, Report)>> =
        Default::default();
    let mut task_index = std::collections::HashMap::new();
    let mut done = 0;
    loop {
        while running.len() < concurrency.max(1) {
            let Some((index, user)) = pending.next() else {
                break;
            };
            let p = provisioner.clone();
            let rules = rules.clone();
            let handle = running.spawn(async move {
                let decision = decide(
                    &Facts {
                        connection: &user.identity.connection_id,
                        groups: &user.identity.groups,
                    },
                    &rules,
                );
                let report = p.provision(&user.identity, &decision, dry_run).await;
                (index, user, report)
            });
            task_index.insert(handle.id(), index);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        match joined {
            Ok((_, (index, user, report))) => {
                summary.changes += report.changes();
                if report.failed().next().is_some() {
                    summary.failed_users += 1;
                }
                finished.insert(index, Some((user, report)));
            }
            Err(e) => {
                summary.failed_users += 1;
                tracing::error!(error = %e, "a reconcile task failed");
                if let Some(index) = task_index.get(&e.id()) {
                    finished.insert(*index, None);
                }
            }
        }
        while let Some(entry) = finished.remove(&done) {
            done += 1;
            if let Some((user, report)) = entry {
                on_user(&user, &report, done, total);
            }
        }
    }
    Ok(summary)
}
