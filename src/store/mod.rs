//! The store contract (DESIGN.md §5): short-lived values with atomic take, put-if-absent,
//! compare-and-delete (locks) and listing a namespace's keys (reconcile).
//! Two implementations with identical behaviour: `memory` (embedded, one instance) and `redis`
//! (shared by every bridge instance). `tests/store_conformance.rs` runs one suite against both.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What a key belongs to; keeps unrelated records from ever colliding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// An authorization request waiting for the user to log in.
    PendingLogin,
    /// A SAML AuthnRequest id → the pending login it belongs to (single use).
    SamlRequest,
    /// An authorization code (keyed by its digest).
    AuthCode,
    /// Marks a redeemed code so a replay can revoke what it issued.
    SpentCode,
    /// An access token for userinfo (keyed by its digest).
    AccessToken,
    /// Assertion ids seen, kept until the assertion expires.
    AssertionReplay,
    /// A user verified by an IdP-initiated SAML login, waiting for the client's own authorize
    /// request (keyed by the digest of the browser's cookie).
    UnsolicitedLogin,
    /// A per-organization lock held while an OWNER's role changes in Langfuse.
    OrgLock,
    /// The last identity and groups seen at login, per `sub`, so reconcile knows whom to visit.
    KnownUser,
}

impl Namespace {
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::PendingLogin => "login",
            Namespace::SamlRequest => "samlreq",
            Namespace::AuthCode => "code",
            Namespace::SpentCode => "spent",
            Namespace::AccessToken => "at",
            Namespace::AssertionReplay => "replay",
            Namespace::UnsolicitedLogin => "idpinit",
            Namespace::OrgLock => "orglock",
            Namespace::KnownUser => "user",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the session store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored record could not be read")]
    Corrupt(#[source] serde_json::Error),
}

/// Byte-level contract both backends implement. TTLs are at least one millisecond.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Stores `value` under `key`, replacing any previous value, for `ttl`.
    async fn put(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// Reads without consuming.
    async fn get(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and deletes in one atomic step: of two concurrent takers, exactly one gets the value.
    async fn take(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores only when no live value exists; `true` when this call stored it.
    async fn put_if_absent(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Removes a value; absent keys are not an error.
    async fn delete(&self, ns: Namespace, key: &str) -> Result<(), StoreError>;
    /// Removes a value only while it still equals `expected` (atomically); `true` when removed.
    /// Releases a lock without ever releasing one that expired and was taken by someone else.
    async fn delete_if_equals(
        &self,
        ns: Namespace,
        key: &str,
        expected: &[u8],
    ) -> Result<bool, StoreError>;
    /// Every live key in a namespace, in no particular order (reconcile walks known users).
    async fn keys(&self, ns: Namespace) -> Result<Vec<String>, StoreError>;
    /// Remaining time to live, `None` when absent (used by tests and diagnostics).
    async fn ttl(&self, ns: Namespace, key: &str) -> Result<Option<Duration>, StoreError>;
    /// A cheap liveness probe for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

pub type SharedStore = Arc<dyn KvStore>;

/// JSON (de)serialisation over the byte contract, so callers deal in typed records.
pub async fn put_json<T: Serialize + Sync>(
    store: &dyn KvStore,
    ns: Namespace,
    key: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(StoreError::Corrupt)?;
    store.put(ns, key, bytes, ttl).await
}

pub async fn get_json<T: DeserializeOwned>(
    store: &dyn KvStore,
    ns: Namespace,
    key: &str,
) -> Result<Option<T>, StoreError> {
    decode(store.get(ns, key).await?)
}

pub async fn take_json<T: DeserializeOwned>(
    store: &dyn KvStore,
    ns: Namespace,
    key: &str,
) -> Result<Option<T>, StoreError> {
    decode(store.take(ns, key).await?)
}

fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(StoreError::Corrupt))
        .transpose()
}
