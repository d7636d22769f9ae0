//! `postern inspect`: what postern understands of one message, as JSON.

use std::process::ExitCode;

use postern_mail::trim::TrimMode;
use postern_mail::{AddressTemplate, Mailbox, ReplyOptions, analyse};

use crate::config::Config;
use crate::exit::{self, CONFIG, Failure};
use crate::{InspectArgs, MailboxArg};

/// Runs the command. Any readable input exits 0, whatever the message is.
pub fn run(args: InspectArgs) -> Result<ExitCode, Failure> {
    let config = match args.message.config.as_deref() {
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
    let authentication = authentication(&config, &raw)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("reply_trimming".into(), trim_mode.as_str().into());
        object.insert("authentication".into(), authentication);
    }
    exit::print_json(&value)?;
    Ok(ExitCode::SUCCESS)
}

/// The sender-authentication verdict as processing would record it (`null` under the policy
/// `off`, which verifies nothing). Asks the configured DNS, as processing does.
fn authentication(config: &Config, raw: &[u8]) -> Result<serde_json::Value, Failure> {
    let Some(authentication) = crate::setup::sender_authentication(config)? else {
        return Ok(serde_json::Value::Null);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::SOFTWARE, e))?;
    let record = runtime.block_on(authentication.authenticate(raw)).record();
    serde_json::to_value(record).map_err(|e| Failure::new(exit::SOFTWARE, e))
}
