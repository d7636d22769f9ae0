//! The [`Transport`] trait: one mail out, by whatever means; and [`AnyTransport`], the choice
//! the binary makes from its configuration.

use std::future::Future;
use std::path::Path;

use crate::folder::FolderTransport;
use crate::smtp::{SmtpSettings, SmtpTransport};
use crate::{DeliveryError, OutboxError};

/// One mail to deliver, borrowed from the outbox row it came from.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The outbox row's id: names the file in the folder transport, and appears in logs.
    pub id: i64,
    /// Envelope recipients (`RCPT TO`), never empty when the [`Sender`](crate::Sender) calls.
    pub recipients: &'a [String],
    /// The complete RFC 5322 message, as composed and stored. Sent as is: no transport may
    /// re-encode, re-fold or re-sign it.
    pub raw: &'a [u8],
}

/// A way to hand mail on, in the manner of lettre's `AsyncTransport`: the
/// [`Sender`](crate::Sender) decides what to send and records the outcome, the transport only
/// delivers and classifies its failures.
///
/// `Ok(())` means the mail has left our hands for good: the relay accepted it (`250` after
/// `DATA`), or its file is durably in the folder. Anything less is a [`DeliveryError`].
pub trait Transport: Send + Sync {
    /// Delivers one mail.
    fn send(&self, mail: Outgoing<'_>) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// The transport `postern serve` uses: SMTP when a relay is configured, else the folder.
#[derive(Debug)]
pub enum AnyTransport {
    /// Through an SMTP relay (boxed: lettre's client is ten times the size of the folder's
    /// path, and the enum is built once per process).
    Smtp(Box<SmtpTransport>),
    /// Into `<data_dir>/outbox/`.
    Folder(FolderTransport),
}

impl AnyTransport {
    /// SMTP with `smtp` when given, else the folder under `data_dir` (the embedded default: mail
    /// is kept where a person can read it until a relay is configured).
    pub fn from_settings(
        smtp: Option<SmtpSettings>,
        data_dir: &Path,
    ) -> Result<AnyTransport, OutboxError> {
        Ok(match smtp {
            Some(settings) => AnyTransport::Smtp(Box::new(SmtpTransport::new(settings)?)),
            None => AnyTransport::Folder(FolderTransport::new(data_dir)),
        })
    }
}

impl Transport for AnyTransport {
    async fn send(&self, mail: Outgoing<'_>) -> Result<(), DeliveryError> {
        match self {
            AnyTransport::Smtp(t) => t.send(mail).await,
            AnyTransport::Folder(t) => t.send(mail).await,
        }
    }
}
