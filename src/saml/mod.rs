//! SAML 2.0 service provider. One file per step: `request` (AuthnRequest), `acs` (response
//! validation), `metadata` (IdP metadata in, SP metadata out). No HTTP in here.

pub mod acs;
pub mod metadata;
pub mod request;
pub mod xml;
