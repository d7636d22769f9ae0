//! `postern serve`: the long-running process. It runs, side by side until SIGTERM:
//!
//! - the built-in LMTP listener (`lmtp`): mail handed in by an MTA goes through core's intake
//!   (`postern_core::intake::Intake`), stored and processed in one transaction before the `250`;
//! - the mailbox watchers (`sources`): IMAP and Microsoft Graph, each handing what it fetches
//!   to the same intake before acknowledging it on the server;
//! - the processing queue: works off what the intake stored for it (a watcher's backlog, and
//!   whatever a crash or a temporary failure left behind);
//! - the outbox worker: sends queued notifications;
//! - the web server (`postern-web`): UI, JSON API, `/health`, `/ready`, `/metrics`; over
//!   HTTPS with `web.tls`, whose certificate and key SIGHUP reads again.
//!
//! With `--gitlab-config` it runs in GitLab companion mode instead (`companion`): the watchers
//! of GitLab's mailboxes and the delivery to GitLab, no LMTP listener and no processing.
//!
//! Shutdown: one `postern_vocab::Shutdown` goes to every task; each finishes the message in hand; the process
//! exits within [`SHUTDOWN_BOUND`] even if a server does not answer.

pub mod companion;
pub mod instances;
mod lmtp;
pub mod sources;
pub mod tokens;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use postern_core::intake::Intake;
use postern_core::queue::{ProcessingQueue, QueueEvent};
use postern_inbox::listener::{Listener, Protocol, Settings};
use postern_inbox::status::SourceStatus;
use postern_vocab::{Shutdown, Stopper};
use postern_web::{WebConfig, WebState};
use tokio::task::JoinSet;

use crate::ServeArgs;
use crate::exit::{CONFIG, Failure, SOFTWARE};
use crate::setup::{Setup, load_config};

/// Where the listener listens without configuration: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2525";
/// Where the web UI listens without configuration: loopback only.
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8080";

/// How long shutdown may take before the process exits regardless: under the 10 s a container
/// runtime (`docker stop`) waits before it kills, so postern's own bound ends it first (systemd
/// would wait 90 s).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(9);

/// Messages the processing queue works on at once.
const PROCESSING_TASKS: usize = 4;

