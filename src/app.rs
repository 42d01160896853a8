//! Assembling a running bridge from a checked config: keys, store, audit sink, router. Shared by
//! `serve` and the integration tests, so tests run the same wiring production does.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::audit::SharedSink;
use crate::clock::SharedClock;
use crate::config::{KeySettings, RuntimeConfig};
use crate::oidc::provider::keys::{self, SigningKey, SigningKeys};
use crate::provision::{Provisioner, SharedSleeper, TokioSleeper};
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::SharedStore;
use crate::web::{self, AppState};

/// Reads the signing keys; creates a missing one only when the config allows it.
pub fn load_keys(settings: &KeySettings) -> anyhow::Result<SigningKeys> {
    let mut loaded = Vec::new();
    for (i, path) in settings.files.iter().enumerate() {
        if !path.exists() && settings.generate_if_missing && i == 0 {
            write_new_key(path)?;
            tracing::warn!(path = %path.display(), "generated a new signing key (keys.generate_if_missing = true)");
        }
        let pem = std::fs::read(path)
            .with_context(|| format!("keys.files[{i}]: cannot read {}", path.display()))?;
        let key = SigningKey::from_pem(&pem)
            .with_context(|| format!("keys.files[{i}]: {}", path.display()))?;
        loaded.push(key);
    }
    Ok(SigningKeys::new(loaded)?)
}

/// Writes a fresh key with owner-only permissions; refuses to overwrite.
pub fn write_new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let pem = keys::generate_pem()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(&pem)?;
    Ok(())
}

/// Connects the configured store: Redis when a URL is set, else the embedded memory store.
pub async fn open_store(config: &RuntimeConfig, clock: SharedClock) -> anyhow::Result<SharedStore> {
    Ok(match &config.redis {
        Some(r) => Arc::new(
            RedisStore::connect(r.url.expose(), &r.key_prefix)
                .await
                .context("store.redis_url: cannot connect to Redis")?,
        ),
        None => {
            let store = Arc::new(MemoryStore::new(clock));
            spawn_sweeper(store.clone());
            store
        }
    })
}

fn spawn_sweeper(store: Arc<MemoryStore>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            store.sweep();
        }
    });
}

pub async fn build_state(
    config: Arc<RuntimeConfig>,
    clock: SharedClock,
    audit: SharedSink,
) -> anyhow::Result<AppState> {
    build_state_with(config, clock, audit, Arc::new(TokioSleeper)).await
}

/// Like `build_state`, with the sleeper provisioning retries wait on (tests record instead).
pub async fn build_state_with(
    config: Arc<RuntimeConfig>,
    clock: SharedClock,
    audit: SharedSink,
    sleeper: SharedSleeper,
) -> anyhow::Result<AppState> {
    let keys = Arc::new(load_keys(&config.keys)?);
    let store = open_store(&config, clock.clone()).await?;
    let provisioner = Provisioner::new(&config.langfuse, store.clone(), sleeper, clock.clone())
        .context("langfuse: cannot set up the admin API client")?
        .map(Arc::new);
    Ok(AppState::new(
        config,
        store,
        keys,
        clock,
        audit,
        provisioner,
    ))
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, web::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed")
}
