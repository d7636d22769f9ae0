//! GitLab companion mode (`serve --gitlab-config`, `check --gitlab-config`): postern in
//! mail_room's place. The mailboxes come from GitLab's own configuration; each is watched by the
//! same IMAP/Graph watcher as in standalone mode (its settings made by the one mapping in
//! `sources`), storing every message durably before it is acknowledged on the server; the
//! `postern_gitlab::Deliverer` then hands the stored messages to GitLab (webhook or Sidekiq)
//! and records each only once GitLab accepted it.
//!
//! Nothing is processed here: GitLab processes the mail. There is no LMTP listener either — mail
//! reaches GitLab through its mailboxes, as with mail_room; an MTA handing mail to postern
//! directly belongs to standalone mode. The store, data directory and web server (`/ready`,
//! `/metrics`) still come from postern.yml.
//!
//! On a PostgreSQL store that several instances share, the store's claims (held under leases,
//! see `postern_store::leases`) give each message to one instance. Otherwise, when GitLab's
//! configuration names its Redis, deliveries are arbitrated through it
//! (`postern_gitlab::Arbiter`, with this instance's id kept in the data directory): several
//! companion instances, each with its own store, may watch the same mailboxes and GitLab gets
//! each message once.
//!
//! After a crash: messages the dead process had claimed (at most the deliverer's concurrency)
//! wait for its lease to expire (15 s) before another process delivers them, since on
//! PostgreSQL that other process may be alive. A SQLite store belongs to one process, so there
//! a restart ends the earlier leases and takes those claims over at once (and, in one round
//! with a zero claim timeout before the regular deliverer starts, claims a postern from before
//! leases had left).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use postern_core::intake::Intake;
use postern_gitlab::{
    Arbiter, CheckStatus, Deliverer, DelivererOptions, GitlabMailboxes, WebhookOptions,
    mailbox_type,
};
use postern_web::WebState;

use super::web_config;
use postern_vocab::Shutdown;
use tokio::task::JoinSet;

use super::sources::{self, Section};
use super::{bind_web, reload_certificate, shut_down, spawn_web, wait_for_signal, web_certificate};
use crate::exit::{CONFIG, Failure, SOFTWARE};
use crate::setup::{Setup, runtime};

/// How often the delivery totals are copied into the metrics.
const METRICS_INTERVAL: Duration = Duration::from_secs(2);

/// Reads GitLab's configuration; an unreadable or unusable file is a configuration error (exit
/// 78) naming the file and the key, never a value.
pub fn load(path: &Path) -> Result<GitlabMailboxes, Failure> {
    let config = postern_gitlab::load(path).map_err(|e| Failure::new(CONFIG, e))?;
    if config.active().next().is_none() {
        return Err(Failure::new(
            CONFIG,
            anyhow::anyhow!(
                "{}: no mailbox to watch (incoming_email or service_desk_email enabled, with an address)",
                path.display()
            ),
        ));
    }
    Ok(config)
}

/// The active mailboxes as sections for `sources`: the same settings type postern.yml is read
/// into, so both go through one mapping to watchers.
fn sections(config: &GitlabMailboxes) -> Vec<Section> {
    config
        .active()
        .map(|m| (mailbox_type(m.mailbox), m.mailbox, m.clone()))
        .collect()
}