/// Runs until SIGTERM or Ctrl-C, then finishes the message in hand and exits 0.
pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    let setup = Setup::new(load_config(args.config.as_deref())?)?;
    crate::logging::init(setup.config.log.as_ref()).map_err(|e| Failure::new(CONFIG, e))?;
    if let Some(gitlab_config) = args.gitlab_config.as_deref() {
        return companion::run(setup, gitlab_config);
    }
    let listen: SocketAddr = setup
        .config
        .listener
        .as_ref()
        .and_then(|listener| listener.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned())
        .parse()
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("listener.listen: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(SOFTWARE, e))?;
    let code = runtime.block_on(serve(setup, listen));
    // Tasks that did not stop in time (a server that never answered LOGOUT) are dropped here.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// The data directory holds everyone's mail, reply keys and tokens: it and everything in it
/// are made private (0700 / 0600) before anything opens them, with a warning naming what was
/// too open (say, from a start under umask 022 by an earlier version).
pub(super) fn check_data_dir_modes(data_dir: &std::path::Path) -> Result<(), Failure> {
    let repair = crate::setup::secure_data_dir(data_dir).map_err(|e| {
        Failure::new(
            CONFIG,
            anyhow::anyhow!(
                "cannot make the data directory {} private: {e}",
                data_dir.display()
            ),
        )
    })?;
    if let Some(first) = &repair.first {
        tracing::warn!(
            repaired = repair.repaired,
            first = %first.display(),
            "data directory: entries other users could read are now private (0700/0600)"
        );
    }
    if repair.incomplete {
        tracing::warn!(
            checked = repair.checked,
            "data directory: too many entries to check them all at start; the rest were left as found"
        );
    }
    Ok(())
}

/// On a SQLite file, which one serving process uses at a time, ends the leases of earlier runs,
/// so that what a killed run had claimed (mail being sent, messages being delivered to GitLab)
/// is taken over now rather than once those leases expire. On PostgreSQL the other leases may
/// be live instances': they expire by themselves if not.
pub(crate) async fn take_over_earlier_claims(store: &postern_store::Store) {
    if store.backend() != postern_store::Backend::Sqlite {
        return;
    }
    let ended = async {
        let mut tx = store.begin().await?;
        let ended = tx.end_every_lease(postern_store::Timestamp::now()).await?;
        tx.commit().await?;
        Ok::<_, postern_store::StoreError>(ended)
    }
    .await;
    match ended {
        Ok(0) => {}
        Ok(ended) => tracing::info!(
            ended,
            "ended the leases of an earlier run; taking over its claims"
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot end the leases of an earlier run; its claims wait for them to expire")
        }
    }
}

async fn serve(setup: Setup, listen: SocketAddr) -> Result<ExitCode, Failure> {
    let metrics = postern_web::install_metrics_recorder()
        .map_err(|e| Failure::new(SOFTWARE, anyhow::anyhow!("metrics recorder: {e}")))?;
    check_data_dir_modes(&setup.data_dir)?;
    let store = setup.store().await?;
    take_over_earlier_claims(&store).await;
    let processor = Arc::new(setup.processor(store.clone()));
    let sender = setup.outbox_sender(store.clone())?;
    let queue = Arc::new(ProcessingQueue::new(processor.clone(), PROCESSING_TASKS));
    let intake = {
        let queue = queue.clone();
        Arc::new(Intake::processing(processor.clone()).waking(Arc::new(move || queue.wake())))
    };
    let planned = sources::plan(
        &sources::sections(&setup),
        &intake,
        Some(setup.max_message_bytes() as u64),
        &setup.data_dir,
    )?;
    let spool_directory = setup.data_dir.join("spool");
    std::fs::create_dir_all(&spool_directory).map_err(|e| {
        Failure::new(
            SOFTWARE,
            anyhow::anyhow!("cannot create {}: {e}", spool_directory.display()),
        )
    })?;
    let settings = Settings {
        protocol: Protocol::Lmtp,
        limits: postern_inbox::listener::ListenerLimits {
            max_message_size: setup.max_message_bytes(),
            ..Default::default()
        },
        spool_directory,
        ..Settings::default()
    };
    let listener = Listener::bind(listen, settings).await.map_err(|e| {
        Failure::new(
            CONFIG,
            anyhow::anyhow!("cannot listen on {listen} (listener.listen): {e}"),
        )
    })?;
    let bound = listener.local_addr().unwrap_or(listen);
    let lmtp_status = Arc::new(SourceStatus::new("listener", "lmtp", &bound.to_string()));
    lmtp_status.connected();
    let certificate = web_certificate(&setup)?;
    let (web_listener, web_bound) = bind_web(&setup).await?;
    let mut statuses = vec![lmtp_status.clone()];
    statuses.extend(planned.statuses.iter().cloned());
    let web_config = web_config(&setup, web_bound, certificate.is_some())?;
    let web_state = WebState::new(processor.clone(), statuses, web_config).with_metrics(metrics);
    let presence = instances::arbiter(&setup)?;
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        data_dir = %setup.data_dir.display(),
        lmtp = %bound,
        web = %format!("{scheme}://{web_bound}/"),
        outgoing = %match setup.smtp_settings()? {
            Some(smtp) => format!("via {}:{}", smtp.host, smtp.port),
            None => format!("into {}", setup.data_dir.join("outbox").display()),
        },
        incoming_address = %setup.config.incoming_address().unwrap_or_default(),
        "postern started"
    );
    for source in &planned.descriptions {
        tracing::info!(source = %source, "watching mailbox");
    }
    match postern_web::setup_link(&web_state).await {
        // Printed on standard error only, never logged: it is a one-time credential.
        Ok(Some(link)) => eprintln!(
            "postern: no administrator has a password yet; set one at {}",
            link.expose()
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot create the first administrator's setup link"),
    }

    let (stopper, shutdown) = Shutdown::new();
    let mut tasks = JoinSet::new();
    tasks.spawn(listener.run(shutdown.clone(), lmtp::deliverer(intake, lmtp_status)));
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move { sender.run(shutdown).await });
    }
    tasks.spawn(queue.clone().run(shutdown.clone(), log_queue_event));
    let web_state_warnings = web_state.warnings();
    spawn_web(
        &mut tasks,
        web_listener,
        certificate.clone(),
        web_state,
        shutdown.clone(),
    );
    if let Some(arbiter) = presence {
        tasks.spawn(instances::watch(
            arbiter,
            sources::sections(&setup),
            store.backend() == postern_store::Backend::Postgres,
            web_state_warnings,
            shutdown.clone(),
        ));
    }
    planned.spawn(&mut tasks, &shutdown);
    tasks.spawn(crate::memory::trim_when_idle(store.clone(), shutdown));

    wait_for_signal(|| reload_certificate(certificate.as_deref())).await;
    shut_down(stopper, tasks).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The web UI's settings from `web:`: links and cookies follow `external_url` (else
