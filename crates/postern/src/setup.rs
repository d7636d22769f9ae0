//! Turning a configuration into running parts: data directory, store, processor.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use postern_core::authentication::SenderAuthentication;
use postern_core::content::UploadPolicy;
use postern_core::{Processor, ProcessorConfig};
use postern_mail::AddressTemplate;
use postern_store::{Store, StoreOptions, TokenKey};

use crate::config::Config;
use crate::exit::{CONFIG, Failure, TEMPORARY};

/// The data directory when none is configured.
pub const DEFAULT_DATA_DIR: &str = "postern-data";

/// GitLab's default `max_attachment_size` (100 MB).
pub const MAX_ATTACHMENT_BYTES: usize = 100 * 1024 * 1024;

/// The largest message taken whole by default, from any source: the built-in listener's limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 50 * 1024 * 1024;

/// The umask of every postern process: what it writes (the database and its `-wal`/`-shm`,
/// raw mail, uploads, repositories, the outbox) holds reply keys, tokens and everyone's mail, so
/// it is for postern's own user alone, whatever umask it was started with.
pub const PRIVATE_UMASK: u32 = 0o077;
/// The mode of the data directory and every directory in it.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of every file in the data directory.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Entries looked at when checking the data directory's modes at start. The walk is linear in
/// this; a larger directory is checked this far (with a warning) rather than holding up the start.
pub const MAX_MODE_CHECKS: usize = 200_000;

/// The file, relative to the data directory, holding the key that seals incoming-email tokens
/// in the database. Kept out of the database on purpose: a copy of the database alone reveals
/// no token. `admin backup` copies it next to the backup and `admin restore` puts it back.
pub const TOKEN_KEY_FILE: &str = "secrets/token.key";

fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(PRIVATE_UMASK));
}

/// What [`secure_data_dir`] found and repaired.
#[derive(Debug, Default)]
pub struct ModeRepair {
    /// Entries whose mode was too open and is now private.
    pub repaired: usize,
    /// The first of them, for the warning.
    pub first: Option<PathBuf>,
    /// Entries looked at.
    pub checked: usize,
    /// Whether the walk stopped at [`MAX_MODE_CHECKS`].
    pub incomplete: bool,
}

/// Creates `dir` (0700) if needed, and makes it and everything in it private: directories
/// 0700, files 0600. Symbolic links are neither followed nor changed. Entries another user
/// owns cannot be changed and are an error.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<ModeRepair> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    let mut repair = ModeRepair::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if repair.checked >= MAX_MODE_CHECKS {
            repair.incomplete = true;
            break;
        }
        repair.checked += 1;
        let metadata = std::fs::symlink_metadata(&path)?;
        let wanted = if metadata.is_dir() {
            PRIVATE_DIR_MODE
        } else if metadata.is_file() {
            PRIVATE_FILE_MODE
        } else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(wanted | (mode & 0o700)),
            )?;
            repair.repaired += 1;
            if repair.first.is_none() {
                repair.first = Some(path.clone());
            }
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                if repair.checked + pending.len() >= MAX_MODE_CHECKS {
                    repair.incomplete = true;
                    break;
                }
                pending.push(entry?.path());
            }
        }
    }
    Ok(repair)
}

/// Resolved locations and settings.
pub struct Setup {
    /// The configuration it came from.
    pub config: Config,
    /// Where postern keeps its data.
    pub data_dir: PathBuf,
    /// The store URL (never printed: it may carry a password).
    store_url: String,
    /// Sender authentication, built once: its DNS cache is shared by every message.
    sender_authentication: Option<SenderAuthentication>,
}

