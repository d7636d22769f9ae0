//! `postern admin message …`: the inbound log.

use clap::Subcommand;
use postern_core::ProcessError;
use postern_store::{InboundFilter, InboundState, Store};

use super::{Output, begin, commit, store_error, usage_error};
use crate::exit::{Failure, SOFTWARE, TEMPORARY};
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List received messages, newest first, with their outcome.
    List {
        /// Only this state: received, processing, processed, rejected, ignored, failed_temporary.
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
    /// Process a stored message again (after fixing a user, a project or a setting).
    Reprocess {
        /// The message id.
        id: i64,
    },
}

pub async fn run(store: &Store, setup: &Setup, command: MessageCommand) -> Result<Output, Failure> {
    match command {
        MessageCommand::List { state, limit } => {
            let state = match state {
                Some(text) => Some(
                    text.parse::<InboundState>()
                        .map_err(|_| usage_error(format!("unknown state {text:?}")))?,
                ),
                None => None,
            };
            let mut tx = begin(store).await?;
            let messages = tx
                .list_inbound(&InboundFilter {
                    state,
                    limit: limit.clamp(1, 10_000),
                    ..InboundFilter::default()
                })
                .await
                .map_err(store_error)?;
            commit(tx).await?;
            let human: String = messages
                .iter()
                .map(|m| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\n",
                        m.id,
                        m.received_at,
                        m.state.as_str(),
                        m.handler.as_deref().unwrap_or("-"),
                        m.error_kind.as_deref().unwrap_or("-"),
                        m.message_id.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            Output::new(&messages, human)
        }
        MessageCommand::Show { id, raw } => {
            let mut tx = begin(store).await?;
            let message = tx
                .inbound(id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage_error(format!("no message {id}")))?;
            commit(tx).await?;
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
                meta.handler.as_deref().unwrap_or("-"),
                meta.error_kind.as_deref().unwrap_or("-"),
                meta.reason.as_deref().unwrap_or("-"),
                meta.size
            );
            Output::new(&message, human)
        }
        MessageCommand::Reprocess { id } => {
            let processor = setup.processor(store.clone());
            match processor.reprocess(id).await {
                Ok(Some(outcome)) => {
                    let human = format!(
                        "message {id}: {}{}\n",
                        outcome.outcome,
                        outcome
                            .error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                    Output::new(&outcome, human)
                }
                Ok(None) => Err(usage_error(format!("no message {id}"))),
                Err(ProcessError::Temporary(reason)) => Err(Failure::new(
                    TEMPORARY,
                    anyhow::anyhow!("temporary failure: {reason}"),
                )),
                Err(other) => Err(Failure::new(SOFTWARE, other)),
            }
        }
    }
}