/// `http://<bound address>`, or `https://…` with `web.tls`), and only `trusted_proxies` may
/// name the client.
pub(super) fn web_config(
    setup: &Setup,
    web_bound: SocketAddr,
    tls: bool,
) -> Result<WebConfig, Failure> {
    let web = setup.config.web.as_ref();
    let scheme = if tls { "https" } else { "http" };
    let base_url = setup
        .config
        .external_url()
        .map_err(|e| Failure::new(CONFIG, e))?
        .unwrap_or_else(|| format!("{scheme}://{web_bound}"));
    let mut config = WebConfig::new(&setup.config.instance_name(), &base_url);
    let proxies: &[String] = web.map_or(&[], |web| web.trusted_proxies.as_slice());
    config.trusted_proxies = postern_web::TrustedProxies::parse(proxies)
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("web.trusted_proxies: {e}")))?;
    Ok(config)
}

/// The certificate and key of `web.tls`, loaded (an error names the file and what is wrong).
pub(crate) fn web_certificate(
    setup: &Setup,
) -> Result<Option<Arc<postern_web::ServerCertificate>>, Failure> {
    let Some(tls) = setup.config.web.as_ref().and_then(|web| web.tls.as_ref()) else {
        return Ok(None);
    };
    postern_web::ServerCertificate::load(&tls.certificate, &tls.key)
        .map(|certificate| Some(Arc::new(certificate)))
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("{e}")))
}

/// Runs the web server (over HTTPS with `certificate`) until `shutdown` stops it.
pub(super) fn spawn_web(
    tasks: &mut JoinSet<()>,
    listener: tokio::net::TcpListener,
    certificate: Option<Arc<postern_web::ServerCertificate>>,
    state: WebState,
    shutdown: Shutdown,
) {
    tasks.spawn(async move {
        let stopped = shutdown.into_stopped();
        let served = match certificate {
            Some(certificate) => {
                postern_web::serve_tls(listener, certificate, state, stopped).await
            }
            None => postern_web::serve(listener, state, stopped).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "the web server stopped");
        }
    });
}

/// Binds the web server's address (`web.listen`).
async fn bind_web(setup: &Setup) -> Result<(tokio::net::TcpListener, SocketAddr), Failure> {
    let web_listen = setup
        .config
        .web
        .as_ref()
        .and_then(|web| web.listen.clone())
        .unwrap_or_else(|| DEFAULT_WEB_LISTEN.to_owned());
    let web_listener = tokio::net::TcpListener::bind(&web_listen)
        .await
        .map_err(|e| {
            Failure::new(
                CONFIG,
                anyhow::anyhow!("cannot listen on {web_listen} (web.listen): {e}"),
            )
        })?;
    let web_bound = web_listener
        .local_addr()
        .map_err(|e| Failure::new(SOFTWARE, e))?;
    Ok((web_listener, web_bound))
}

/// Stops every task and waits (at most [`SHUTDOWN_BOUND`]) for each to finish the message in
/// hand.
async fn shut_down(stopper: Stopper, mut tasks: JoinSet<()>) {
    tracing::info!("stopping (finishing the message in hand)");
    stopper.stop();
    let drained = tokio::time::timeout(SHUTDOWN_BOUND, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "some tasks did not stop in time; exiting anyway (nothing unacknowledged is lost)"
        );
        tasks.abort_all();
    }
}

fn log_queue_event(event: QueueEvent) {
    match event {
        QueueEvent::Finished { outcome, elapsed } => {
            crate::memory::message_finished();
            crate::logging::message_finished(&outcome, "queue", "queued", elapsed)
        }
        QueueEvent::Skipped(id) => {
            tracing::debug!(inbound_id = id, "message taken by another worker")
        }
        QueueEvent::Retry { id, reason } => {
            tracing::warn!(inbound_id = id, %reason, "processing failed temporarily; will retry")
        }
    }
}

/// SIGHUP: reads `web.tls`'s certificate and key again. A pair that does not load is logged
/// and the one in use stays; without `web.tls` there is nothing to read.
pub(super) fn reload_certificate(certificate: Option<&postern_web::ServerCertificate>) {
    match certificate {
        Some(certificate) => match certificate.reload() {
            Ok(()) => tracing::info!("SIGHUP: web.tls certificate and key reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: web.tls not reloaded; the certificate in use stays"
            ),
        },
        None => tracing::info!("SIGHUP: nothing to reload (no web.tls)"),
    }
}

/// Waits for SIGTERM or Ctrl-C, calling `on_hangup` at every SIGHUP meanwhile (which would
/// otherwise end the process).
pub(super) async fn wait_for_signal(on_hangup: impl Fn()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut terminate), Ok(mut hangup)) => loop {
                tokio::select! {
                    _ = terminate.recv() => return,
                    _ = tokio::signal::ctrl_c() => return,
                    Some(()) = hangup.recv() => on_hangup(),
                }
            },
            (Ok(mut terminate), Err(_)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = on_hangup;
        let _ = tokio::signal::ctrl_c().await;
    }
}
