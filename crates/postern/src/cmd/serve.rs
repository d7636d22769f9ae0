//! `postern serve`: the long-running process. Today it runs the built-in LMTP listener (mail
//! handed in by an MTA or a test goes straight into the processor, acknowledged only after it is
//! stored), the processor, and the outbox worker; the mailbox watchers (IMAP, Microsoft Graph)
//! and the web server arrive with their issues.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use postern_core::{ProcessError, Processor};
use postern_inbox::listener::{DeliverError, Delivery, Listener, Protocol, Settings};
use postern_store::{InboundSource, Mailbox};
use tokio::sync::watch;

use crate::ServeArgs;
use crate::exit::{CONFIG, Failure, SOFTWARE};
use crate::setup::{Setup, load_config};

/// Where the listener listens without configuration: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2525";

/// Runs until SIGTERM or Ctrl-C, then finishes the message in hand and exits 0.
pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    let setup = Setup::new(load_config(args.config.as_deref())?);
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
    runtime.block_on(serve(setup, listen))
}

async fn serve(setup: Setup, listen: SocketAddr) -> Result<ExitCode, Failure> {
    let store = setup.store().await?;
    let processor = Arc::new(setup.processor(store.clone()));
    let sender = setup.outbox_sender(store.clone())?;
    let settings = Settings {
        protocol: Protocol::Lmtp,
        ..Settings::default()
    };
    let listener = Listener::bind(listen, settings).await.map_err(|e| {
        Failure::new(
            CONFIG,
            anyhow::anyhow!("cannot listen on {listen} (listener.listen): {e}"),
        )
    })?;
    let bound = listener.local_addr().unwrap_or(listen);
    eprintln!(
        "postern: data in {}, LMTP listener on {bound}, outgoing mail {}",
        setup.data_dir.display(),
        match setup.smtp_settings()? {
            Some(smtp) => format!("via {}:{}", smtp.host, smtp.port),
            None => format!("into {}", setup.data_dir.join("outbox").display()),
        }
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // Ends when the flag turns true or the sender is gone.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let deliver = {
        let processor = processor.clone();
        move |delivery: Delivery| {
            let processor = processor.clone();
            async move { deliver(&processor, delivery).await }
        }
    };
    let listening = tokio::spawn(listener.run(stopped(stop_rx.clone()), deliver));
    let sending = {
        let rx = stop_rx.clone();
        tokio::spawn(async move { sender.run(stopped(rx)).await })
    };

    wait_for_signal().await;
    eprintln!("postern: stopping (finishing the message in hand)");
    let _ = stop_tx.send(true);
    let _ = listening.await;
    let _ = sending.await;
    store.close().await;
    eprintln!("postern: stopped");
    Ok(ExitCode::SUCCESS)
}

/// One message from the listener: stored and processed in one transaction; only then is it
/// acknowledged. A temporary failure makes the MTA keep the message and retry.
async fn deliver(processor: &Processor, delivery: Delivery) -> Result<(), DeliverError> {
    match processor
        .receive(&delivery.raw, Mailbox::Incoming, InboundSource::Lmtp, None)
        .await
    {
        Ok(outcome) => {
            eprintln!(
                "postern: message {} {}{}",
                outcome.inbound_id,
                outcome.outcome,
                outcome
                    .error
                    .as_deref()
                    .map(|error| format!(" ({error})"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Err(ProcessError::Temporary(reason)) => Err(DeliverError::Temporary(reason)),
        // A bug must not make the MTA bounce the mail: keep it queued there and say why.
        Err(other) => Err(DeliverError::Temporary(other.to_string())),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