impl Setup {
    /// Resolves defaults: data in `./postern-data`, SQLite in `postern.sqlite3` there. Also
    /// sets the process's umask to 0077 (see [`PRIVATE_UMASK`]).
    pub fn new(config: Config) -> Result<Setup, Failure> {
        restrict_umask();
        let sender_authentication = sender_authentication(&config)?;
        let store = config.store.as_ref();
        let data_dir = store
            .and_then(|s| s.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store_url = store
            .and_then(|s| s.url.as_ref().map(|url| url.expose().to_owned()))
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("postern.sqlite3").display()
                )
            });
        Ok(Setup {
            config,
            data_dir,
            store_url,
            sender_authentication,
        })
    }

    /// The key that seals incoming-email tokens: `store.token_key_file`, else
    /// [`TOKEN_KEY_FILE`] in the data directory.
    pub fn token_key_file(&self) -> PathBuf {
        self.config
            .store
            .as_ref()
            .and_then(|store| store.token_key_file.clone())
            .unwrap_or_else(|| self.data_dir.join(TOKEN_KEY_FILE))
    }

    /// Opens the store (creating the data directory). A temporary failure (exit 75: the database
    /// may come back, and an MTA will retry) is told apart from a store that retrying cannot fix
    /// (exit 78: an unsupported or malformed URL, a refused password, a database that is not
    /// postern's).
    pub async fn store(&self) -> Result<Store, Failure> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(&self.data_dir)
            .with_context(|| format!("cannot create data directory {}", self.data_dir.display()))
            .map_err(|e| Failure::new(TEMPORARY, e))?;
        // Created at the first start; afterwards it must be the file that sealed the tokens
        // (`Store::connect_with` checks, and names the file when it is not).
        let token_key = TokenKey::load_or_create(&self.token_key_file()).map_err(|e| {
            let code = if e.is_temporary() { TEMPORARY } else { CONFIG };
            Failure::new(code, anyhow::anyhow!("token key: {e}"))
        })?;
        let options = StoreOptions {
            acquire_timeout: Duration::from_secs(10),
            token_key: Some(std::sync::Arc::new(token_key)),
            ..StoreOptions::default()
        };
        Store::connect_with(&self.store_url, &options)
            .await
            .map_err(|e| {
                // The URL is never repeated: it may carry a password.
                if let postern_store::StoreError::UnsupportedUrl(_) = e {
                    let scheme = self
                        .store_url
                        .split_once("://")
                        .map(|(scheme, _)| scheme)
                        .filter(|s| s.len() <= 16 && s.chars().all(|c| c.is_ascii_alphanumeric()))
                        .map(|s| format!(" {s:?}"))
                        .unwrap_or_default();
                    return Failure::new(
                        CONFIG,
                        anyhow::anyhow!(
                            "unsupported store URL scheme{scheme} (expected sqlite:… or postgres://…)"
                        ),
                    );
                }
                if e.is_temporary() {
                    Failure::new(TEMPORARY, anyhow::anyhow!("store unavailable: {e}"))
                } else {
                    Failure::new(CONFIG, anyhow::anyhow!("unusable store: {e}"))
                }
            })
    }

    /// The processor's view of the configuration.
    pub fn processor_config(&self) -> ProcessorConfig {
        let host = self.config.host();
        let sender_address = self
            .config
            .smtp
            .as_ref()
            .and_then(|smtp| smtp.from.clone())
            .unwrap_or_else(|| format!("noreply@{host}"));
        ProcessorConfig {
            incoming_address: self
                .config
                .incoming_address()
                .as_deref()
                .map(AddressTemplate::new),
            service_desk_address: self
                .config
                .service_desk_address()
                .as_deref()
                .map(AddressTemplate::new),
            host,
            uploads: UploadPolicy {
                directory: self.data_dir.join("uploads"),
                max_bytes: MAX_ATTACHMENT_BYTES,
            },
            sender_address,
            instance_name: self.config.instance_name(),
            reject_notice_window_seconds: self
                .config
                .instance
                .as_ref()
                .and_then(|instance| instance.reject_notice_interval)
                .unwrap_or(postern_core::notice::NOTICE_WINDOW_SECONDS),
            auto_mail: self.auto_mail_limits(),
            retry: self.retry_policy(),
            limits: self.message_limits(),
            quarantine_directory: postern_core::intake::quarantine_directory(&self.data_dir),
            reply_trimming: self.config.trim_mode(),
            // An invalid URL stops `serve` with an error naming it; elsewhere it means no link.
            web_url: self.config.external_url().ok().flatten(),
            reply_key_max_age_days: self
                .config
                .instance
                .as_ref()
                .and_then(|instance| instance.reply_key_max_age_days),
            sender_authentication: self.sender_authentication.clone(),
        }
    }

    /// `instance.auto_mail_per_recipient` and `auto_mail_per_hour`, defaults filled in.
    fn auto_mail_limits(&self) -> postern_core::auto_mail::AutoMailLimits {
        let default = postern_core::auto_mail::AutoMailLimits::default();
        let instance = self.config.instance.as_ref();
        postern_core::auto_mail::AutoMailLimits {
            per_recipient: instance
                .and_then(|instance| instance.auto_mail_per_recipient)
                .unwrap_or(default.per_recipient),
            per_hour: instance
                .and_then(|instance| instance.auto_mail_per_hour)
                .unwrap_or(default.per_hour),
        }
    }

    fn limits(&self) -> &crate::config::LimitsConfig {
        static NONE: crate::config::LimitsConfig = crate::config::LimitsConfig {
            max_message_bytes: None,
            max_attachments: None,
            max_attachment_bytes: None,
            max_quick_actions: None,
            quarantine_after_failures: None,
            max_patch_lines: None,
            max_patch_files: None,
            max_patch_binary_bytes: None,
        };
        self.config.limits.as_ref().unwrap_or(&NONE)
    }

    /// `limits:` for one message, defaults filled in.
    pub fn message_limits(&self) -> postern_core::MessageLimits {
        let limits = self.limits();
        let default = postern_core::MessageLimits::default();
        let attachments = self.config.attachment_limits();
        postern_core::MessageLimits {
            max_attachments: attachments.max_attachments,
            max_attachment_bytes: attachments.max_attachment_bytes,
            max_quick_actions: limits
                .max_quick_actions
                .unwrap_or(default.max_quick_actions),
        }
    }

    /// The largest message `postern receive` takes whole.
    pub fn max_message_bytes(&self) -> usize {
        self.limits()
            .max_message_bytes
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }

    fn retry_policy(&self) -> postern_core::RetryPolicy {
        let default = postern_core::RetryPolicy::default();
        postern_core::RetryPolicy {
            max_attempts: self
                .limits()
                .quarantine_after_failures
                .map_or(default.max_attempts, i64::from)
                .max(1),
            ..default
        }
    }

    /// The SMTP relay settings, or `None` for the folder transport. A bad `tls` value or a
    /// section without `host` is a configuration error.
    pub fn smtp_settings(&self) -> Result<Option<postern_outbox::SmtpSettings>, Failure> {
        let Some(smtp) = &self.config.smtp else {
            return Ok(None);
        };
        let bad = |message: String| Failure::new(CONFIG, anyhow::anyhow!(message));
        let host = smtp
            .host
            .clone()
            .ok_or_else(|| bad("smtp: needs a host".to_owned()))?;
        let tls = match smtp.tls.as_deref().unwrap_or("starttls") {
            "starttls" => postern_outbox::TlsMode::StartTls,
            "tls" => postern_outbox::TlsMode::Tls,
            "none" => postern_outbox::TlsMode::None,
            other => {
                return Err(bad(format!(
                    "smtp.tls: {other:?} is not starttls, tls or none"
                )));
            }
        };
        let port = smtp.port.unwrap_or(match tls {
            postern_outbox::TlsMode::StartTls => 587,
            postern_outbox::TlsMode::Tls => 465,
            postern_outbox::TlsMode::None => 25,
        });
        let from = self.processor_config().sender_address;
        let mut settings = postern_outbox::SmtpSettings::new(&host, port, tls, &from);
        settings.user = smtp.user.clone();
        settings.password = smtp.password.as_ref().cloned();
        if let Some(seconds) = smtp.timeout {
            settings.timeout = Duration::from_secs(seconds);
        }
        Ok(Some(settings))
    }

    /// The outbox sender: SMTP when configured, else `.eml` files under the data directory.
    pub fn outbox_sender(&self, store: Store) -> Result<postern_outbox::Sender, Failure> {
        let transport =
            postern_outbox::AnyTransport::from_settings(self.smtp_settings()?, &self.data_dir)
                .map_err(|e| Failure::new(CONFIG, e))?;
        Ok(postern_outbox::Sender::new(store, transport))
    }

    /// Where the projects' git repositories are: `store.repositories_dir`, else
    /// `repositories/` in the data directory.
    pub fn repositories_dir(&self) -> PathBuf {
        self.config
            .store
            .as_ref()
            .and_then(|store| store.repositories_dir.clone())
            .unwrap_or_else(|| self.data_dir.join("repositories"))
    }

    /// The projects' git repositories (see [`Setup::repositories_dir`]).
    pub fn repositories(&self) -> postern_git::Repositories {
        postern_git::Repositories::new(self.repositories_dir())
            .with_patch_limits(self.patch_limits())
    }

    /// `limits.max_patch_*` over postern-git's defaults.
    fn patch_limits(&self) -> postern_git::PatchLimits {
        let limits = self.limits();
        let default = postern_git::PatchLimits::default();
        let max_binary_bytes = limits
            .max_patch_binary_bytes
            .unwrap_or(default.max_binary_bytes);
        postern_git::PatchLimits {
            max_lines: limits.max_patch_lines.unwrap_or(default.max_lines),
            max_files: limits.max_patch_files.unwrap_or(default.max_files),
            max_binary_bytes,
            // Two hunks of the largest size (a file and its reverse), and what git may write
            // stays above what a hunk may declare.
            max_total_binary_bytes: default
                .max_total_binary_bytes
                .max(max_binary_bytes.saturating_mul(2)),
            max_written_file_bytes: default
                .max_written_file_bytes
                .max(max_binary_bytes.saturating_mul(2)),
            ..default
        }
    }

    /// A processor over an open store.
    pub fn processor(&self, store: Store) -> Processor {
        Processor::new(store, self.repositories(), self.processor_config())
    }
}

