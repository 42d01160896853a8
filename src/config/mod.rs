//! Configuration: the strict TOML model (`model`), and its resolution into a checked
//! `RuntimeConfig` that the rest of the bridge trusts. Every error names the key at fault.

mod langfuse;
pub mod langfuse_env;
pub mod model;
pub mod policy;
mod secrets;
mod sp_keys;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::policy::routing::{ConnectionDomains, DomainRule};
use crate::policy::{Domain, Email};
use crate::saml::metadata::{IdpMetadata, SharedIdp};
use crate::saml::presets::{self, AttributeMap};
use crate::saml::sp_keys::{RetiredKey, SpKeyPair};
use crate::secret::Secret;
use model::{ConnectionKind, DomainEntry, FileConfig};
pub use model::{RequestBinding, SignedPart};
pub use policy::{Organization, PolicySettings};
pub use secrets::EnvLookup;

/// A configuration problem, pointing at the key that causes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Something legal but worth an operator's attention; `check` prints these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub key: String,
    pub message: String,
}

#[derive(Debug)]
pub struct RuntimeConfig {
    /// The issuer, exactly as published: no trailing slash.
    pub public_url: String,
    pub listen: SocketAddr,
    /// Cookies get `Secure` when the public URL is https.
    pub cookie_secure: bool,
    pub redis: Option<RedisSettings>,
    pub keys: KeySettings,
    pub tokens: TokenLifetimes,
    pub audit_file: Option<PathBuf>,
    pub clients: Vec<Client>,
    pub connections: Vec<Connection>,
    pub policy: PolicySettings,
    /// The `[langfuse]` admin API settings and each organization's provisioning mode.
    pub langfuse: crate::provision::Settings,
    pub lints: Vec<Lint>,
}

#[derive(Debug)]
pub struct RedisSettings {
    pub url: Secret,
    pub key_prefix: String,
}

#[derive(Debug)]
pub struct KeySettings {
    pub files: Vec<PathBuf>,
    pub generate_if_missing: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub code: Duration,
    pub login: Duration,
    pub id_token: Duration,
    pub access_token: Duration,
}

#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub secret: Secret,
    /// Where the secret came from, so `langfuse-env` can point Langfuse at the same source
    /// without printing the value.
    pub secret_source: SecretSource,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    Inline,
}

impl SecretSource {
    fn of(inline: Option<&str>, file: Option<&Path>) -> Self {
        match (inline, file) {
            (_, Some(f)) => SecretSource::File(f.to_path_buf()),
            (Some(raw), None) => raw
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .filter(|name| !name.contains(['$', '{', '}']))
                .map(|name| SecretSource::Env(name.to_owned()))
                .unwrap_or(SecretSource::Inline),
            (None, None) => SecretSource::Inline,
        }
    }
}

#[derive(Debug)]
pub struct Connection {
    pub id: String,
    pub display_name: String,
    pub domains: Vec<DomainRule>,
    pub enforce_sso: bool,
    pub saml: SamlConnection,
}

impl Connection {
    pub fn routing(&self) -> ConnectionDomains {
        ConnectionDomains {
            connection_id: self.id.clone(),
            domains: self.domains.clone(),
            enforce_sso: self.enforce_sso,
        }
    }
}

#[derive(Debug)]
pub struct SamlConnection {
    pub idp: SharedIdp,
    /// Where the metadata is refreshed from, when it comes from a URL.
    pub idp_metadata_url: Option<MetadataUrl>,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub clock_skew: Duration,
    pub attributes: AttributeMap,
    /// NameIDPolicy Format URI to ask for; None: no Format attribute.
    pub name_id_format: Option<String>,
    pub require_signed: SignedPart,
    pub allow_sha1: bool,
    pub force_authn: bool,
    pub binding: RequestBinding,
    /// Unsolicited responses accepted, and where their users land.
    pub idp_initiated: Option<IdpInitiated>,
    /// Signs AuthnRequests (when `sign_authn_requests`); published with use="signing".
    pub sp_signing: Option<SpKeyPair>,
    /// Decrypts encrypted assertions; published with use="encryption". Without it an encrypted
    /// assertion is refused.
    pub sp_decryption: Option<SpKeyPair>,
    /// Tried after `sp_decryption` (a rollover in progress); never published.
    pub sp_retired_keys: Vec<RetiredKey>,
    pub sign_authn_requests: bool,
    pub require_encrypted: bool,
}

