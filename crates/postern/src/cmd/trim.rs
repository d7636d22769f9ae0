//! `postern trim`: the reply trimmer alone.

use std::process::ExitCode;

use serde::Serialize;

use crate::TrimArgs;
use crate::exit::{self, Failure};

/// The JSON printed: the kept reply and the cut part in the chosen mode (in `gitlab` mode
/// email_reply_trimmer's `trim` and `trim(text, true)[1]`), and the gem's
/// `extract_embedded_email`.
#[derive(Serialize)]
struct Trimmed {
    trimmed: String,
    elided: String,
    embedded: Option<String>,
    before: Option<String>,
}

/// Runs the command. Bytes that are not UTF-8 are replaced, never refused.
pub fn run(args: TrimArgs) -> Result<ExitCode, Failure> {
    let raw = exit::read_input(&args.input)?;
    let text = String::from_utf8_lossy(&raw);
    // One pass gives both halves (`trim` is the first half of `trim_split` in either mode).
    let (trimmed, elided) = postern_mail::trim::trim_reply_split(&text, args.mode.into());
    let (embedded, before) = match postern_mail::trim::extract_embedded_email(&text) {
        Some((embedded, before)) => (Some(embedded), Some(before)),
        None => (None, None),
    };
    exit::print_json(&Trimmed {
        trimmed,
        elided,
        embedded,
        before,
    })?;
    Ok(ExitCode::SUCCESS)
}
