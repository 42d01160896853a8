//! Audit events: typed, one JSON line each, on stdout by default (tracing logs go to stderr, so
//! shippers can split the two) or appended to a file. Never a secret, token or assertion body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::SecondsFormat;

use crate::clock::SharedClock;
use serde::Serialize;

use crate::policy::{Decision, Role};

pub mod metrics;

/// Something the bridge decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    LoginStarted {
        client_id: String,
    },
    LoginRouted {
        connection: String,
        domain: String,
    },
    /// The policy allowed the login; `decision` holds the roles and the rule behind each.
    LoginSucceeded {
        connection: String,
        sub: String,
        email: String,
        groups: Vec<String>,
        decision: Decision,
    },
    /// An IdP-initiated login (already decided and audited at the ACS) reached its client.
    UnsolicitedLoginCompleted {
        connection: String,
        sub: String,
        client_id: String,
    },
    /// The policy refused an authenticated identity.
    LoginDenied {
        connection: String,
        sub: String,
        email: String,
        groups: Vec<String>,
        decision: Decision,
    },
    LoginRefused {
        connection: Option<String>,
        reason: String,
        detail: String,
    },
    TokenIssued {
        client_id: String,
        sub: String,
    },
    TokenRefused {
        client_id: Option<String>,
        error: String,
    },
    CodeReplayRevoked {
        client_id: String,
    },
    /// One provisioning action at login (or reconcile): applied, or refused by a guard.
    ProvisionAction {
        sub: String,
        email: String,
        org: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        action: String,
        from_role: Option<Role>,
        to_role: Option<Role>,
        rule: String,
        reason: String,
        /// "applied" or "refused".
        outcome: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Provisioning an organization failed part-way: what was applied, what was not, and
    /// whether the login went ahead.
    ProvisionFailed {
        sub: String,
        email: String,
        org: String,
        error: String,
        licence_missing: bool,
        applied: Vec<String>,
        not_applied: Vec<String>,
        /// "denied" or "allowed" (the organization's on_error).
        login: String,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    correlation_id: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

pub trait Sink: Send + Sync + 'static {
    fn record(&self, correlation_id: &str, event: &Event);
}

pub type SharedSink = Arc<dyn Sink>;

/// JSON lines to any writer (stdout, a file), stamped by the bridge's `Clock`.
pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
    clock: SharedClock,
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>, clock: SharedClock) -> Self {
        Self {
            out: Mutex::new(out),
            clock,
        }
    }

    pub fn stdout(clock: SharedClock) -> Self {
        Self::new(Box::new(std::io::stdout()), clock)
    }
}

impl Sink for JsonLines {
    fn record(&self, correlation_id: &str, event: &Event) {
        let line = Line {
            time: self
                .clock
                .now()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            correlation_id,
            event,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            tracing::error!(correlation_id, "audit sink write failed");
        }
    }
}

/// Keeps events in memory; for tests.
#[derive(Default)]
pub struct MemorySink {
    pub events: Mutex<Vec<(String, Event)>>,
}

impl Sink for MemorySink {
    fn record(&self, correlation_id: &str, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((correlation_id.to_owned(), event.clone()));
    }
}

#[cfg(test)]
mod json_lines_tests {
    use super::*;
    use chrono::TimeZone;

    /// A shared buffer the test can read after the sink wrote to it.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_json_object_per_line_stamped_by_the_clock() {
        let clock = crate::clock::ManualClock::new(
            chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
        );
        let buf = Buffer::default();
        let sink = JsonLines::new(Box::new(buf.clone()), clock);
        sink.record(
            "cid-1",
            &Event::LoginStarted {
                client_id: "langfuse".into(),
            },
        );
        sink.record(
            "cid-2",
            &Event::TokenIssued {
                client_id: "langfuse".into(),
                sub: "s".into(),
            },
        );
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time"], "2026-12-03T12:00:00.000Z");
        assert_eq!(lines[0]["correlation_id"], "cid-1");
        assert_eq!(lines[0]["event"], "login_started");
        assert_eq!(lines[1]["event"], "token_issued");
    }
}
