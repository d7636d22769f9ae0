//! Reading GitLab's own configuration: `gitlab.yml` (source installs), Omnibus `gitlab.rb`, or
//! mail_room's `mail_room.yml`, into one [`GitlabMailboxes`].
//!
//! All three are first turned into a JSON-like tree (`serde_json::Value`) and then read by one
//! mapping per format, so the defaults and type checks live in one place (`fields`). Errors name
//! the file's key (and for `gitlab.rb` the line) and never contain a value, since values may be
//! passwords.

mod fields;
mod gitlab_rb;
mod gitlab_yml;
mod mail_room_yml;
mod ruby;

use std::path::{Path, PathBuf};

use crate::settings::{ConfigFormat, GitlabMailboxes};

/// Why a GitLab configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// The YAML contains ERB, which only Ruby can expand.
    #[error(
        "{path}: line {line} contains ERB (`<%`); postern reads plain YAML only — render the file first (for example with `erb`) or replace the ERB tags with their values"
    )]
    Erb {
        /// The file.
        path: String,
        /// 1-based line of the first `<%`.
        line: usize,
    },
    /// The YAML is not well-formed.
    #[error("{path}: not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message (without a snippet of the file, which could hold a password).
        message: String,
    },
    /// A `gitlab.rb` line that assigns a key postern reads is not a plain literal.
    #[error("{path}: line {line}: {message}")]
    Ruby {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A key has a value of the wrong kind, or is unknown.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The key, as written in the file (`production.incoming_email.port`).
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// Reads the GitLab configuration at `path`, telling the format from its name and content:
/// `*.rb` is Omnibus `gitlab.rb`; YAML with a top-level `:mailboxes:` is `mail_room.yml`;
/// other YAML is `gitlab.yml`. Relative paths inside are resolved as GitLab does (against the
/// Rails root, the parent of `config/`).
pub fn load(path: &Path) -> Result<GitlabMailboxes, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let format = detect(path, &text);
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, format, &path.display().to_string(), dir)
}

/// Which format `text` (read from `path`) is.
pub fn detect(path: &Path, text: &str) -> ConfigFormat {
    if path.extension().is_some_and(|e| e == "rb") {
        ConfigFormat::GitlabRb
    } else if text.lines().any(|l| l.starts_with(":mailboxes:")) {
        ConfigFormat::MailRoomYml
    } else {
        ConfigFormat::GitlabYml
    }
}

/// Reads `text` as `format`. `name` is used in errors; `dir` is the directory of the file
/// (sibling `resque.yml`/`redis.queues.yml` and relative paths are looked up from it).
pub fn parse(
    text: &str,
    format: ConfigFormat,
    name: &str,
    dir: &Path,
) -> Result<GitlabMailboxes, ImportError> {
    match format {
        ConfigFormat::GitlabYml => gitlab_yml::parse(&yaml(text, name)?, name, dir),
        ConfigFormat::MailRoomYml => mail_room_yml::parse(&yaml(text, name)?, name),
        ConfigFormat::GitlabRb => gitlab_rb::parse(text, name),
    }
}

/// Plain YAML into a tree; ERB is refused with its line.
fn yaml(text: &str, name: &str) -> Result<serde_json::Value, ImportError> {
    if let Some(line) = text.lines().position(|l| l.contains("<%")) {
        return Err(ImportError::Erb {
            path: name.to_owned(),
            line: line + 1,
        });
    }
    serde_saphyr::from_str::<serde_json::Value>(text).map_err(|e| ImportError::Yaml {
        path: name.to_owned(),
        message: e.without_snippet().to_string(),
    })
}
