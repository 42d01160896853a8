//! The command line: small subcommands whose doc comments are the help. The only place that
//! reads the environment.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::audit::{JsonLines, SharedSink};
use crate::clock::SystemClock;
use crate::config::{self, RuntimeConfig};

#[derive(Parser)]
#[command(
    name = "sso-bridge",
    version,
    about = "SAML/OIDC single sign-on bridge for self-hosted Langfuse"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge.
    Serve {
        /// Path to the TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Parse and validate a configuration and print its warnings. Exit 1 on an error; with
    /// --strict, exit 2 when there are warnings.
    Check {
        /// Path to the TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Treat warnings as a failure (exit code 2).
        #[arg(long)]
        strict: bool,
        /// Also call Langfuse: verify each organization API key, the Enterprise licence its
        /// admin API needs, and that the projects the config names exist.
        #[arg(long)]
        online: bool,
    },
    /// Recompute every known user's roles from their last login's groups and the current rules,
    /// and apply them to Langfuse (needs the Redis store, where logins record users).
    Reconcile {
        /// Path to the TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Users processed at the same time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Show the access decision for an email and a set of groups, and the rule behind each role.
    Explain {
        /// Path to the TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The user's email address (routes to a connection by its domain).
        #[arg(long)]
        email: String,
        /// The user's groups, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "")]
        groups: Vec<String>,
        /// The connection the login comes through (default: the one the email's domain routes to).
        #[arg(long)]
        connection: Option<String>,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Print the Langfuse environment block (AUTH_CUSTOM_* and SSO enforcement) for this config.
    LangfuseEnv {
        /// Path to the TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The [[clients]] id Langfuse uses (default: the first client).
        #[arg(long)]
        client: Option<String>,
        /// The sign-in button label (default: the connection's display name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Signing-key tools.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new RSA-2048 signing key (PEM, mode 0600); never overwrites.
    Generate {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Check {
            config,
            strict,
            online,
        } => check(&config, strict, online),
        Command::Reconcile {
            config,
            dry_run,
            concurrency,
        } => match runtime() {
            Ok(rt) => rt.block_on(crate::cli_provision::reconcile(
                &config,
                dry_run,
                concurrency,
            )),
            Err(e) => fail(&e),
        },
        Command::Explain {
            config,
            email,
            groups,
            connection,
            json,
        } => explain(&config, &email, &groups, connection.as_deref(), json),
        Command::LangfuseEnv {
            config,
            client,
            name,
        } => match load(&config).and_then(|cfg| {
            config::langfuse_env::render(&cfg, client.as_deref(), name.as_deref())
                .map_err(|e| e.to_string())
        }) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Keys {
            command: KeysCommand::Generate { out },
        } => match crate::app::write_new_key(&out) {
            Ok(()) => {
                eprintln!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e:#}")),
        },
        Command::Serve { config } => {
            let runtime = match runtime() {
                Ok(r) => r,
                Err(e) => return fail(&e),
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("SSO_BRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: in production stderr is a file or a log shipper.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub(crate) fn load(path: &std::path::Path) -> Result<RuntimeConfig, String> {
    config::load(path, &env_lookup).map_err(|e| format!("{}: {e}", path.display()))
}

fn check(path: &std::path::Path, strict: bool, online: bool) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    for lint in &cfg.lints {
        eprintln!("warning: {}: {}", lint.key, lint.message);
    }
    println!(
        "ok: {} client(s), {} connection(s), store: {}",
        cfg.clients.len(),
        cfg.connections.len(),
        if cfg.redis.is_some() {
            "redis"
        } else {
            "embedded memory (one instance only)"
        }
    );
    if cfg.langfuse.enabled() {
        eprintln!("note: provisioning is on, so Langfuse must run with AUTH_CUSTOM_ALLOW_ACCOUNT_LINKING=true: the bridge creates users (SCIM) before their first sign-in, and without linking Langfuse refuses that sign-in (OAuthAccountNotLinked). `sso-bridge langfuse-env` prints it.");
    }
    if online {
        let ok = match runtime() {
            Ok(rt) => rt.block_on(crate::cli_provision::check_online(&cfg)),
            Err(e) => return fail(&e),
        };
        if !ok {
            return ExitCode::FAILURE;
        }
    }
    if strict && !cfg.lints.is_empty() {
        eprintln!("{} warning(s) and --strict: failing", cfg.lints.len());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn explain(
    path: &std::path::Path,
    raw_email: &str,
    groups: &[String],
    connection: Option<&str>,
    json: bool,
) -> ExitCode {
    use crate::policy::routing;
    use crate::policy::{decide, explain, Email, Facts};
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let email = match Email::parse(raw_email) {
        Ok(e) => e,
        Err(e) => return fail(&format!("--email: {e}")),
    };
    let groups: Vec<String> = groups
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    let all: Vec<_> = cfg.connections.iter().map(|c| c.routing()).collect();
    let conn = match connection {
        Some(id) => match all.iter().find(|c| c.connection_id == id) {
            Some(c) => c,
            None => return fail(&format!("--connection: no connection has id {id:?}")),
        },
        None => match routing::connections_for(&all, email.domain()).first() {
            Some(c) => *c,
            None => {
                return fail(&format!(
                    "no connection serves {}; pass --connection to test one",
                    email.domain()
                ))
            }
        },
    };
    let guard = routing::guard(&all, conn, &email);
    let decision = decide(
        &Facts {
            connection: &conn.connection_id,
            groups: &groups,
        },
        &cfg.policy.rules,
    );
    if json {
        let v = serde_json::json!({
            "email": email.as_str(),
            "connection": conn.connection_id,
            "domain_guard": match &guard { Ok(()) => "ok".to_owned(), Err(r) => format!("{r:?}") },
            "allowed": guard.is_ok() && decision.allowed,
            "decision": decision,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let shown = if groups.is_empty() {
        "(none)".to_owned()
    } else {
        groups.join(", ")
    };
    println!(
        "email: {email}\nconnection: {}\ngroups: {shown}",
        conn.connection_id
    );
    match &guard {
        Err(r) => println!(
            "decision: DENIED — domain guard: {r:?} ({} may not assert {} addresses)",
            conn.connection_id,
            email.domain()
        ),
        Ok(()) => print!("{}", explain::render(&decision)),
    }
    ExitCode::SUCCESS
}

async fn serve(path: PathBuf) -> anyhow::Result<()> {
    let cfg = Arc::new(load(&path).map_err(anyhow::Error::msg)?);
    for lint in &cfg.lints {
        tracing::warn!(key = %lint.key, "{}", lint.message);
    }
    let audit: SharedSink = match &cfg.audit_file {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("audit.file: cannot open {}: {e}", p.display()))?;
            Arc::new(JsonLines::new(Box::new(f), Arc::new(SystemClock)))
        }
        None => Arc::new(JsonLines::stdout(Arc::new(SystemClock))),
    };
    let metadata_client = crate::metadata_refresh::http_client();
    crate::metadata_refresh::initial_load(&metadata_client, &cfg).await?;
    crate::metadata_refresh::spawn(cfg.clone(), metadata_client);
    let state = crate::app::build_state(cfg.clone(), Arc::new(SystemClock), audit).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen: cannot bind {}: {e}", cfg.listen))?;
    tracing::info!(
        listen = %cfg.listen,
        issuer = %cfg.public_url,
        store = if cfg.redis.is_some() { "redis" } else { "memory" },
        connections = cfg.connections.len(),
        "sso-bridge ready"
    );
    crate::app::serve(listener, state, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
