//! Bounded retries toward Langfuse: jittered exponential backoff on 429, 5xx and connection
//! errors, `Retry-After` honoured. Waiting goes through a `Sleeper` so tests record the delays
//! instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;

#[async_trait]
pub trait Sleeper: Send + Sync + 'static {
    async fn sleep(&self, d: Duration);
}

pub type SharedSleeper = Arc<dyn Sleeper>;

/// Real waiting, on the tokio timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles each retry.
    pub base: Duration,
    /// Ceiling of one backoff.
    pub max_delay: Duration,
    /// A login is waiting: a `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
        }
    }

    /// The wait before retry number `retry` (0-based): full exponential step, jittered into its
    /// upper half so instances that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        let half = step / 2;
        let jitter_ms = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past
/// means "now"; anything unparsable is ignored (backoff applies instead).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let p = RetryPolicy::new(5);
        for retry in 0..8 {
            let step = (p.base * (1 << retry)).min(p.max_delay);
            for _ in 0..50 {
                let d = p.backoff(retry);
                assert!(d >= step / 2 && d <= step, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 12:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
