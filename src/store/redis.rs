//! Redis store for production and for several bridge instances behind one load balancer.
//! One round trip per operation: `SET PX`, `GETDEL`, `SET NX PX`. Only this file knows `redis`.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{KvStore, Namespace, StoreError};

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects (and keeps reconnecting in the background). `prefix` separates several bridges
    /// sharing one Redis database.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, ns: Namespace, key: &str) -> String {
        format!("{}:{}:{}", self.prefix, ns.as_str(), key)
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

#[async_trait]
impl KvStore for RedisStore {
    async fn put(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(ns, key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn get(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(self.key(ns, key)).await.map_err(unavailable)
    }

    async fn take(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get_del(self.key(ns, key)).await.map_err(unavailable)
    }

    async fn put_if_absent(
        &self,
        ns: Namespace,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(ns, key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    async fn delete(&self, ns: Namespace, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(ns, key))
            .await
            .map_err(unavailable)
    }

    async fn delete_if_equals(
        &self,
        ns: Namespace,
        key: &str,
        expected: &[u8],
    ) -> Result<bool, StoreError> {
        // One script, so the compare and the delete are one atomic step on the server.
        const SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("EVAL")
            .arg(SCRIPT)
            .arg(1)
            .arg(self.key(ns, key))
            .arg(expected)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }

    async fn keys(&self, ns: Namespace) -> Result<Vec<String>, StoreError> {
        // SCAN, never KEYS: it does not block Redis on a large keyspace. Our own keys contain no
        // glob characters, but the prefix is the operator's: escape it.
        let head = format!("{}:{}:", self.prefix, ns.as_str());
        let pattern = format!("{}*", glob_escape(&head));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            out.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&head).map(str::to_owned)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key twice across a rehash.
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn ttl(&self, ns: Namespace, key: &str) -> Result<Option<Duration>, StoreError> {
        let mut conn = self.conn.clone();
        let ms: i64 = conn.pttl(self.key(ns, key)).await.map_err(unavailable)?;
        // -2: no key; -1: no expiry (never written by us, reported as absent-expiry).
        Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
