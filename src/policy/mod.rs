//! Pure access decisions: no I/O, time passed in. This slice holds the address types and
//! domain routing; group → role rules arrive with the access-policy work.

pub mod email;
pub mod routing;

pub use email::{AddressError, Domain, Email};
