//! `postern admin message …`: the inbound log.

use clap::Subcommand;
use postern_core::ProcessError;
use postern_store::{InboundFilter, InboundMeta, InboundState, Store, Tx};

use super::{Output, read, usage_error};
use crate::exit::{Failure, SOFTWARE, TEMPORARY};
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List received messages, newest first, with their outcome.
    List {
        /// Only this state: received, processing, processed, rejected, ignored, failed_temporary,
        /// quarantined.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one message's record; with --raw print its raw bytes exactly as received.
    Show {
        /// The message id.
        id: i64,
        /// Print the raw message instead.
        #[arg(long)]
        raw: bool,
    },
    /// Process stored messages again (after fixing a user, a project or a setting); a
    /// quarantined message is released back into processing.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "quarantined"])))]
    Reprocess {
        /// The message ids.
        ids: Vec<i64>,
        /// Every quarantined message, oldest first.
        #[arg(long)]
        quarantined: bool,
    },
}

pub async fn run(store: &Store, setup: &Setup, command: MessageCommand) -> Result<Output, Failure> {
    match command {
        MessageCommand::List { state, limit } => {
            let filter = |state: Option<InboundState>, limit| InboundFilter {
                state,
                limit,
                ..InboundFilter::default()
            };
            super::list(
                store,
                (state, limit),
                filter,
                Tx::list_inbound,
                message_line,
            )
            .await
        }
        MessageCommand::Show { id, raw } => {
            let message = read(store, async |tx| tx.inbound(id).await)
                .await?
                .ok_or_else(|| usage_error(format!("no message {id}")))?;
            if raw {
                return Ok(Output::raw(message.raw));
            }
            let meta = &message.meta;
            let human = format!(
                "message {id}: {} via {} into {}\n  received: {}\n  message-id: {}\n  state: {}\n  handler: {}\n  error: {}\n  reason: {}\n  size: {} bytes\n",
                meta.state.as_str(),
                meta.source.as_str(),
                meta.mailbox.as_str(),
                meta.received_at,
                meta.message_id.as_deref().unwrap_or("-"),
                meta.state.as_str(),
                meta.handler.map_or("-", |handler| handler.as_str()),
                meta.error_kind.map_or("-", |kind| kind.as_str()),
                meta.reason.as_deref().unwrap_or("-"),
                meta.size
            );
            Output::new(&message, human)
        }
        MessageCommand::Reprocess { ids, quarantined } => {
            let ids = if quarantined {
                quarantined_ids(store).await?
            } else {
                ids
            };
            let processor = setup.processor(store.clone());
            let mut outcomes = Vec::with_capacity(ids.len());
            let mut human = String::new();
            for id in ids {
                match processor.reprocess(id).await {
                    Ok(Some(outcome)) => {
                        human.push_str(&format!(
                            "message {id}: {}{}\n",
                            outcome.outcome,
                            outcome.error.map(|e| format!(" ({e})")).unwrap_or_default()
                        ));
                        outcomes.push(outcome);
                    }
                    Ok(None) => return Err(usage_error(format!("no message {id}"))),
                    Err(ProcessError::Temporary(reason)) => {
                        return Err(Failure::new(
                            TEMPORARY,
                            anyhow::anyhow!("temporary failure at message {id}: {reason}"),
                        ));
                    }
                    Err(other) => return Err(Failure::new(SOFTWARE, other)),
                }
            }
            // One message: its outcome as before; several: the list.
            match <[_; 1]>::try_from(outcomes) {
                Ok([outcome]) => Output::new(&outcome, human),
                Err(outcomes) => Output::new(&outcomes, human),
            }
        }
    }
}

/// Every quarantined message, oldest first (paged, so a long list is read in bounded steps).
async fn quarantined_ids(store: &Store) -> Result<Vec<i64>, Failure> {
    let mut ids = Vec::new();
    let mut before_id = None;
    loop {
        let filter = InboundFilter {
            state: Some(InboundState::Quarantined),
            before_id,
            limit: 1000,
            ..InboundFilter::default()
        };
        let page = read(store, async |tx| tx.list_inbound(&filter).await).await?;
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        ids.extend(page.iter().map(|m| m.id));
    }
    ids.reverse();
    Ok(ids)
}

/// A message's line in `message list`.
fn message_line(m: &InboundMeta) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        m.id,
        m.received_at,
        m.state.as_str(),
        m.handler.map_or("-", |handler| handler.as_str()),
        m.error_kind.map_or("-", |kind| kind.as_str()),
        m.message_id.as_deref().unwrap_or("-"),
        one_line(m.reason.as_deref().unwrap_or("-"))
    )
}

/// `text` on one line, at most 100 characters, for a tab-separated listing.
fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(100)
        .collect();
    line
}
