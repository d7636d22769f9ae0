//! Where `postern serve` writes what it does: one line per event on standard error, as text
//! for a terminal or as JSON lines for a log collector (`log.format: json`).
//!
//! The level comes from `POSTERN_LOG` (an `EnvFilter` directive such as `debug` or
//! `postern_inbox=debug,info`), else `log.level`, else `info`. Secrets never reach a log line:
//! they live in redacting types, and errors are formatted by code that leaves them out.
//!
//! Every line written while one message is handled names it: the work runs inside a `message`
//! span (`inbound_id`, the store's id, and `message_id`, the `Message-ID` header) or an
//! `outbox` span (`outbox_id`), and the JSON format writes the spans' fields on each line.

use std::io::Write;
use std::time::Duration;

use postern_core::ReceiveOutcome;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber once; later calls do nothing (tests may start several).
pub fn init(config: Option<&LogConfig>) -> anyhow::Result<()> {
    let level = config
        .and_then(|log| log.level.clone())
        .unwrap_or_else(|| "info".to_owned());
    let filter = match std::env::var("POSTERN_LOG") {
        Ok(directive) if !directive.trim().is_empty() => {
            EnvFilter::try_new(directive).map_err(|e| anyhow::anyhow!("POSTERN_LOG: {e}"))?
        }
        _ => EnvFilter::try_new(&level).map_err(|e| anyhow::anyhow!("log.level: {e}"))?,
    };
    let format = config
        .and_then(|log| log.format.clone())
        .unwrap_or_else(|| "text".to_owned());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let installed = match format.as_str() {
        "text" => builder
            .with_writer(|| OneLine(std::io::stderr()))
            .with_ansi(false)
            .try_init(),
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        other => anyhow::bail!("log.format: {other:?} is not text or json"),
    };
    // Already installed (a second call in one process) is fine.
    let _ = installed;
    Ok(())
}

/// Writes each text event as exactly one line: a line break or carriage return inside a field
/// (a username someone typed, a header from mail) is written as `\n` / `\r`, so nobody can
/// forge a log line. The formatter hands over one whole event per write, ending in `\n`.
struct OneLine<W: Write>(W);

/// `event` with its inner line breaks escaped and one final `\n`.
fn one_line(event: &[u8]) -> Vec<u8> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    let mut line = Vec::with_capacity(event.len() + 8);
    for &byte in body {
        match byte {
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(byte),
        }
    }
    line.push(b'\n');
    line
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, event: &[u8]) -> std::io::Result<usize> {
        if event.is_empty() {
            return Ok(0);
        }
        self.0.write_all(&one_line(event))?;
        Ok(event.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The one line (and the metrics) for a message whose processing finished: `via` says which
/// path processed it (`lmtp`, `intake`, `queue`), `mailbox` is the metrics' label.
pub fn message_finished(outcome: &ReceiveOutcome, via: &str, mailbox: &str, elapsed: Duration) {
    postern_web::record_receive(outcome, mailbox, elapsed);
    tracing::info!(
        inbound_id = outcome.inbound_id,
        outcome = %outcome.outcome,
        handler = outcome.handler.map_or("-", |handler| handler.as_str()),
        error = outcome.error.map_or("-", |error| error.as_str()),
        dmarc = outcome
            .authentication
            .as_ref()
            .map_or("-", |authentication| authentication.dmarc.as_str()),
        via,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "message processed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_with_line_breaks_in_its_fields_stays_one_line() {
        let mut out = Vec::new();
        let event = b"WARN sign-in failed username=alice\nINFO forged line\r client=1\n";
        let written = OneLine(&mut out).write(event).ok();
        assert_eq!(written, Some(event.len()));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "WARN sign-in failed username=alice\\nINFO forged line\\r client=1\n"
        );
    }
}
