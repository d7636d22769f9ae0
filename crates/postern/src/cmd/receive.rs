//! `postern receive`: one message from an MTA pipe (or a file), processed and answered in JSON.
//!
//! Exit codes follow sysexits so an MTA does the right thing: 0 when the message was processed,
//! rejected, ignored, quarantined or already known (retrying would not change anything), 75
//! when it could not be processed now (the store is unavailable, or processing failed in a way
//! that may pass: the MTA keeps the message and retries), 78 when the configuration is
//! unusable. A message over `limits.max_message_bytes` is kept as its header block and refused
//! as `email_too_large`.

use std::process::ExitCode;

use std::sync::Arc;

use postern_core::Outcome;
use postern_core::intake::{Intake, IntakeMessage, Origin, Taken};
use postern_store::{InboundSource, Mailbox};

use crate::exit::{self, Failure, TEMPORARY};
use crate::setup::{Setup, load_config, runtime};
use crate::{MailboxArg, ReceiveArgs};

/// Runs the command.
pub fn run(args: ReceiveArgs) -> Result<ExitCode, Failure> {
    let setup = Setup::new(load_config(args.message.config.as_deref())?)?;
    let input = exit::read_message(&args.message.input, setup.max_message_bytes())?;
    let mailbox = match args.message.mailbox {
        MailboxArg::Incoming => Mailbox::Incoming,
        MailboxArg::ServiceDesk => Mailbox::ServiceDesk,
    };
    let message = IntakeMessage {
        raw: input.raw.into(),
        source_identity: None,
        cursor: None,
        declared_size: input
            .oversized
            .map(|size| i64::try_from(size).unwrap_or(i64::MAX)),
    };
    runtime()?.block_on(async {
        let store = setup.store().await?;
        let intake = Intake::processing(Arc::new(setup.processor(store.clone())));
        let origin = Origin {
            mailbox,
            source: InboundSource::Pipe,
        };
        let result = intake.take(origin, std::slice::from_ref(&message)).await;
        store.close().await;
        match result {
            Ok(Taken::Processed(outcome)) => {
                exit::print_json(&outcome)?;
                // Stored, but processing must be tried again. A pipe has no queue behind it,
                // so the MTA keeps the message and delivers it again: the stored copy is then
                // completed, and a failure that repeats ends in quarantine.
                if outcome.outcome == Outcome::Queued {
                    return Ok(ExitCode::from(TEMPORARY));
                }
                Ok(ExitCode::SUCCESS)
            }
            // Durable, and left to a running `serve`'s processing queue.
            Ok(Taken::Stored(summary)) => {
                exit::print_json(&summary)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Err(Failure::new(
                TEMPORARY,
                anyhow::anyhow!("temporary failure, nothing was stored: {error}"),
            )),
        }
    })
}
