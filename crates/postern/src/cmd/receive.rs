//! `postern receive`: one message from an MTA pipe (or a file), processed and answered in JSON.
//!
//! Exit codes follow sysexits so an MTA does the right thing: 0 when the message was processed,
//! rejected, ignored or already known (retrying would not change anything), 75 when the store
//! is unavailable (nothing was written; the MTA keeps the message and retries), 78 when the
//! configuration is unusable.

use std::process::ExitCode;

use postern_core::ProcessError;
use postern_store::{InboundSource, Mailbox};

use crate::exit::{self, Failure, TEMPORARY};
use crate::setup::{Setup, load_config, runtime};
use crate::{MailboxArg, ReceiveArgs};

/// Runs the command.
pub fn run(args: ReceiveArgs) -> Result<ExitCode, Failure> {
    let setup = Setup::new(load_config(args.message.config.as_deref())?);
    let raw = exit::read_input(&args.message.input)?;
    let mailbox = match args.message.mailbox {
        MailboxArg::Incoming => Mailbox::Incoming,
        MailboxArg::ServiceDesk => Mailbox::ServiceDesk,
    };
    runtime()?.block_on(async {
        let store = setup.store().await?;
        let processor = setup.processor(store.clone());
        let result = processor
            .receive(&raw, mailbox, InboundSource::Pipe, None)
            .await;
        store.close().await;
        match result {
            Ok(outcome) => {
                exit::print_json(&outcome)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(ProcessError::Temporary(reason)) => Err(Failure::new(
                TEMPORARY,
                anyhow::anyhow!("temporary failure, nothing was stored: {reason}"),
            )),
            Err(other) => Err(Failure::new(exit::SOFTWARE, other)),
        }
    })
}
