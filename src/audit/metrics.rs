//! Prometheus counters derived from the audit stream: every audit event also counts, by kind
//! and (for refusals) reason, so `/metrics` and the audit log can never disagree.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use super::{Event, SharedSink, Sink};

#[derive(Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(String, Option<String>), u64>>,
}

impl Metrics {
    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP sso_bridge_events_total Audit events, by kind and, for refusals, reason.\n# TYPE sso_bridge_events_total counter\n",
        );
        for ((event, reason), n) in counts.iter() {
            match reason {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "sso_bridge_events_total{{event=\"{event}\",reason=\"{}\"}} {n}",
                        escape(r)
                    );
                }
                None => {
                    let _ = writeln!(out, "sso_bridge_events_total{{event=\"{event}\"}} {n}");
                }
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Sink for Metrics {
    fn record(&self, _correlation_id: &str, event: &Event) {
        let Ok(v) = serde_json::to_value(event) else {
            return;
        };
        let name = v["event"].as_str().unwrap_or("unknown").to_owned();
        // Refusal reasons are short, closed sets of kinds; never free text from a request.
        let reason = v["reason"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["decision"]["denial"]["reason"].as_str())
            .map(str::to_owned);
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((name, reason))
            .or_default() += 1;
    }
}

/// Sends every event to several sinks.
pub struct Tee(pub Vec<SharedSink>);

impl Sink for Tee {
    fn record(&self, correlation_id: &str, event: &Event) {
        for s in &self.0 {
            s.record(correlation_id, event);
        }
    }
}

/// Wraps `audit` so its events are also counted; returns the wrapped sink and the counters.
pub fn counted(audit: SharedSink) -> (SharedSink, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    (Arc::new(Tee(vec![audit, metrics.clone()])), metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemorySink;

    #[test]
    fn counts_by_event_and_reason_and_still_forwards() {
        let inner = Arc::new(MemorySink::default());
        let (sink, metrics) = counted(inner.clone());
        let refused = |reason: &str| Event::LoginRefused {
            connection: None,
            reason: reason.into(),
            detail: "d".into(),
        };
        sink.record("c1", &refused("foreign_domain"));
        sink.record("c2", &refused("foreign_domain"));
        sink.record(
            "c3",
            &Event::LoginStarted {
                client_id: "langfuse".into(),
            },
        );
        let text = metrics.render();
        assert!(
            text.contains(
                "sso_bridge_events_total{event=\"login_refused\",reason=\"foreign_domain\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("sso_bridge_events_total{event=\"login_started\"} 1\n"),
            "{text}"
        );
        assert_eq!(inner.events.lock().unwrap().len(), 3);
    }
}
