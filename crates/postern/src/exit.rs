//! Exit codes (sysexits) and the one place errors are mapped to them.

use std::io::{Read, Write as _};
use std::path::Path;

/// Input file missing or unreadable (`EX_NOINPUT`).
pub const NO_INPUT: u8 = 66;
/// Temporary failure, the caller should retry (`EX_TEMPFAIL`).
pub const TEMPORARY: u8 = 75;
/// Unusable configuration (`EX_CONFIG`).
pub const CONFIG: u8 = 78;
/// Internal software error (`EX_SOFTWARE`).
pub const SOFTWARE: u8 = 70;

/// An error with the exit code it deserves.
pub struct Failure {
    /// What went wrong, printed on one line.
    pub error: anyhow::Error,
    /// The process exit code.
    pub code: u8,
}

impl Failure {
    /// Wraps `error` with `code`.
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            error: error.into(),
            code,
        }
    }
}

/// Reads a whole input: a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Failure::new(NO_INPUT, anyhow::anyhow!("cannot read standard input: {e}"))
            })?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| {
        Failure::new(
            NO_INPUT,
            anyhow::anyhow!("cannot read {}: {e}", path.display()),
        )
    })
}

/// A message read for storing: the whole of it, or, over the size limit, only its header
/// block and the size it had.
pub struct MessageInput {
    /// The message, or its header block.
    pub raw: Vec<u8>,
    /// Set when the message was over the limit: its full size in bytes.
    pub oversized: Option<u64>,
}

/// The most bytes of an oversized message kept (its header block, for the reject notice).
const KEPT_HEADER_BYTES: usize = 256 * 1024;

/// Reads a message from `path` (`-` for standard input) keeping at most `max_bytes` of it: a
/// larger message is read to its end (an MTA writing into a pipe must not see it closed early)
/// but only its header block is kept, and its size reported.
pub fn read_message(path: &Path, max_bytes: usize) -> Result<MessageInput, Failure> {
    let failed = |e: std::io::Error| {
        let what = if path.as_os_str() == "-" {
            "standard input".to_owned()
        } else {
            path.display().to_string()
        };
        Failure::new(NO_INPUT, anyhow::anyhow!("cannot read {what}: {e}"))
    };
    let mut reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(failed)?)
    };
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
    let mut raw = Vec::new();
    (&mut reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(failed)?;
    if raw.len() <= max_bytes {
        return Ok(MessageInput {
            raw,
            oversized: None,
        });
    }
    let rest = std::io::copy(&mut reader, &mut std::io::sink()).map_err(failed)?;
    let size = u64::try_from(raw.len())
        .unwrap_or(u64::MAX)
        .saturating_add(rest);
    let body = postern_core::body_of(&raw).len();
    let header_block = (raw.len() - body).min(KEPT_HEADER_BYTES);
    raw.truncate(header_block);
    Ok(MessageInput {
        raw,
        oversized: Some(size),
    })
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Failure::new(SOFTWARE, e))?;
    text.push('\n');
    print_bytes(text.as_bytes())
}

/// Writes `bytes` to standard output. A reader that has gone away (`postern … | head`) is not
/// an error: the work is done (for `receive`, committed), and `println!` would panic instead.
pub fn print_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(
            SOFTWARE,
            anyhow::anyhow!("cannot write to standard output: {e}"),
        )),
    }
}
