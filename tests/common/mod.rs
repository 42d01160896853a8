//! Shared test support: a test IdP that signs SAML responses at test time (so time conditions are
//! always valid relative to the test's clock), a bridge running on a real loopback socket with an
//! injected clock and audit sink, and a real `redis-server` on a free port.
#![allow(dead_code)]

pub mod acs_fixture;
pub mod browser;
pub mod flow;
pub mod langfuse_double;
pub mod saml_enc;
pub mod saml_idp;
pub mod servers;
pub mod sp_keys;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use sso_bridge::audit::MemorySink;
use sso_bridge::clock::ManualClock;
use sso_bridge::config::{self, RuntimeConfig};
use sso_bridge::web::AppState;

pub const CLIENT_ID: &str = "langfuse";
/// Contains every character that Basic-auth encoding trips over (field case 009).
pub const CLIENT_SECRET: &str = "Lf+9/q:Zx=w%1-long-enough";
pub const REDIRECT_URI: &str = "https://langfuse.example.com/api/auth/callback/custom";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

/// One SAML connection for a config.
pub struct ConnSpec<'a> {
    pub id: &'a str,
    pub domains: &'a [&'a str],
    pub idp_metadata: String,
    pub extra: &'a str,
}

/// A permissive policy for tests about protocol, not access: everyone gets VIEWER in `acme`.
pub const OPEN_POLICY: &str = r#"
[policy]
unmatched = "grant"
unmatched_org = "acme"
unmatched_role = "VIEWER"
[[langfuse.organizations]]
id = "acme"
projects = ["production", "staging", "analytics"]
"#;

/// Writes metadata files into `dir` and resolves a config with the given connections and
/// `OPEN_POLICY`.
pub fn make_config(
    dir: &Path,
    public_url: &str,
    redis_url: Option<&str>,
    redirect_uris: &[&str],
    conns: &[ConnSpec<'_>],
) -> RuntimeConfig {
    make_config_with(
        dir,
        public_url,
        redis_url,
        redirect_uris,
        conns,
        OPEN_POLICY,
    )
}

/// Like `make_config`, with the given top-level policy TOML (policy, organizations, rules).
pub fn make_config_with(
    dir: &Path,
    public_url: &str,
    redis_url: Option<&str>,
    redirect_uris: &[&str],
    conns: &[ConnSpec<'_>],
    policy_toml: &str,
) -> RuntimeConfig {
    let mut toml = format!(
        "public_url = \"{public_url}\"\nlisten = \"127.0.0.1:0\"\n[keys]\nfiles = [\"signing.pem\"]\ngenerate_if_missing = true\n"
    );
    if let Some(url) = redis_url {
        toml.push_str(&format!(
            "[store]\nredis_url = \"{url}\"\nkey_prefix = \"t-{}\"\n",
            sso_bridge::secret::random_token(6)
        ));
    }
    toml.push_str(&format!(
        "[[clients]]\nid = \"{CLIENT_ID}\"\nsecret = \"${{LF_SECRET}}\"\nredirect_uris = {:?}\n",
        redirect_uris
    ));
    for c in conns {
        let file = format!("{}-idp.xml", c.id);
        std::fs::write(dir.join(&file), &c.idp_metadata).unwrap();
        toml.push_str(&format!(
            "[[connections]]\nid = \"{}\"\nkind = \"saml\"\ndomains = {:?}\n[connections.saml]\nidp_metadata_file = \"{file}\"\n{}\n",
            c.id, c.domains, c.extra
        ));
    }
    toml.push_str(policy_toml);
    let env = |name: &str| (name == "LF_SECRET").then(|| CLIENT_SECRET.to_string());
    config::from_toml(&toml, dir, &env)
        .unwrap_or_else(|e| panic!("test config invalid: {e}\n{toml}"))
}

/// A bridge with one SAML connection `acme` (domain acme.test) trusting `idp`, on the open test
/// policy; Redis when `redis` names one, else the memory store.
pub async fn bridge_for(idp: &saml_idp::TestIdp, redis: Option<&str>) -> Bridge {
    let metadata = idp.metadata();
    Bridge::start(t0(), |dir, base| {
        make_config(
            dir,
            base,
            redis,
            &[REDIRECT_URI],
            &[ConnSpec {
                id: "acme",
                domains: &["acme.test"],
                idp_metadata: metadata,
                extra: "",
            }],
        )
    })
    .await
}

/// A bridge on a real loopback socket, with a clock the test moves and an audit sink it reads.
pub struct Bridge {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub audit: Arc<MemorySink>,
    pub state: AppState,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Bridge {
    /// Starts a bridge whose public URL is its own loopback address. `build` receives the
    /// temp dir and that URL and returns the config.
    pub async fn start(
        clock_start: DateTime<Utc>,
        build: impl FnOnce(&Path, &str) -> RuntimeConfig,
    ) -> Bridge {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Arc::new(build(dir.path(), &base));
        let clock = ManualClock::new(clock_start);
        let audit = Arc::new(MemorySink::default());
        let state = sso_bridge::app::build_state(config, clock.clone(), audit.clone())
            .await
            .expect("bridge state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = sso_bridge::app::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await;
        });
        Bridge {
            base,
            clock,
            audit,
            state,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The audit events recorded so far, as (correlation id, event) pairs.
    pub fn events(&self) -> Vec<(String, sso_bridge::audit::Event)> {
        self.audit.events.lock().unwrap().clone()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP client that keeps cookies and does not follow redirects (tests look at each hop).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on a {} response", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let v = parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    v
}

/// An authorize URL for the test client (code flow, scope openid, PKCE S256 with `challenge`),
/// plus `extra` parameters.
pub fn authorize_url(bridge: &Bridge, challenge: &str, extra: &[(&str, &str)]) -> url::Url {
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    url
}

/// PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = sso_bridge::secret::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}
