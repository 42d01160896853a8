//! Embedded store for a single bridge instance. Expiry follows the injected `Clock`; expired
//! entries are invisible at once and swept opportunistically so memory stays bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{KvStore, Namespace, StoreError};
use crate::clock::SharedClock;

/// Sweep the whole map once per this many writes.
const SWEEP_EVERY: u64 = 1024;

struct Entry {
    value: Vec<u8>,
    expires_at: DateTime<Utc>,
}

struct Inner {
    entries: HashMap<(Namespace, String), Entry>,
    writes: u64,
}

pub struct MemoryStore {
    clock: SharedClock,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                writes: 0,
            }),
        }
    }

    /// Number of live entries (for tests of the sweep).
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock()
            .entries
            .values()
            .filter(|e| e.expires_at > now)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired entry.
    pub fn sweep(&self) {
        let now = self.clock.now();
        self.lock().entries.retain(|_, e| e.expires_at > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-written (every operation is a
        // single HashMap call), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expiry(&self, ttl: Duration) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::milliseconds(ttl.as_millis().max(1) as i64)
    }

    fn note_write(&self, inner: &mut Inner) {
        inner.writes += 1;
        if inner.writes.is_multiple_of(SWEEP_EVERY) {
            let now = self.clock.now();
            inner.entries.retain(|_, e| e.expires_at > now);
        }
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn put(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let expires_at = self.expiry(ttl);
        let mut inner = self.lock();
        inner
            .entries
            .insert((ns, key.to_owned()), Entry { value, expires_at });
        self.note_write(&mut inner);
        Ok(())
    }

    async fn get(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.clock.now();
        let inner = self.lock();
        Ok(inner
            .entries
            .get(&(ns, key.to_owned()))
            .filter(|e| e.expires_at > now)
            .map(|e| e.value.clone()))
    }

    async fn take(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner
            .entries
            .remove(&(ns, key.to_owned()))
            .filter(|e| e.expires_at > now)
            .map(|e| e.value))
    }

    async fn put_if_absent(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let expires_at = self.expiry(ttl);
        let mut inner = self.lock();
        let k = (ns, key.to_owned());
        if inner.entries.get(&k).is_some_and(|e| e.expires_at > now) {
            return Ok(false);
        }
        inner.entries.insert(k, Entry { value, expires_at });
        self.note_write(&mut inner);
        Ok(true)
    }

    async fn delete(&self, ns: Namespace, key: &str) -> Result<(), StoreError> {
        self.lock().entries.remove(&(ns, key.to_owned()));
        Ok(())
    }

    async fn delete_if_equals(
        &self,
        ns: Namespace,
        key: &str,
        expected: &[u8],
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let k = (ns, key.to_owned());
        let live_match = inner
            .entries
            .get(&k)
            .is_some_and(|e| e.expires_at > now && e.value == expected);
        if live_match {
            inner.entries.remove(&k);
        }
        Ok(live_match)
    }

    async fn keys(&self, ns: Namespace) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .entries
            .iter()
            .filter(|((n, _), e)| *n == ns && e.expires_at > now)
            .map(|((_, k), _)| k.clone())
            .collect())
    }

    async fn ttl(&self, ns: Namespace, key: &str) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now();
        let inner = self.lock();
        Ok(inner
            .entries
            .get(&(ns, key.to_owned()))
            .filter(|e| e.expires_at > now)
            .and_then(|e| (e.expires_at - now).to_std().ok()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
