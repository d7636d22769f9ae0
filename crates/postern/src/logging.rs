//! Where `postern serve` writes what it does: one line per event on standard error, as text
//! for a terminal or as JSON lines for a log collector (`log.format: json`).
//!
//! The level comes from `POSTERN_LOG` (an `EnvFilter` directive such as `debug` or
//! `postern_inbox=debug,info`), else `log.level`, else `info`. Secrets never reach a log line:
//! they live in redacting types, and errors are formatted by code that leaves them out.

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
        "text" => builder.with_ansi(false).try_init(),
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        other => anyhow::bail!("log.format: {other:?} is not text or json"),
    };
    // Already installed (a second call in one process) is fine.
    let _ = installed;
    Ok(())
}
