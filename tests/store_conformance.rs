//! One behaviour suite for both stores (DESIGN.md §5): the memory store with an injected clock,
//! the Redis store against a real redis-server on a free port. Redis expiry is asserted through
//! PTTL and millisecond TTLs with bounded polling; the memory store expires by its clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sso_bridge::clock::ManualClock;
use sso_bridge::store::memory::MemoryStore;
use sso_bridge::store::redis::RedisStore;
use sso_bridge::store::{KvStore, Namespace};

/// How a backend lets time pass past a TTL.
enum Expiry {
    Clock(Arc<ManualClock>),
    RealTime,
}

impl Expiry {
    async fn pass(&self, store: &dyn KvStore, ns: Namespace, key: &str, ttl: Duration) {
        match self {
            Expiry::Clock(c) => c.advance(ttl + Duration::from_millis(1)),
            Expiry::RealTime => {
                // Bounded polling: the key must be gone within a generous multiple of its TTL.
                let deadline = std::time::Instant::now() + ttl * 40 + Duration::from_secs(2);
                while store.get(ns, key).await.unwrap().is_some() {
                    assert!(std::time::Instant::now() < deadline, "key outlived its TTL");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

async fn suite(store: Arc<dyn KvStore>, expiry: Expiry) {
    let ns = Namespace::PendingLogin;
    let long = Duration::from_secs(60);

    // put / get / overwrite
    store.put(ns, "k1", b"v1".to_vec(), long).await.unwrap();
    assert_eq!(
        store.get(ns, "k1").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    store.put(ns, "k1", b"v2".to_vec(), long).await.unwrap();
    assert_eq!(
        store.get(ns, "k1").await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(store.get(ns, "absent").await.unwrap(), None);

    // namespaces never collide
    assert_eq!(store.get(Namespace::AuthCode, "k1").await.unwrap(), None);

    // ttl reported within bounds
    let ttl = store.ttl(ns, "k1").await.unwrap().expect("ttl");
    assert!(ttl <= long && ttl > Duration::from_secs(50), "ttl {ttl:?}");
    assert_eq!(store.ttl(ns, "absent").await.unwrap(), None);

    // take is single use
    assert_eq!(
        store.take(ns, "k1").await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(store.take(ns, "k1").await.unwrap(), None);
    assert_eq!(store.get(ns, "k1").await.unwrap(), None);

    // concurrent takers: exactly one wins
    store.put(ns, "race", b"x".to_vec(), long).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.take(Namespace::PendingLogin, "race").await.unwrap()
        }));
    }
    let mut winners = 0;
    for h in handles {
        if h.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);

    // put_if_absent
    let rp = Namespace::AssertionReplay;
    assert!(store.put_if_absent(rp, "a1", vec![], long).await.unwrap());
    assert!(!store.put_if_absent(rp, "a1", vec![], long).await.unwrap());
    // concurrent: exactly one stores
    let mut handles = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.put_if_absent(
                Namespace::AssertionReplay,
                "a2",
                vec![],
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        }));
    }
    let mut stored = 0;
    for h in handles {
        if h.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);

    // delete
    store.put(ns, "d", b"1".to_vec(), long).await.unwrap();
    store.delete(ns, "d").await.unwrap();
    assert_eq!(store.get(ns, "d").await.unwrap(), None);
    store.delete(ns, "never-there").await.unwrap();

    // expiry: values vanish, take returns nothing, put_if_absent succeeds again
    let short = Duration::from_millis(50);
    store.put(ns, "e", b"1".to_vec(), short).await.unwrap();
    assert!(store.put_if_absent(rp, "e", vec![], short).await.unwrap());
    let ttl = store
        .ttl(ns, "e")
        .await
        .unwrap()
        .expect("fresh key has a ttl");
    assert!(ttl <= short, "ttl {ttl:?} above what was set");
    expiry.pass(store.as_ref(), ns, "e", short).await;
    assert_eq!(store.get(ns, "e").await.unwrap(), None);
    assert_eq!(store.take(ns, "e").await.unwrap(), None);
    expiry.pass(store.as_ref(), rp, "e", short).await;
    assert!(store.put_if_absent(rp, "e", vec![], long).await.unwrap());

    // delete_if_equals: only the holder's value is removed
    let lk = Namespace::OrgLock;
    assert!(store
        .put_if_absent(lk, "org", b"me".to_vec(), long)
        .await
        .unwrap());
    assert!(!store.delete_if_equals(lk, "org", b"other").await.unwrap());
    assert!(store.get(lk, "org").await.unwrap().is_some());
    assert!(store.delete_if_equals(lk, "org", b"me").await.unwrap());
    assert_eq!(store.get(lk, "org").await.unwrap(), None);
    assert!(!store.delete_if_equals(lk, "org", b"me").await.unwrap());
    // an expired value is never "released" on behalf of its old holder
    store.put(lk, "gone", b"me".to_vec(), short).await.unwrap();
    expiry.pass(store.as_ref(), lk, "gone", short).await;
    assert!(!store.delete_if_equals(lk, "gone", b"me").await.unwrap());

    // keys: every live key of one namespace, nothing of another
    let ku = Namespace::KnownUser;
    for k in ["u1", "u2", "weird*key"] {
        store.put(ku, k, b"{}".to_vec(), long).await.unwrap();
    }
    store.put(ku, "short", b"{}".to_vec(), short).await.unwrap();
    expiry.pass(store.as_ref(), ku, "short", short).await;
    let mut keys = store.keys(ku).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["u1", "u2", "weird*key"]);
    assert!(!store
        .keys(Namespace::AuthCode)
        .await
        .unwrap()
        .iter()
        .any(|k| k == "u1"));

    store.ping().await.unwrap();
}

#[tokio::test]
async fn memory_store_conformance() {
    let clock = ManualClock::new(common::t0());
    let store = Arc::new(MemoryStore::new(clock.clone()));
    suite(store, Expiry::Clock(clock)).await;
}

#[tokio::test]
async fn redis_store_conformance() {
    let redis = common::servers::redis();
    let store = Arc::new(
        RedisStore::connect(&redis.url, "conformance")
            .await
            .unwrap(),
    );
    suite(store, Expiry::RealTime).await;
}

#[tokio::test]
async fn memory_store_sweep_drops_expired_entries() {
    let clock = ManualClock::new(common::t0());
    let store = MemoryStore::new(clock.clone());
    store
        .put(Namespace::AuthCode, "a", vec![1], Duration::from_secs(1))
        .await
        .unwrap();
    store
        .put(Namespace::AuthCode, "b", vec![1], Duration::from_secs(100))
        .await
        .unwrap();
    assert_eq!(store.len(), 2);
    clock.advance(Duration::from_secs(2));
    store.sweep();
    assert_eq!(store.len(), 1);
    assert!(store.get(Namespace::AuthCode, "b").await.unwrap().is_some());
}

#[tokio::test]
async fn redis_store_reports_unavailable_instead_of_panicking() {
    let redis = common::servers::redis();
    let store = RedisStore::connect(&redis.url, "down").await.unwrap();
    drop(redis);
    let err = store.get(Namespace::AuthCode, "x").await;
    assert!(err.is_err(), "a dead Redis must surface as an error");
}
