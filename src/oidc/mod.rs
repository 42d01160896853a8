//! OpenID Connect. `provider` is the side Langfuse logs in with; the relying party toward
//! upstream OIDC IdPs arrives with its own issue.

pub mod provider;
