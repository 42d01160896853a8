//! IdP metadata fetched from a URL: loaded at start (from the cache file when the IdP is
//! unreachable), then refreshed on a schedule and on SIGHUP. A refresh replaces the metadata only
//! when the new document parses, holds a signing certificate and serves the connection's
//! binding; otherwise the last good copy stays in force and the failure is logged.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{MetadataUrl, RuntimeConfig, SamlConnection};
use crate::saml::metadata::IdpMetadata;

/// Largest metadata document accepted (aggregates of one entity are a few tens of KiB).
const MAX_METADATA_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("fetching {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the metadata from {url} was refused: {reason}")]
    Refused { url: String, reason: String },
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap_or_default()
}

/// Fetches, checks and swaps in one connection's metadata. `Ok(true)` when it changed.
pub async fn refresh(
    client: &reqwest::Client,
    conn: &SamlConnection,
    source: &MetadataUrl,
) -> Result<bool, RefreshError> {
    let fetch_err = |reason: String| RefreshError::Fetch {
        url: source.url.clone(),
        reason,
    };
    let resp = client
        .get(&source.url)
        .send()
        .await
        .map_err(|e| fetch_err(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(fetch_err(format!("HTTP {}", resp.status())));
    }
    if resp
        .content_length()
        .is_some_and(|l| l as usize > MAX_METADATA_BYTES)
    {
        return Err(fetch_err("the document is too large".into()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| fetch_err(e.without_url().to_string()))?;
    if body.len() > MAX_METADATA_BYTES {
        return Err(fetch_err("the document is too large".into()));
    }
    let refused = |reason: String| RefreshError::Refused {
        url: source.url.clone(),
        reason,
    };
    let text = std::str::from_utf8(&body).map_err(|_| refused("not UTF-8".into()))?;
    let parsed = IdpMetadata::parse(text).map_err(|e| refused(e.to_string()))?;
    conn.accepts_metadata(&parsed).map_err(refused)?;
    let changed = conn.idp.current().is_none_or(|old| {
        old.signing_certs != parsed.signing_certs
            || old.entity_id != parsed.entity_id
            || old.sso_redirect_url != parsed.sso_redirect_url
            || old.sso_post_url != parsed.sso_post_url
    });
    conn.idp.replace(parsed);
    if let Some(cache) = &source.cache_file {
        // Written beside, then renamed: a crash never leaves a half-written cache.
        let tmp = cache.with_extension("tmp");
        if let Err(e) =
            std::fs::write(&tmp, text.as_bytes()).and_then(|_| std::fs::rename(&tmp, cache))
        {
            tracing::warn!(path = %cache.display(), error = %e, "could not write the IdP metadata cache");
        }
    }
    Ok(changed)
}

/// Refreshes every URL-sourced connection once; returns the failures (logged here too).
pub async fn refresh_all(
    client: &reqwest::Client,
    config: &RuntimeConfig,
) -> Vec<(String, RefreshError)> {
    let mut failures = Vec::new();
    for c in &config.connections {
        let Some(source) = &c.saml.idp_metadata_url else {
            continue;
        };
        match refresh(client, &c.saml, source).await {
            Ok(changed) => tracing::info!(connection = %c.id, changed, "IdP metadata refreshed"),
            Err(e) => {
                tracing::warn!(connection = %c.id, error = %e, "IdP metadata refresh failed; keeping the last good copy");
                failures.push((c.id.clone(), e));
            }
        }
    }
    failures
}

/// At start: every URL-sourced connection must end up with metadata, fetched now or from its
/// cache file; a connection with neither is an error (it could serve no login).
pub async fn initial_load(client: &reqwest::Client, config: &RuntimeConfig) -> anyhow::Result<()> {
    let failures = refresh_all(client, config).await;
    for (id, e) in failures {
        let conn = config.connection(&id).map(|c| &c.saml);
        if conn.and_then(|c| c.idp.current()).is_none() {
            anyhow::bail!("connection {id}: no IdP metadata: {e}, and no cached copy");
        }
    }
    Ok(())
}

/// Refreshes each URL-sourced connection on its schedule, and all of them on SIGHUP.
pub fn spawn(config: Arc<RuntimeConfig>, client: reqwest::Client) {
    for (i, c) in config.connections.iter().enumerate() {
        let Some(source) = c.saml.idp_metadata_url.clone() else {
            continue;
        };
        let (config, client) = (config.clone(), client.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(source.refresh);
            tick.tick().await;
            loop {
                tick.tick().await;
                let conn = &config.connections[i];
                if let Err(e) = refresh(&client, &conn.saml, &source).await {
                    tracing::warn!(connection = %conn.id, error = %e, "IdP metadata refresh failed; keeping the last good copy");
                }
            }
        });
    }
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: refreshing IdP metadata");
            refresh_all(&client, &config).await;
        }
    });
}
