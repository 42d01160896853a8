//! The TOML file as written by the operator. Strict: every struct denies unknown keys, so a typo
//! is an error that names the key, never a silently ignored setting.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Issuer URL; no trailing slash.
    pub public_url: String,
    /// Socket address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub store: StoreSection,
    pub keys: KeysSection,
    #[serde(default)]
    pub tokens: TokensSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub clients: Vec<ClientSection>,
    #[serde(default)]
    pub connections: Vec<ConnectionSection>,
    #[serde(default)]
    pub policy: super::policy::PolicySection,
    #[serde(default)]
    pub langfuse: super::policy::LangfuseSection,
    #[serde(default)]
    pub rules: Vec<super::policy::RuleSection>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Omitted: the embedded in-memory store (one instance only).
    pub redis_url: Option<String>,
    pub redis_url_file: Option<PathBuf>,
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

fn default_prefix() -> String {
    "sso-bridge".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// PEM RSA private keys; the first one signs, all are published in the JWKS.
    pub files: Vec<PathBuf>,
    #[serde(default)]
    pub generate_if_missing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensSection {
    #[serde(default = "d_code")]
    pub code_ttl_secs: u64,
    #[serde(default = "d_login")]
    pub login_ttl_secs: u64,
    #[serde(default = "d_id")]
    pub id_token_ttl_secs: u64,
    #[serde(default = "d_access")]
    pub access_token_ttl_secs: u64,
}

fn d_code() -> u64 {
    60
}
fn d_login() -> u64 {
    600
}
fn d_id() -> u64 {
    300
}
fn d_access() -> u64 {
    3600
}

impl Default for TokensSection {
    fn default() -> Self {
        Self {
            code_ttl_secs: d_code(),
            login_ttl_secs: d_login(),
            id_token_ttl_secs: d_id(),
            access_token_ttl_secs: d_access(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// A file to append JSON lines to; omitted or "-" means stdout.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    pub id: String,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSection {
    /// Stable id: part of every `sub` derived through this connection. Never rename it.
    pub id: String,
    /// What the login page shows; defaults to the id.
    pub display_name: Option<String>,
    pub kind: ConnectionKind,
    /// Exact domains as strings; `{ domain = "...", include_subdomains = true }` also admits
    /// every subdomain (dot-anchored).
    pub domains: Vec<DomainEntry>,
    /// These domains may only log in through their own connection(s), and Langfuse is told to
    /// send them to SSO (`sso-bridge langfuse-env`).
    #[serde(default = "yes")]
    pub enforce_sso: bool,
    pub saml: Option<SamlSection>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DomainEntry {
    Exact(String),
    Table(DomainTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainTable {
    pub domain: String,
    #[serde(default)]
    pub include_subdomains: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Saml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlSection {
    /// The IdP metadata file; with `idp_metadata_url`, the cache of the last good fetch.
    pub idp_metadata_file: Option<PathBuf>,
    /// Fetch the IdP metadata from here at start and every `metadata_refresh_secs`.
    pub idp_metadata_url: Option<String>,
    #[serde(default = "d_refresh")]
    pub metadata_refresh_secs: u64,
    /// Defaults to `<public_url>/saml/<id>/metadata`.
    pub sp_entity_id: Option<String>,
    #[serde(default = "d_skew")]
    pub clock_skew_secs: u64,
    /// The IdP product, which sets the usual attribute names (and NameID format); every name
    /// written under `[attributes]` overrides the preset's.
    pub preset: Option<Preset>,
    #[serde(default)]
    pub attributes: AttributeNames,
    /// The NameID format asked for in the AuthnRequest's NameIDPolicy. Omitted: the preset's,
    /// else none (the IdP uses the format configured for the app).
    pub name_id_format: Option<NameIdFormat>,
    /// Which signature must cover the assertion.
    #[serde(default)]
    pub require_signed: SignedPart,
    /// Accept RSA-SHA1 signatures and SHA-1 digests (legacy ADFS). Off by default.
    #[serde(default)]
    pub allow_sha1: bool,
    /// Ask the IdP to authenticate the user again even with a live IdP session.
    #[serde(default)]
    pub force_authn: bool,
    /// How the AuthnRequest travels to the IdP.
    #[serde(default)]
    pub binding: RequestBinding,
    /// Logins started at the IdP (an app tile). Off when omitted.
    pub idp_initiated: Option<IdpInitiatedSection>,
    /// The SP's RSA private key (PEM, PKCS#1 or PKCS#8) and its certificate: they sign
    /// AuthnRequests and, without a separate encryption pair, decrypt assertions. Several
    /// connections may name the same files.
    pub sp_key_file: Option<PathBuf>,
    pub sp_cert_file: Option<PathBuf>,
    /// A separate pair only for decrypting assertions (published with use="encryption").
    pub sp_encryption_key_file: Option<PathBuf>,
    pub sp_encryption_cert_file: Option<PathBuf>,
    /// Private keys of retired SP certificates: still tried for decryption during a rollover,
    /// never published.
    #[serde(default)]
    pub sp_retired_key_files: Vec<PathBuf>,
    /// Sign AuthnRequests with the SP key (RSA-SHA256). Off by default.
    #[serde(default)]
    pub sign_authn_requests: bool,
    /// Refuse assertions that arrive unencrypted. Off by default; needs a decryption key.
    #[serde(default)]
    pub require_encrypted: bool,
}

fn d_refresh() -> u64 {
    3600
}

fn d_skew() -> u64 {
    120
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Okta,
    Entra,
    Adfs,
    Google,
    Onelogin,
    Jumpcloud,
    Keycloak,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Okta => "okta",
            Preset::Entra => "entra",
            Preset::Adfs => "adfs",
            Preset::Google => "google",
            Preset::Onelogin => "onelogin",
            Preset::Jumpcloud => "jumpcloud",
            Preset::Keycloak => "keycloak",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NameIdFormat {
    #[serde(rename = "persistent")]
    Persistent,
    #[serde(rename = "emailAddress")]
    EmailAddress,
    #[serde(rename = "transient")]
    Transient,
    #[serde(rename = "unspecified")]
    Unspecified,
}

impl NameIdFormat {
    pub fn uri(self) -> &'static str {
        use crate::saml::presets as p;
        match self {
            NameIdFormat::Persistent => p::NAMEID_PERSISTENT,
            NameIdFormat::EmailAddress => p::NAMEID_EMAIL,
            NameIdFormat::Transient => p::NAMEID_TRANSIENT,
            NameIdFormat::Unspecified => p::NAMEID_UNSPECIFIED,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignedPart {
    Assertion,
    Response,
    /// Either signature, as long as one covers the assertion.
    #[default]
    Either,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestBinding {
    #[default]
    Redirect,
    Post,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpInitiatedSection {
    #[serde(default)]
    pub enabled: bool,
    /// The client the user lands in (a `[[clients]]` id).
    pub client_id: String,
    /// Where the browser is sent to start that client's own sign-in (for Langfuse
    /// `<langfuse>/auth/sign-in`); the client's authorize request then completes at once.
    pub start_url: String,
}

/// SAML attribute names, matched on `Name` only (never `FriendlyName`). Each one omitted takes
/// the preset's value, else the generic default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeNames {
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Option<String>,
    /// Groups sent as one delimited string (e.g. ","); values are split and trimmed.
    pub groups_delimiter: Option<String>,
    /// Read the IdP subject from this attribute instead of the NameID (required when the IdP
    /// sends transient NameIDs).
    pub subject: Option<String>,
}
