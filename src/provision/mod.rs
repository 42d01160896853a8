//! Just-in-time provisioning into Langfuse (DESIGN.md §3 step 7): the admin API client
//! (`client`, with bounded retries in `retry`), the pure diff of a policy decision against
//! Langfuse's current state (`plan`), applying it with the last-owner guard (`apply`, `lock`),
//! and the offline walk over every known user (`reconcile`). The only module that knows Langfuse
//! URLs. It takes plain inputs — a `Decision`, an `Identity`, the store trait, a sleeper — and
//! returns typed results; the web layer turns those into pages and audit events.

pub mod apply;
pub mod client;
pub mod lock;
pub mod plan;
pub mod reconcile;
pub mod retry;

use std::time::Duration;

use crate::secret::Secret;

pub use apply::{OrgOutcome, Provisioner, Report};
pub use client::ApiError;
pub use plan::{Action, ActionKind};
pub use retry::{SharedSleeper, Sleeper, TokioSleeper};

/// How far the bridge may change an organization's memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Roles travel in the ID token only; Langfuse is not touched.
    Off,
    /// Grant what the rules give; never lower or remove anything.
    Additive,
    /// Make Langfuse match the rules: also lower roles and remove project memberships no rule
    /// grants (never the last OWNER).
    Authoritative,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "additive" => Some(Mode::Additive),
            "authoritative" => Some(Mode::Authoritative),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Additive => "additive",
            Mode::Authoritative => "authoritative",
        }
    }
}

/// What a login does when Langfuse cannot be provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Refuse the login (default): the user would otherwise land with stale roles.
    Deny,
    /// Let the login through with the roles Langfuse already has.
    Allow,
}

/// An organization API key (public + secret), used with HTTP Basic.
#[derive(Debug, Clone)]
pub struct OrgKeys {
    pub public_key: String,
    pub secret_key: Secret,
}

#[derive(Debug, Clone)]
pub struct OrgSettings {
    /// The alias rules use.
    pub id: String,
    pub mode: Mode,
    pub on_error: OnError,
    pub keys: Option<OrgKeys>,
}

/// The checked `[langfuse]` section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Langfuse's base URL (no trailing slash); required once any organization provisions.
    pub url: Option<url::Url>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub organizations: Vec<OrgSettings>,
}

impl Settings {
    /// Whether any organization is provisioned at login.
    pub fn enabled(&self) -> bool {
        self.organizations.iter().any(|o| o.mode != Mode::Off)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(10),
            max_retries: 3,
            organizations: Vec::new(),
        }
    }
}
