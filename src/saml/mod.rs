//! SAML 2.0 service provider. One file per step: `request` (AuthnRequest), `acs` (response
//! validation), `decrypt` (encrypted assertions, before `acs` verifies them), `claims` (identity from the verified assertion), `metadata` (IdP metadata in, SP metadata out),
//! `presets` (attribute names per IdP product), `sp_keys` (our key pairs), `signing`
//! (signatures on what we send). No HTTP in here.

pub mod acs;
pub mod claims;
pub mod decrypt;
pub mod metadata;
pub mod presets;
pub mod request;
pub mod signing;
pub mod sp_keys;
pub mod xml;
