//! The provisioning commands of the CLI: `check --online` (each organization key, the licence,
//! the configured projects) and `reconcile [--dry-run]`. Output is for operators: one line per
//! finding or planned change, progress on stderr for long runs.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{JsonLines, SharedSink};
use crate::cli::{fail, load};
use crate::clock::{SharedClock, SystemClock};
use crate::config::RuntimeConfig;
use crate::provision::apply::Status;
use crate::provision::client::Client;
use crate::provision::reconcile::{self, KnownUser};
use crate::provision::retry::RetryPolicy;
use crate::provision::{Provisioner, Report, TokioSleeper};
use crate::store::redis::RedisStore;
use crate::store::SharedStore;

/// Prints one line per organization key; `false` when any failed.
pub(crate) async fn check_online(cfg: &RuntimeConfig) -> bool {
    let with_keys: Vec<_> = cfg
        .langfuse
        .organizations
        .iter()
        .filter_map(|o| o.keys.as_ref().map(|k| (o, k)))
        .collect();
    let Some(url) = cfg.langfuse.url.clone() else {
        if !with_keys.is_empty() {
            eprintln!("error: --online: set langfuse.url to check the organization keys");
            return false;
        }
        println!("online: no [langfuse] url configured; nothing to check");
        return true;
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let client = match Client::new(
        url,
        cfg.langfuse.timeout,
        RetryPolicy::new(cfg.langfuse.max_retries),
        Arc::new(TokioSleeper),
        clock,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let mut ok = true;
    for org in &cfg.langfuse.organizations {
        let Some(keys) = &org.keys else {
            println!(
                "online: langfuse organization {}: no API key configured (provisioning off)",
                org.id
            );
            continue;
        };
        match client.check(keys).await {
            Ok(projects) => {
                println!(
                    "online: langfuse organization {}: key works, Enterprise admin API available, {} project(s)",
                    org.id,
                    projects.len()
                );
                let policy_org = cfg.policy.organizations.iter().find(|o| o.id == org.id);
                for name in policy_org
                    .map(|o| o.projects.as_slice())
                    .unwrap_or_default()
                {
                    if !projects.iter().any(|p| &p.name == name || &p.id == name) {
                        eprintln!(
                            "warning: langfuse.organizations: {}: Langfuse has no project named {name:?}",
                            org.id
                        );
                    }
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("error: langfuse organization {}: {e}", org.id);
            }
        }
    }
    ok
}

pub(crate) async fn reconcile(path: &Path, dry_run: bool, concurrency: usize) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let Some(redis) = &cfg.redis else {
        return fail("reconcile needs the Redis store ([store] redis_url): logins record users there. The embedded memory store lives inside one `serve` process, so there is nothing to reconcile from here.");
    };
    if !cfg.langfuse.enabled() {
        return fail("no [[langfuse.organizations]] has provisioning on: nothing to reconcile");
    }
    let store: SharedStore = match RedisStore::connect(redis.url.expose(), &redis.key_prefix).await
    {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(&format!("store.redis_url: {e}")),
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let provisioner =
        match Provisioner::new(&cfg.langfuse, store.clone(), Arc::new(TokioSleeper), clock) {
            Ok(Some(p)) => Arc::new(p),
            Ok(None) => return fail("provisioning is not configured"),
            Err(e) => return fail(&e.to_string()),
        };
    // Audit events go where `serve` puts them; without a file, to stderr, because stdout
    // carries the plan.
    let audit: SharedSink = match &cfg.audit_file {
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Arc::new(JsonLines::new(Box::new(f), Arc::new(SystemClock))),
            Err(e) => return fail(&format!("audit.file: cannot open {}: {e}", p.display())),
        },
        None => Arc::new(JsonLines::new(
            Box::new(std::io::stderr()),
            Arc::new(SystemClock),
        )),
    };
    let run_id = format!("reconcile-{}", crate::secret::random_token(6));
    let verb = if dry_run { "planned" } else { "applied" };
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let summary = reconcile::run(
        provisioner,
        store,
        Arc::new(cfg.policy.rules.clone()),
        dry_run,
        concurrency,
        |user, report, done, total| {
            print_user(user, report);
            if !dry_run {
                for e in report.events(&user.identity, "reconcile") {
                    audit.record(&run_id, &e);
                }
            }
            if total >= 50 && (last_progress.elapsed() >= Duration::from_secs(5) || done % 100 == 0)
            {
                eprintln!("progress: {done}/{total} users ({:.0?})", started.elapsed());
                last_progress = Instant::now();
            }
        },
    )
    .await;
    match summary {
        Err(e) => fail(&format!("store: {e}")),
        Ok(s) => {
            println!(
                "{} user(s), {} change(s) {verb}, {} user(s) with errors{}",
                s.users,
                s.changes,
                s.failed_users,
                if dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
            if s.failed_users > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn print_user(user: &KnownUser, report: &Report) {
    let who = format!("{} ({})", user.identity.email, user.identity.connection_id);
    if report.changes() == 0 && report.failed().next().is_none() {
        println!("{who}: no changes");
        return;
    }
    println!("{who}:");
    for org in &report.orgs {
        for r in &org.results {
            let status = match &r.status {
                Status::Applied => "applied".to_owned(),
                Status::Planned => "planned".to_owned(),
                Status::Refused(why) => format!("refused: {why}"),
                Status::Failed(why) => format!("failed: {why}"),
                Status::NotAttempted => "not attempted".to_owned(),
            };
            println!("  {}: {} — {status}", org.org, r.action.describe());
        }
        if let Some(e) = &org.error {
            println!("  {}: error: {e}", org.org);
        }
    }
}