#[derive(Debug, Clone)]
pub struct MetadataUrl {
    pub url: String,
    /// The last good copy is written here, so a restart during an IdP outage still starts.
    pub cache_file: Option<PathBuf>,
    pub refresh: Duration,
}

impl SamlConnection {
    /// Whether `idp` can serve this connection (the configured binding has a sign-in URL);
    /// checked at load and on every refresh, so a bad refresh never replaces a good copy.
    pub fn accepts_metadata(&self, idp: &IdpMetadata) -> Result<(), String> {
        check_binding(self.binding, idp)
    }
}

fn check_binding(binding: RequestBinding, idp: &IdpMetadata) -> Result<(), String> {
    match binding {
        RequestBinding::Post if idp.sso_post_url.is_none() => {
            Err("the IdP metadata has no SingleSignOnService with the HTTP-POST binding".into())
        }
        RequestBinding::Redirect if idp.sso_redirect_url.is_none() => Err(
            "the IdP metadata has no SingleSignOnService with the HTTP-Redirect binding; set binding = \"post\"".into(),
        ),
        _ => Ok(()),
    }
}

/// Where an IdP-initiated login lands: the bridge remembers the verified user briefly and sends
/// the browser to the client's own sign-in start, so the client runs a normal code flow (its
/// own state, nonce and PKCE) that the bridge completes without asking the IdP again.
#[derive(Debug, Clone)]
pub struct IdpInitiated {
    pub client_id: String,
    pub start_url: String,
}

impl RuntimeConfig {
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    pub fn connection(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }
}

/// Reads and resolves a config file. Relative paths inside it are relative to its folder.
pub fn load(path: &Path, env: &EnvLookup) -> Result<RuntimeConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("cannot read the file: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    from_toml(&text, base, env)
}

pub fn from_toml(text: &str, base: &Path, env: &EnvLookup) -> Result<RuntimeConfig, ConfigError> {
    let file: FileConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let at = inner
                .span()
                .map(|s| format!(" (line {})", line_of(text, s.start)))
                .unwrap_or_default();
            let key = if path.is_empty() || path == "." {
                "config".to_owned()
            } else {
                path
            };
            ConfigError::new(format!("{key}{at}"), inner.message().to_owned())
        })?;
    resolve(file, base, env)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn resolve(file: FileConfig, base: &Path, env: &EnvLookup) -> Result<RuntimeConfig, ConfigError> {
    let mut lints = Vec::new();
    let public_url = check_public_url(&file.public_url, &mut lints)?;
    let listen: SocketAddr = file
        .listen
        .parse()
        .map_err(|_| ConfigError::new("listen", "expected an address such as 127.0.0.1:8080"))?;

    let redis = match secrets::optional(
        "store.redis_url",
        file.store.redis_url.as_deref(),
        file.store.redis_url_file.as_deref(),
        base,
        env,
        &mut lints,
    )? {
        Some(url) => Some(RedisSettings {
            url,
            key_prefix: file.store.key_prefix.clone(),
        }),
        None => None,
    };

    if file.keys.files.is_empty() {
        return Err(ConfigError::new(
            "keys.files",
            "name at least one signing key file",
        ));
    }
    if file.keys.generate_if_missing {
        lints.push(Lint {
            key: "keys.generate_if_missing".into(),
            message: "keys are created on start; several instances must share one key file, so production configs set this to false".into(),
        });
    }
    let keys = KeySettings {
        files: file.keys.files.iter().map(|p| base.join(p)).collect(),
        generate_if_missing: file.keys.generate_if_missing,
    };

    let t = &file.tokens;
    for (key, v, max) in [
        ("tokens.code_ttl_secs", t.code_ttl_secs, 600),
        ("tokens.login_ttl_secs", t.login_ttl_secs, 3600),
        ("tokens.id_token_ttl_secs", t.id_token_ttl_secs, 86_400),
        (
            "tokens.access_token_ttl_secs",
            t.access_token_ttl_secs,
            86_400,
        ),
    ] {
        if v == 0 || v > max {
            return Err(ConfigError::new(
                key,
                format!("must be between 1 and {max} seconds"),
            ));
        }
    }
    let tokens = TokenLifetimes {
        code: Duration::from_secs(t.code_ttl_secs),
        login: Duration::from_secs(t.login_ttl_secs),
        id_token: Duration::from_secs(t.id_token_ttl_secs),
        access_token: Duration::from_secs(t.access_token_ttl_secs),
    };

    let clients = resolve_clients(&file, base, env, &mut lints)?;
    let connections = resolve_connections(&file, &public_url, base, &clients, &mut lints)?;
    let policy = policy::resolve(
        &file.policy,
        &file.langfuse,
        &file.rules,
        &connections,
        &mut lints,
    )?;

    let langfuse = langfuse::resolve(&file.langfuse, base, env, &mut lints)?;

    let audit_file = file
        .audit
        .file
        .as_ref()
        .filter(|p| p.as_os_str() != "-")
        .map(|p| base.join(p));

    Ok(RuntimeConfig {
        cookie_secure: public_url.starts_with("https://"),
        public_url,
        listen,
        redis,
        keys,
        tokens,
        audit_file,
        clients,
        connections,
        policy,
        langfuse,
        lints,
    })
}

