//! Pure access decisions: no I/O, time passed in. Address types, domain routing and the domain
//! guard, and the group → role rule engine.

pub mod decide;
pub mod email;
pub mod explain;
pub mod role;
pub mod routing;
pub mod rules;

pub use decide::{decide, Decision, Facts};
pub use email::{AddressError, Domain, Email};
pub use role::Role;
