//! `postern trim`: the reply trimmer alone.

use std::process::ExitCode;

use serde::Serialize;

use crate::TrimArgs;
use crate::exit::{self, Failure};

/// The JSON printed: email_reply_trimmer's `trim`, `trim(text, true)[1]` and
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
    let trimmed = postern_mail::trim::trim(&text);
    let (_, elided) = postern_mail::trim::trim_split(&text);
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