fn check_public_url(raw: &str, lints: &mut Vec<Lint>) -> Result<String, ConfigError> {
    let key = "public_url";
    if raw.ends_with('/') {
        return Err(ConfigError::new(
            key,
            "must not end with '/': it is the OIDC issuer, and Langfuse compares it byte for byte (write AUTH_CUSTOM_ISSUER without the slash too)",
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| ConfigError::new(key, format!("not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must have no query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" => lints.push(Lint {
            key: key.into(),
            message: "is not https: cookies will not be Secure; use http only for local testing"
                .into(),
        }),
        other => {
            return Err(ConfigError::new(
                key,
                format!("scheme {other} is not http(s)"),
            ))
        }
    }
    Ok(raw.to_owned())
}

fn resolve_clients(
    file: &FileConfig,
    base: &Path,
    env: &EnvLookup,
    lints: &mut Vec<Lint>,
) -> Result<Vec<Client>, ConfigError> {
    let mut clients: Vec<Client> = Vec::new();
    for (i, c) in file.clients.iter().enumerate() {
        let key = format!("clients[{i}]");
        if c.id.is_empty() || clients.iter().any(|o| o.id == c.id) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                "must be non-empty and unique",
            ));
        }
        let secret = secrets::required(
            &format!("{key}.secret"),
            c.secret.as_deref(),
            c.secret_file.as_deref(),
            base,
            env,
            lints,
        )?;
        if secret.expose().len() < 16 {
            return Err(ConfigError::new(
                format!("{key}.secret"),
                "must be at least 16 characters",
            ));
        }
        if c.redirect_uris.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.redirect_uris"),
                "list at least one",
            ));
        }
        for (j, uri) in c.redirect_uris.iter().enumerate() {
            let parsed = url::Url::parse(uri).map_err(|e| {
                ConfigError::new(
                    format!("{key}.redirect_uris[{j}]"),
                    format!("not a URL: {e}"),
                )
            })?;
            if parsed.fragment().is_some() || !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::new(
                    format!("{key}.redirect_uris[{j}]"),
                    "must be an http(s) URL without a fragment",
                ));
            }
        }
        clients.push(Client {
            id: c.id.clone(),
            secret,
            secret_source: SecretSource::of(c.secret.as_deref(), c.secret_file.as_deref()),
            redirect_uris: c.redirect_uris.clone(),
        });
    }
    Ok(clients)
}

