//! IdP metadata from a URL: loaded at start (or from its cache when the IdP is down), refreshed
//! for certificate rollover, and never replaced by a failed or unusable fetch.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::get;
use common::saml_idp::{ResponseSpec, TestIdp};
use common::t0;
use sso_bridge::config::{self, RuntimeConfig};
use sso_bridge::metadata_refresh::{self, RefreshError};
use sso_bridge::saml::acs::{self, AcsError};

type Served = Arc<Mutex<(StatusCode, String)>>;

async fn metadata_server(initial: String) -> (String, Served) {
    let served: Served = Arc::new(Mutex::new((StatusCode::OK, initial)));
    let s = served.clone();
    let app = axum::Router::new().route(
        "/idp/metadata",
        get(move || {
            let s = s.clone();
            async move { s.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/idp/metadata", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, served)
}

fn load(dir: &std::path::Path, url: &str) -> Result<RuntimeConfig, config::ConfigError> {
    let toml = format!(
        r#"
public_url = "https://sso.example.com"
[keys]
files = ["k.pem"]
[[connections]]
id = "acme"
kind = "saml"
domains = ["acme.test"]
[connections.saml]
idp_metadata_url = "{url}"
idp_metadata_file = "cache.xml"
metadata_refresh_secs = 60
"#
    );
    config::from_toml(&toml, dir, &|_| None)
}

fn verify_from(cfg: &RuntimeConfig, idp: &TestIdp) -> Result<(), AcsError> {
    let conn = &cfg.connections[0].saml;
    let spec = ResponseSpec::new(&conn.acs_url, &conn.sp_entity_id, "_r", t0());
    acs::verify(idp.response(&spec).as_bytes(), conn, t0()).map(|_| ())
}

#[tokio::test]
async fn metadata_url_loads_rolls_over_and_keeps_the_last_good_copy() {
    let old = TestIdp::new("https://idp.acme.test");
    let new = TestIdp::new("https://idp.acme.test");
    let (url, served) = metadata_server(old.metadata()).await;
    let dir = tempfile::tempdir().unwrap();
    let client = metadata_refresh::http_client();

    // Start: nothing cached yet, so nothing usable until the first fetch.
    let cfg = load(dir.path(), &url).unwrap();
    assert_eq!(
        verify_from(&cfg, &old).unwrap_err(),
        AcsError::MetadataUnavailable
    );
    metadata_refresh::initial_load(&client, &cfg).await.unwrap();
    verify_from(&cfg, &old).unwrap();
    assert!(
        dir.path().join("cache.xml").exists(),
        "the good copy is cached"
    );

    // Rollover: the IdP now publishes only the new certificate.
    *served.lock().unwrap() = (StatusCode::OK, new.metadata());
    let source = cfg.connections[0].saml.idp_metadata_url.clone().unwrap();
    assert!(
        metadata_refresh::refresh(&client, &cfg.connections[0].saml, &source)
            .await
            .unwrap()
    );
    verify_from(&cfg, &new).unwrap();
    assert_eq!(verify_from(&cfg, &old).unwrap_err(), AcsError::Signature);

    // A failing or unusable fetch changes nothing.
    *served.lock().unwrap() = (StatusCode::INTERNAL_SERVER_ERROR, "oops".into());
    let err = metadata_refresh::refresh(&client, &cfg.connections[0].saml, &source)
        .await
        .unwrap_err();
    assert!(matches!(err, RefreshError::Fetch { .. }), "{err}");
    *served.lock().unwrap() = (StatusCode::OK, new.metadata_with_use(Some("encryption")));
    let err = metadata_refresh::refresh(&client, &cfg.connections[0].saml, &source)
        .await
        .unwrap_err();
    assert!(matches!(err, RefreshError::Refused { .. }), "{err}");
    *served.lock().unwrap() = (StatusCode::OK, "<not metadata".into());
    assert!(
        metadata_refresh::refresh(&client, &cfg.connections[0].saml, &source)
            .await
            .is_err()
    );
    verify_from(&cfg, &new).expect("the last good copy is still in force");

    // A restart while the IdP is down starts from the cache; without a cache it refuses to start.
    *served.lock().unwrap() = (StatusCode::SERVICE_UNAVAILABLE, String::new());
    let restarted = load(dir.path(), &url).unwrap();
    metadata_refresh::initial_load(&client, &restarted)
        .await
        .unwrap();
    verify_from(&restarted, &new).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let cold = load(empty.path(), &url).unwrap();
    assert!(metadata_refresh::initial_load(&client, &cold)
        .await
        .is_err());
}

#[test]
fn metadata_source_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = "public_url = \"https://sso.example.com\"\n[keys]\nfiles = [\"k.pem\"]\n[[connections]]\nid = \"acme\"\nkind = \"saml\"\ndomains = [\"acme.test\"]\n[connections.saml]\n";
    let err = config::from_toml(base, dir.path(), &|_| None).unwrap_err();
    assert_eq!(err.key, "connections[0].saml.idp_metadata_file");
    let err = config::from_toml(
        &format!("{base}idp_metadata_url = \"ftp://x\"\n"),
        dir.path(),
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(err.key, "connections[0].saml.idp_metadata_url");
    let err = config::from_toml(
        &format!("{base}idp_metadata_url = \"https://idp.test/m\"\nmetadata_refresh_secs = 5\n"),
        dir.path(),
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(err.key, "connections[0].saml.metadata_refresh_secs");
    let ok = config::from_toml(
        &format!("{base}idp_metadata_url = \"http://idp.test/m\"\n"),
        dir.path(),
        &|_| None,
    )
    .unwrap();
    assert!(
        ok.lints
            .iter()
            .any(|l| l.key == "connections[0].saml.idp_metadata_url"),
        "http is flagged"
    );
}

/// During a rollover the IdP publishes both certificates: responses signed with either verify,
/// and one signed by a third key still does not.
#[test]
fn metadata_with_two_signing_certificates_accepts_either() {
    let old = TestIdp::new("https://idp.acme.test");
    let new = TestIdp::new("https://idp.acme.test");
    let stranger = TestIdp::new("https://idp.acme.test");
    let both = old.metadata().replace(
        "</md:KeyDescriptor>",
        &format!(
            "</md:KeyDescriptor><md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
            new.cert_b64()
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.xml"), both).unwrap();
    let toml = "public_url = \"https://sso.example.com\"\n[keys]\nfiles = [\"k.pem\"]\n[[connections]]\nid = \"acme\"\nkind = \"saml\"\ndomains = [\"acme.test\"]\n[connections.saml]\nidp_metadata_file = \"idp.xml\"\n";
    let cfg = config::from_toml(toml, dir.path(), &|_| None).unwrap();
    assert_eq!(
        cfg.connections[0]
            .saml
            .idp
            .current()
            .unwrap()
            .signing_certs
            .len(),
        2
    );
    verify_from(&cfg, &old).unwrap();
    verify_from(&cfg, &new).unwrap();
    assert_eq!(
        verify_from(&cfg, &stranger).unwrap_err(),
        AcsError::Signature
    );
}
