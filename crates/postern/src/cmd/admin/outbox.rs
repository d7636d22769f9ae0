//! `postern admin outbox …`: mail postern has queued — notifications, reject notices, Service
//! Desk mail — and sending what is due.

use clap::Subcommand;
use postern_store::{OutboxFilter, OutboxMail, OutboxState, Store, Tx};

use super::{Output, read, usage_error};
use crate::exit::{Failure, TEMPORARY};
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued and sent mail, newest first.
    List {
        /// Only this state: queued, sent or failed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one mail's record; with --raw print the message exactly as it is sent.
    Show {
        /// The outbox id.
        id: i64,
        /// Print the raw message instead.
        #[arg(long)]
        raw: bool,
    },
    /// Send the mail that is due now, through the configured SMTP relay (or into
    /// `<data_dir>/outbox/` when none is configured), and say what happened.
    Send {
        /// At most this many mails.
        #[arg(long, default_value_t = 500)]
        limit: i64,
    },
}

pub async fn run(store: &Store, setup: &Setup, command: OutboxCommand) -> Result<Output, Failure> {
    match command {
        OutboxCommand::List { state, limit } => {
            let filter = |state: Option<OutboxState>, limit| OutboxFilter {
                state,
                limit,
                ..OutboxFilter::default()
            };
            super::list(store, (state, limit), filter, Tx::list_outbox, mail_line).await
        }
        OutboxCommand::Show { id, raw } => {
            let (mail, bytes) = read(store, async |tx| {
                Ok((tx.outbox_mail(id).await?, tx.outbox_raw(id).await?))
            })
            .await?;
            let mail = mail.ok_or_else(|| usage_error(format!("no outbox mail {id}")))?;
            if raw {
                return Ok(Output::raw(bytes.unwrap_or_default()));
            }
            let human = format!(
                "outbox {id}: {} {} to {}\n  attempts: {}\n  next attempt: {}\n  last error: {}\n",
                mail.kind,
                mail.state.as_str(),
                mail.recipients.join(", "),
                mail.attempts,
                mail.next_attempt_at,
                mail.last_error.as_deref().unwrap_or("-")
            );
            Output::new(&mail, human)
        }
        OutboxCommand::Send { limit } => {
            let sender = setup.outbox_sender(store.clone())?;
            let report = sender
                .deliver_due(limit.clamp(1, 100_000))
                .await
                .map_err(|e| Failure::new(TEMPORARY, anyhow::anyhow!("outbox: {e}")))?;
            let human = format!(
                "sent {}, to retry {}, failed {}, skipped {}\n",
                report.sent, report.retried, report.failed, report.skipped
            );
            let json = serde_json::json!({
                "sent": report.sent,
                "retried": report.retried,
                "failed": report.failed,
                "skipped": report.skipped,
            });
            Output::new(&json, human)
        }
    }
}

/// A mail's line in `outbox list`.
fn mail_line(m: &OutboxMail) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        m.id,
        m.created_at,
        m.state.as_str(),
        m.kind,
        m.recipients.join(","),
        m.last_error.as_deref().unwrap_or("-")
    )
}