fn resolve_connections(
    file: &FileConfig,
    public_url: &str,
    base: &Path,
    clients: &[Client],
    lints: &mut Vec<Lint>,
) -> Result<Vec<Connection>, ConfigError> {
    let mut out: Vec<Connection> = Vec::new();
    for (i, c) in file.connections.iter().enumerate() {
        let key = format!("connections[{i}]");
        let id_ok = !c.id.is_empty()
            && c.id.len() <= 64
            && c.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ConfigError::new(
                format!("{key}.id"),
                "use 1-64 characters of a-z, 0-9, '-' or '_' (it appears in URLs and in every user's sub)",
            ));
        }
        if out.iter().any(|o| o.id == c.id) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                format!("duplicate id {}", c.id),
            ));
        }
        let mut domains = Vec::new();
        for (j, entry) in c.domains.iter().enumerate() {
            let (raw, include_subdomains) = match entry {
                DomainEntry::Exact(d) => (d, false),
                DomainEntry::Table(t) => (&t.domain, t.include_subdomains),
            };
            let domain = Domain::parse(raw).map_err(|e| {
                ConfigError::new(format!("{key}.domains[{j}]"), format!("{raw:?}: {e}"))
            })?;
            // A domain served by several connections is allowed (the login page lets the user
            // choose, e.g. during an IdP migration), but every one of them may then assert its
            // addresses: worth a look in an access review.
            if let Some(owner) = out
                .iter()
                .find(|o| o.domains.iter().any(|d| d.domain == domain))
            {
                lints.push(Lint {
                    key: format!("{key}.domains[{j}]"),
                    message: format!(
                        "{domain} is also served by connection {}: both identity providers may sign in its users",
                        owner.id
                    ),
                });
            }
            domains.push(DomainRule {
                domain,
                include_subdomains,
            });
        }
        if domains.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.domains"),
                "list the email domains this connection may assert",
            ));
        }
        let saml = match (c.kind, &c.saml) {
            (ConnectionKind::Saml, Some(s)) => {
                resolve_saml(&key, &c.id, s, public_url, base, clients, lints)?
            }
            (ConnectionKind::Saml, None) => {
                return Err(ConfigError::new(
                    format!("{key}.saml"),
                    "a connection of kind \"saml\" needs a [connections.saml] table",
                ))
            }
        };
        out.push(Connection {
            id: c.id.clone(),
            display_name: c.display_name.clone().unwrap_or_else(|| c.id.clone()),
            domains,
            enforce_sso: c.enforce_sso,
            saml,
        });
    }
    Ok(out)
}

