//! `postern inspect`: what postern understands of one message, as JSON.

use std::process::ExitCode;

use postern_mail::trim::TrimMode;
use postern_mail::{AddressTemplate, Mailbox, ReplyOptions, analyse};

use crate::config::Config;
use crate::exit::{self, CONFIG, Failure};
use crate::{InspectArgs, MailboxArg};

/// Runs the command. Any readable input exits 0, whatever the message is.
pub fn run(args: InspectArgs) -> Result<ExitCode, Failure> {
    let config = match &args.message.config {
        Some(path) => Config::load(path).map_err(|e| Failure::new(CONFIG, e))?,
        None => Config::default(),
    };
    let raw = exit::read_input(&args.message.input)?;
    let mailbox = match args.message.mailbox {
        MailboxArg::Incoming => Mailbox::Incoming,
        MailboxArg::ServiceDesk => Mailbox::ServiceDesk,
    };
    let trim_mode = args.mode.map_or_else(|| config.trim_mode(), TrimMode::from);
    let reply = ReplyOptions {
        trim_reply: !args.no_trim,
        append_reply: args.append_reply,
        allow_only_quotes: args.allow_only_quotes,
        trim_mode,
    };
    let mut options = config.analysis_options(mailbox, reply);
    if let Some(address) = &args.address {
        options.incoming_address = Some(AddressTemplate::new(address));
    }
    if let Some(address) = &args.service_desk_address {
        options.service_desk_address = Some(AddressTemplate::new(address));
    }
    if let Some(host) = &args.host {
        options.host = Some(host.clone());
    }
    // The analysis, and which trimmer produced its `body`.
    let mut value = serde_json::to_value(analyse(&raw, &options))
        .map_err(|e| Failure::new(exit::SOFTWARE, e))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("reply_trimming".into(), trim_mode.as_str().into());
    }
    exit::print_json(&value)?;
    Ok(ExitCode::SUCCESS)
}
