//! The outbox's errors: what stops the sender ([`OutboxError`]) and what one delivery attempt
//! ends with ([`DeliveryError`]), already sorted into "try again later" and "give up".

use std::path::PathBuf;

use postern_store::StoreError;

/// A failure of the sender itself, not of one mail: bad settings, or the store.
///
/// Mail that a relay refuses is not an `OutboxError`; it is recorded on its outbox row (see
/// [`DeliveryError`]) and the batch goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A setting cannot work (an unparsable sender address, a bad certificate …). Found when the
    /// transport is built, before any mail is taken.
    #[error("invalid outgoing mail setting {setting}: {reason}")]
    Config {
        /// The setting's name, as in the configuration (`smtp.from`, `smtp.ca_pem` …).
        setting: &'static str,
        /// What is wrong with it. Never contains a secret.
        reason: String,
    },

    /// The outbox folder cannot be used.
    #[error("outbox folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Reading or updating the outbox table failed. Whether waiting helps is
    /// [`StoreError::is_temporary`]; the worker loop waits and tries again either way.
    #[error("outbox store: {0}")]
    Store(#[from] StoreError),
}

impl OutboxError {
    /// Whether trying the same thing later may succeed (only store errors can).
    pub fn is_temporary(&self) -> bool {
        match self {
            OutboxError::Store(e) => e.is_temporary(),
            OutboxError::Config { .. } | OutboxError::Folder { .. } => false,
        }
    }
}

/// How one delivery attempt failed, as a [`crate::Transport`] reports it.
///
/// The message is what is stored in the row's `last_error` and shown to an administrator, so
/// transports build it from the relay's answer and never from their settings: it must not
/// contain a password (the SMTP transport also scrubs it, in case a relay echoes one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Might work later: the relay is unreachable, timed out, answered 4xx, refused our login or
    /// our TLS, or the folder could not be written. The mail stays queued with back-off.
    #[error("{0}")]
    Temporary(String),
    /// Will not work however often it is tried: the relay answered 5xx to the mail or one of
    /// its recipients, or a recipient is not an address. The mail is failed for good.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// Whether this failure is permanent.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent(_))
    }

    /// The text to record.
    pub fn message(&self) -> &str {
        match self {
            DeliveryError::Temporary(m) | DeliveryError::Permanent(m) => m,
        }
    }
}
