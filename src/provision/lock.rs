//! A per-organization lock in the shared store, held while an OWNER's role changes: Langfuse's
//! organization membership PUT has no last-owner protection (reference §2.1), so two bridge
//! instances could each demote "not the last" owner at the same moment. Holding the lock while
//! re-reading the owners and writing makes that check-then-act one step across instances.

use std::time::Duration;

use super::retry::SharedSleeper;
use crate::secret::random_token;
use crate::store::{KvStore, Namespace, StoreError};

/// Long enough for a re-read and one write with retries; short enough that a crashed holder
/// does not block owner changes for long.
const LEASE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another change to this organization's owners is in progress")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct OrgLock<'a> {
    store: &'a dyn KvStore,
    key: String,
    token: String,
}

impl<'a> OrgLock<'a> {
    /// Waits up to `wait` for the lock on `org`.
    pub async fn acquire(
        store: &'a dyn KvStore,
        sleeper: &SharedSleeper,
        org: &str,
        wait: Duration,
    ) -> Result<OrgLock<'a>, LockError> {
        let token = random_token(16);
        let mut waited = Duration::ZERO;
        loop {
            if store
                .put_if_absent(Namespace::OrgLock, org, token.as_bytes().to_vec(), LEASE)
                .await?
            {
                return Ok(OrgLock {
                    store,
                    key: org.to_owned(),
                    token,
                });
            }
            if waited >= wait {
                return Err(LockError::Busy);
            }
            sleeper.sleep(POLL).await;
            waited += POLL;
        }
    }

    /// Releases the lock if it is still ours (an expired lease may belong to someone else now).
    pub async fn release(self) {
        if let Err(e) = self
            .store
            .delete_if_equals(Namespace::OrgLock, &self.key, self.token.as_bytes())
            .await
        {
            tracing::warn!(org = %self.key, error = %e, "could not release the organization lock; it expires by itself");
        }
    }
}