/// `serve --gitlab-config`: runs until SIGTERM or Ctrl-C.
pub fn run(setup: Setup, gitlab_config: &Path) -> Result<ExitCode, Failure> {
    let config = load(gitlab_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(SOFTWARE, e))?;
    let code = runtime.block_on(serve(setup, gitlab_config, config));
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn serve(
    setup: Setup,
    gitlab_config: &Path,
    config: GitlabMailboxes,
) -> Result<ExitCode, Failure> {
    let routes = postern_gitlab::destinations(&config, &WebhookOptions::default())
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("{}: {e}", gitlab_config.display())))?;
    let metrics = postern_web::install_metrics_recorder()
        .map_err(|e| Failure::new(SOFTWARE, anyhow::anyhow!("metrics recorder: {e}")))?;
    super::check_data_dir_modes(&setup.data_dir)?;
    let store = setup.store().await?;
    super::take_over_earlier_claims(&store).await;
    let destinations: Vec<String> = routes
        .iter()
        .map(|(mailbox, d)| {
            format!(
                "{}: {} {}",
                mailbox_type(*mailbox),
                d.handler(),
                d.describe()
            )
        })
        .collect();
    // A shared store arbitrates already: its claims and leases give each message to one
    // instance, and a dead instance's to another within seconds. Redis' holds (minutes) would
    // only delay that.
    let shared_store = store.backend() == postern_store::Backend::Postgres;
    let arbiter = if shared_store {
        None
    } else {
        arbiter(&setup, &config, gitlab_config)?
    };
    let arbitrated = |deliverer: Deliverer| match &arbiter {
        Some(arbiter) => deliverer.with_arbiter(arbiter.clone()),
        None => deliverer,
    };
    let deliverer = Arc::new(arbitrated(Deliverer::new(
        store.clone(),
        routes,
        DelivererOptions::default(),
    )));
    let recovery = match store.backend() {
        postern_store::Backend::Sqlite => Some(arbitrated(Deliverer::new(
            store.clone(),
            postern_gitlab::destinations(&config, &WebhookOptions::default())
                .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("{e}")))?,
            DelivererOptions {
                claim_timeout: Duration::ZERO,
                ..DelivererOptions::default()
            },
        ))),
        postern_store::Backend::Postgres => None,
    };
    let sections = sections(&config);
    // The web UI needs a processor for its pages; companion mode never runs it on mail.
    let processor = Arc::new(setup.processor(store.clone()));
    // Messages are only stored here, for the deliverer.
    let intake = {
        let deliverer = deliverer.clone();
        Arc::new(
            Intake::storing(
                store.clone(),
                processor.config().quarantine_directory.clone(),
            )
            .waking(Arc::new(move || deliverer.notify())),
        )
    };
    let planned = sources::plan(
        &sections,
        &intake,
        // GitLab refuses what is over its own limit; the watchers keep their default.
        None,
        &setup.data_dir,
    )?;
    let certificate = web_certificate(&setup)?;
    let (web_listener, web_bound) = bind_web(&setup).await?;
    let web_state = WebState::new(
        processor,
        planned.statuses.clone(),
        web_config(&setup, web_bound, certificate.is_some())?,
    )
    .with_metrics(metrics);
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        gitlab_config = %gitlab_config.display(),
        data_dir = %setup.data_dir.display(),
        web = %format!("{scheme}://{web_bound}/"),
        "postern started in GitLab companion mode"
    );
    for source in &planned.descriptions {
        tracing::info!(source = %source, "watching mailbox");
    }
    for destination in &destinations {
        tracing::info!(destination = %destination, "delivering to GitLab");
    }
    match &arbiter {
        Some(arbiter) => tracing::info!(
            instance = arbiter.instance(),
            "arbitrating deliveries with other postern instances through GitLab's Redis"
        ),
        None if shared_store => tracing::info!(
            "deliveries are arbitrated by the shared PostgreSQL store: every instance on it claims each message under a lease"
        ),
        None => tracing::info!(
            "GitLab's configuration names no Redis: deliveries are not arbitrated, so a second postern instance with its own store on these mailboxes would deliver duplicates"
        ),
    }

    let (stopper, shutdown) = Shutdown::new();
    let mut tasks = JoinSet::new();
    {
        let deliverer = deliverer.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Some(recovery) = recovery {
                match recovery.deliver_due().await {
                    Ok(report) if report.delivered + report.retried + report.rejected > 0 => {
                        tracing::info!(?report, "took over what the previous process had left");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot take over earlier claims"),
                }
            }
            deliverer.run(shutdown).await
        });
    }
    tasks.spawn(export_stats(deliverer.clone(), shutdown.clone()));
    let web_state_warnings = web_state.warnings();
    spawn_web(
        &mut tasks,
        web_listener,
        certificate.clone(),
        web_state,
        shutdown.clone(),
    );
    if let Some(arbiter) = arbiter {
        // Deliveries are arbitrated: other instances are only worth a line in the log.
        tasks.spawn(super::instances::watch(
            arbiter,
            sections,
            true,
            web_state_warnings,
            shutdown.clone(),
        ));
    }
    planned.spawn(&mut tasks, &shutdown);

    wait_for_signal(|| reload_certificate(certificate.as_deref())).await;
    shut_down(stopper, tasks).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The arbiter between instances on GitLab's Redis, when GitLab's configuration names it; with