/// Loads `path` (or the embedded default); a bad file is exit 78.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, Failure> {
    match path {
        Some(path) => Config::load(path).map_err(|e| Failure::new(CONFIG, e)),
        None => Ok(Config::default()),
    }
}

/// A single-threaded runtime for one-shot commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(crate::exit::SOFTWARE, e))
}

/// The verifier of `sender_authentication:`, or `None` under the policy `off`. A resolver
/// that cannot be built is a configuration error: running on without verification would let
/// anyone act as anyone.
pub fn sender_authentication(config: &Config) -> Result<Option<SenderAuthentication>, Failure> {
    let refuse =
        |message: String| Failure::new(CONFIG, anyhow::anyhow!("sender_authentication: {message}"));
    let policy = config.sender_policy().map_err(refuse)?;
    if policy == postern_auth::Policy::Off {
        return Ok(None);
    }
    let auth_config = config.auth_config().map_err(refuse)?;
    let authenticator = postern_auth::Authenticator::new(&auth_config).map_err(|e| {
        refuse(format!(
            "{e} (set sender_authentication.dns.nameservers, or policy: off to verify nothing)"
        ))
    })?;
    Ok(SenderAuthentication::new(authenticator, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_limits_follow_the_configuration_without_overflow() {
        let config = Config::parse(
            "limits:\n  max_patch_lines: 10\n  max_patch_files: 2\n  max_patch_binary_bytes: 18446744073709551615\n",
        )
        .expect("parses");
        let Ok(setup) = Setup::new(config) else {
            panic!("the setup is refused")
        };
        let limits = setup.patch_limits();
        assert_eq!(limits.max_lines, 10);
        assert_eq!(limits.max_files, 2);
        assert_eq!(limits.max_binary_bytes, u64::MAX);
        assert_eq!(limits.max_total_binary_bytes, u64::MAX);
        assert_eq!(limits.max_written_file_bytes, u64::MAX);
    }

    #[test]
    fn repositories_are_in_the_data_directory_unless_configured_elsewhere() {
        let setup = |yaml: &str| match Setup::new(Config::parse(yaml).expect("parses")) {
            Ok(setup) => setup,
            Err(_) => panic!("the setup is refused"),
        };
        let default = setup("store:\n  data_dir: /var/lib/postern\n");
        assert_eq!(
            default.repositories_dir(),
            Path::new("/var/lib/postern/repositories")
        );
        let shared = setup(
            "store:\n  data_dir: /var/lib/postern\n  repositories_dir: /srv/shared/repositories\n",
        );
        assert_eq!(
            shared.repositories_dir(),
            Path::new("/srv/shared/repositories")
        );
    }
}
