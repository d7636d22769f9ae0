//! The folder transport: each mail becomes `<data_dir>/outbox/<id>-<first recipient>.eml`.
//!
//! This is what a fresh `postern serve` uses until an SMTP relay is configured: nothing leaves
//! the machine, and a person (or the web UI) can open exactly what would have been sent. The
//! file holds the stored bytes unchanged; the recipients are in its name (the first one) and in
//! the outbox row (all of them).
//!
//! A file appears whole or not at all: the bytes go to a hidden temporary file in the same
//! folder, are flushed to disk, and the file is renamed into place (rename is atomic within one
//! file system); the folder itself is then flushed so the new name survives a power loss. The
//! name depends only on the row, so a mail sent again after a crash replaces its own file rather
//! than adding a second one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{DeliveryError, Outgoing, Transport};

/// The longest recipient part of a file name, so names stay well under file-system limits.
const MAX_RECIPIENT_CHARS: usize = 100;

/// Writes mail into a folder, one `.eml` file per mail.
#[derive(Debug, Clone)]
pub struct FolderTransport {
    /// `<data_dir>/outbox`; created on first use.
    dir: PathBuf,
}

impl FolderTransport {
    /// A transport writing into `<data_dir>/outbox/`. Nothing is touched until the first mail.
    pub fn new(data_dir: &Path) -> FolderTransport {
        FolderTransport {
            dir: data_dir.join("outbox"),
        }
    }

    /// The folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a mail is written to.
    pub fn path_for(&self, mail: Outgoing<'_>) -> PathBuf {
        let first = mail.recipients.first().map_or("", String::as_str);
        self.dir
            .join(format!("{}-{}.eml", mail.id, sanitise_recipient(first)))
    }
}

impl Transport for FolderTransport {
    async fn send(&self, mail: Outgoing<'_>) -> Result<(), DeliveryError> {
        let dir = self.dir.clone();
        let path = self.path_for(mail);
        let raw = mail.raw.to_vec();
        // std's blocking calls on a blocking thread: fsync can take a while, and the worker's
        // runtime must keep serving other tasks meanwhile.
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &raw))
            .await
            .map_err(|e| DeliveryError::Temporary(format!("writing the outbox file: {e}")))?
            // A full or read-only disk can be fixed: temporary.
            .map_err(DeliveryError::Temporary)
    }
}

fn write_atomically(dir: &Path, path: &Path, raw: &[u8]) -> Result<(), String> {
    let err = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| err("creating", dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden and with a different extension, so readers of `*.eml` never see a partial file.
    let temp = dir.join(format!(".{file_name}.tmp"));
    let mut file = std::fs::File::create(&temp).map_err(|e| err("creating", &temp, e))?;
    file.write_all(raw)
        .and_then(|()| file.sync_all())
        .map_err(|e| err("writing", &temp, e))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|e| {
        std::fs::remove_file(&temp).ok();
        err("renaming into", path, e)
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("flushing", dir, e))
}

/// The recipient as a safe file-name part: letters, digits and `@ . _ + -` are kept, anything
/// else (path separators, spaces, control and non-ASCII characters) becomes `_`, and the result
/// is cut to `MAX_RECIPIENT_CHARS` (100) characters. An empty recipient reads `unknown`.
pub fn sanitise_recipient(recipient: &str) -> String {
    let cleaned: String = recipient
        .chars()
        .take(MAX_RECIPIENT_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise_recipient;

    #[test]
    fn recipients_become_safe_names() {
        assert_eq!(sanitise_recipient("Ann+x@example.org"), "Ann+x@example.org");
        assert_eq!(sanitise_recipient("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitise_recipient("a b\u{e9}@x"), "a_b_@x");
        assert_eq!(sanitise_recipient(""), "unknown");
        assert_eq!(sanitise_recipient(&"a".repeat(500)).len(), 100);
    }
}