fn resolve_saml(
    key: &str,
    id: &str,
    s: &model::SamlSection,
    public_url: &str,
    base: &Path,
    clients: &[Client],
    lints: &mut Vec<Lint>,
) -> Result<SamlConnection, ConfigError> {
    let meta_key = format!("{key}.saml.idp_metadata_file");
    let url_key = format!("{key}.saml.idp_metadata_url");
    let idp_metadata_url = match &s.idp_metadata_url {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|e| ConfigError::new(&url_key, format!("not a URL: {e}")))?;
            match parsed.scheme() {
                "https" => {}
                "http" => lints.push(Lint {
                    key: url_key.clone(),
                    message:
                        "is not https: anyone on the path could swap the IdP's signing certificate"
                            .into(),
                }),
                other => {
                    return Err(ConfigError::new(
                        &url_key,
                        format!("scheme {other} is not http(s)"),
                    ))
                }
            }
            if !(60..=7 * 86_400).contains(&s.metadata_refresh_secs) {
                return Err(ConfigError::new(
                    format!("{key}.saml.metadata_refresh_secs"),
                    "must be between 60 and 604800 seconds",
                ));
            }
            Some(MetadataUrl {
                url: u.clone(),
                cache_file: s.idp_metadata_file.as_ref().map(|p| base.join(p)),
                refresh: Duration::from_secs(s.metadata_refresh_secs),
            })
        }
    };
    let idp = match (&s.idp_metadata_file, &idp_metadata_url) {
        (None, None) => {
            return Err(ConfigError::new(
                &meta_key,
                "set idp_metadata_file, or idp_metadata_url (optionally with idp_metadata_file as its cache)",
            ))
        }
        (Some(file), source) => {
            let path = base.join(file);
            match std::fs::read_to_string(&path) {
                Ok(xml) => Some(IdpMetadata::parse(&xml).map_err(|e| ConfigError::new(&meta_key, e.to_string()))?),
                // A URL-sourced connection may start without its cache; it is fetched at start.
                Err(_) if source.is_some() => None,
                Err(e) => {
                    return Err(ConfigError::new(&meta_key, format!("cannot read {}: {e}", path.display())))
                }
            }
        }
        (None, Some(_)) => None,
    };
    if s.clock_skew_secs > 300 {
        return Err(ConfigError::new(
            format!("{key}.saml.clock_skew_secs"),
            "at most 300 seconds; fix the clocks instead",
        ));
    }
    let preset = match s.preset {
        Some(p) => presets::defaults(p.as_str()).unwrap_or(presets::GENERIC),
        None => presets::GENERIC,
    };
    let a = &s.attributes;
    let pick = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_owned());
    let attributes = AttributeMap {
        email: pick(&a.email, preset.email),
        name: pick(&a.name, preset.name),
        groups: pick(&a.groups, preset.groups),
        groups_delimiter: a.groups_delimiter.clone().filter(|d| !d.is_empty()),
        subject: a.subject.clone().or(preset.subject.map(str::to_owned)),
    };
    let name_id_format = s
        .name_id_format
        .map(|f| f.uri().to_owned())
        .or(preset.name_id_format.map(str::to_owned));
    let nameid_key = format!("{key}.saml.name_id_format");
    if s.name_id_format == Some(model::NameIdFormat::Transient) && attributes.subject.is_none() {
        return Err(ConfigError::new(
            nameid_key,
            "a transient NameID changes at every login: set attributes.subject to the attribute that identifies the user",
        ));
    }
    if attributes.subject.is_none() {
        lints.push(Lint {
            key: format!("{key}.saml.attributes.subject"),
            message: "unset: the NameID is the user's identity; it must be persistent (an emailAddress NameID makes a new Langfuse account when the address changes, a transient one is refused)".into(),
        });
    }
    if s.allow_sha1 {
        lints.push(Lint {
            key: format!("{key}.saml.allow_sha1"),
            message: "RSA-SHA1 signatures and SHA-1 digests are accepted from this IdP; switch the IdP to SHA-256 and remove this".into(),
        });
    }
    if let Some(idp) = &idp {
        check_binding(s.binding, idp)
            .map_err(|m| ConfigError::new(format!("{key}.saml.binding"), m))?;
    }
    let idp_initiated = match &s.idp_initiated {
        Some(i) if i.enabled => {
            let ikey = format!("{key}.saml.idp_initiated");
            if !clients.iter().any(|c| c.id == i.client_id) {
                return Err(ConfigError::new(
                    format!("{ikey}.client_id"),
                    format!("no [[clients]] entry has id {:?}", i.client_id),
                ));
            }
            let ok = url::Url::parse(&i.start_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none());
            if !ok {
                return Err(ConfigError::new(
                    format!("{ikey}.start_url"),
                    "must be an http(s) URL without a fragment (for Langfuse: <langfuse>/auth/sign-in)",
                ));
            }
            Some(IdpInitiated {
                client_id: i.client_id.clone(),
                start_url: i.start_url.clone(),
            })
        }
        _ => None,
    };
    let sp = sp_keys::resolve(key, s, base, lints)?;
    let sp_entity_id = s
        .sp_entity_id
        .clone()
        .unwrap_or_else(|| format!("{public_url}/saml/{id}/metadata"));
    Ok(SamlConnection {
        idp: SharedIdp::new(idp),
        idp_metadata_url,
        sp_entity_id,
        acs_url: format!("{public_url}/saml/{id}/acs"),
        clock_skew: Duration::from_secs(s.clock_skew_secs),
        attributes,
        name_id_format,
        require_signed: s.require_signed,
        allow_sha1: s.allow_sha1,
        force_authn: s.force_authn,
        binding: s.binding,
        idp_initiated,
        sp_signing: sp.signing,
        sp_decryption: sp.decryption,
        sp_retired_keys: sp.retired,
        sign_authn_requests: s.sign_authn_requests,
        require_encrypted: s.require_encrypted,
    })
}

/// Convenience for tests and `check`: is this a usable email for routing?
pub fn parse_email(raw: &str) -> Option<Email> {
    Email::parse(raw).ok()
}
