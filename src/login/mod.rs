//! The in-flight login, between Langfuse's authorize request and the IdP's answer: the pending
//! record, its binding to the browser that started it, and the identity a login produces.

pub mod identity;
pub mod pending;
pub mod unsolicited;

pub use identity::{subject_id, Identity};
pub use pending::{BrowserBinding, PendingLogin};
pub use unsolicited::UnsolicitedLogin;
