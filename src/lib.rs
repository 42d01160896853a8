//! sso-bridge: a SAML/OIDC identity bridge for self-hosted Langfuse. See DESIGN.md for the
//! architecture; `web` is the only module that knows HTTP.

pub mod app;
pub mod audit;
pub mod cli;
mod cli_provision;
pub mod clock;
pub mod config;
pub mod login;
pub mod metadata_refresh;
pub mod oidc;
pub mod policy;
pub mod provision;
pub mod saml;
pub mod secret;
pub mod store;
pub mod web;