/// this instance's id from the data directory.
fn arbiter(
    setup: &Setup,
    config: &GitlabMailboxes,
    gitlab_config: &Path,
) -> Result<Option<Arc<Arbiter>>, Failure> {
    let Some(redis) = config.arbitration_redis() else {
        return Ok(None);
    };
    let instance = postern_gitlab::instance_id(&setup.data_dir).map_err(|e| {
        Failure::new(
            SOFTWARE,
            anyhow::anyhow!(
                "{}: cannot keep this instance's id: {e}",
                setup.data_dir.display()
            ),
        )
    })?;
    let arbiter = Arbiter::new(redis, &instance)
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("{}: {e}", gitlab_config.display())))?;
    Ok(Some(Arc::new(arbiter)))
}

/// Copies the deliverer's totals into `postern_gitlab_deliveries_total{result}`.
async fn export_stats(deliverer: Arc<Deliverer>, shutdown: Shutdown) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = deliverer.stats();
    loop {
        for (result, value) in [
            ("delivered", stats.delivered.load(Relaxed)),
            ("rejected", stats.rejected.load(Relaxed)),
            ("retried", stats.retried.load(Relaxed)),
            ("elsewhere", stats.elsewhere.load(Relaxed)),
        ] {
            metrics::counter!("postern_gitlab_deliveries_total", "result" => result)
                .absolute(value);
        }
        if shutdown.sleep(METRICS_INTERVAL).await {
            return;
        }
    }
}

/// `check --gitlab-config`: GitLab's check lines, then each mailbox's login. Exit 1 on any
/// failure.
pub fn check(gitlab_config: &Path) -> Result<ExitCode, Failure> {
    println!("Checking Incoming Email ...\n");
    let config = match postern_gitlab::load(gitlab_config) {
        Ok(config) => config,
        Err(e) => {
            println!("GitLab configuration readable? ... no\n  {e}");
            print_fixes(&[format!(
                "Check {} (postern reads gitlab.yml, gitlab.rb or mail_room.yml)",
                gitlab_config.display()
            )]);
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("GitLab configuration readable? ... yes");
    let sections = sections(&config);
    let systemd: Vec<&Path> = postern_gitlab::check::SYSTEMD_DIRS
        .iter()
        .map(Path::new)
        .collect();
    let (lines, logins) = runtime()?.block_on(async {
        let lines = postern_gitlab::check(&config, &systemd, Path::new("/proc")).await;
        let mut logins = Vec::new();
        // GitLab's mailboxes log in with a password or Graph's client credentials: nothing of
        // theirs lives in a data directory.
        for login in sources::checks(sections, Path::new(".")) {
            logins.push(login.await);
        }
        (lines, logins)
    });
    let mut failed = false;
    for line in lines {
        match line.status {
            CheckStatus::Ok => println!("{} ... yes", line.name),
            CheckStatus::Skipped => println!(
                "{} ... skipped ({})",
                line.name,
                line.reason.unwrap_or_default()
            ),
            CheckStatus::Failed => {
                failed = true;
                println!("{} ... no", line.name);
                if let Some(reason) = line.reason {
                    println!("  {reason}");
                }
                print_fixes(&line.fixes);
            }
        }
    }
    for login in logins {
        match login.result {
            Ok(detail) => println!("{} can be read? ... yes ({detail})", login.name),
            Err(reason) => {
                failed = true;
                println!("{} can be read? ... no\n  {reason}", login.name);
                print_fixes(&[
                    "Check the mailbox's host, port, user and password in the GitLab configuration"
                        .to_owned(),
                ]);
            }
        }
    }
    println!("\nChecking Incoming Email ... Finished");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_fixes(fixes: &[String]) {
    if fixes.is_empty() {
        return;
    }
    println!("  Try fixing it:");
    for fix in fixes {
        println!("  {fix}");
    }
    println!("  Please fix the error above and rerun the checks.");
}
