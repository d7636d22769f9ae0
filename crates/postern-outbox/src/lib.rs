//! Delivering queued mail: the outbox table's rows, out through an SMTP relay or into a folder.
//!
//! `postern-core` composes every mail postern sends (notifications with reply keys, Service Desk
//! replies, reject notices) inside the transaction of the change that causes it, and stores it
//! in the outbox as raw RFC 5322 bytes with its envelope recipients. This crate owns the other
//! half: taking those rows once they are committed and due, handing them on, and recording
//! what happened, with retries for what may work later and a reason for what never will.
//!
//! The main types:
//!
//! - [`Sender`] is the worker. [`Sender::deliver_due`] takes one round of due mail
//!   ([`postern_store::Tx::due_outbox`]), claims each row, sends it and marks it sent or failed,
//!   returning a [`Report`]; [`Sender::run`] repeats that until its `Shutdown` stops it
//!   (for `postern serve`).
//! - [`Transport`] is how a mail leaves, in the manner of lettre's transports:
//!   [`SmtpTransport`] sends the stored bytes unchanged with lettre's `send_raw` (plain,
//!   STARTTLS or implicit TLS, optional login); [`FolderTransport`] writes
//!   `<data_dir>/outbox/<id>-<recipient>.eml` atomically, the embedded default until a relay is
//!   configured. [`AnyTransport`] chooses between them from the settings.
//! - [`DeliveryError`] is a failed attempt, already classified: `Temporary` (relay unreachable,
//!   timeout, 4xx, login refused) is retried after a capped, jittered exponential back-off
//!   ([`SenderOptions::DEFAULT_RETRY`]: 30 s doubling to 1 h, ±20 %) until the tenth attempt; `Permanent` (5xx to
//!   the mail or a recipient, a recipient that is no address) fails the row for good with the
//!   relay's answer as the reason.
//!
//! ```no_run
//! # async fn example(store: postern_store::Store) -> Result<(), postern_outbox::OutboxError> {
//! use postern_outbox::{AnyTransport, Sender, SmtpSettings, TlsMode};
//!
//! let smtp = SmtpSettings::new("smtp.example.org", 587, TlsMode::StartTls, "postern@example.org");
//! let transport = AnyTransport::from_settings(Some(smtp), "./postern-data".as_ref())?;
//! let report = Sender::new(store, transport).deliver_due(50).await?;
//! println!("{} sent, {} to retry, {} failed", report.sent, report.retried, report.failed);
//! # Ok(())
//! # }
//! ```
//!
//! # Sending once
//!
//! A row is claimed ([`postern_store::Tx::claim_outbox`]) in its own committed transaction
//! before it is sent, and the claim is released when the outcome is written. Two workers that
//! both list a row as due race for the claim and exactly one sends; a restarted worker does not
//! touch rows claimed less than [`SenderOptions::claim_timeout`] ago. No transaction is open
//! while a mail is on the wire.
//!
//! One window remains, and no outbox can close it without the relay's help: **after the relay
//! has accepted a mail (250 to the data) and before `mark_outbox_sent` commits**. If the process
//! dies or the database becomes unreachable in that window (the sender retries the write three
//! times), the row stays queued with its claim, and once the claim is stale another worker sends
//! the mail again: the recipient gets a duplicate. The window lasts one database round trip; a
//! duplicate notification is the price of never losing one. The folder transport is not
//! affected: a mail's file name depends only on its row, so sending again rewrites the same file.
//!
//! # Secrets
//!
//! The SMTP password lives in a [`Secret`], whose `Debug` prints `[redacted]` and which has no
//! `Display`. Error texts are built from the relay's answers, never from the settings, and are
//! scrubbed of the password besides, because they are stored in `last_error`, shown to
//! administrators and logged.
//!
//! # What this crate must never do
//!
//! Compose or change a mail: the bytes are sent as stored (only the final line break is left to
//! SMTP's own `CRLF.CRLF` framing). Decide who gets mail or why: that was decided when the row
//! was queued. It depends on `postern-store`, and on `postern-work` for the loop every queue of
//! postern shares.

#![deny(missing_docs)]

mod error;
mod folder;
mod smtp;
mod transport;
mod worker;

pub use error::{DeliveryError, OutboxError};
pub use folder::{FolderTransport, sanitise_recipient};
pub use postern_vocab::Secret;
/// The schedule of retries, shared with every queue of postern ([`SenderOptions::DEFAULT_RETRY`]
/// for the outbox).
pub use postern_work::RetryPolicy;
pub use smtp::{SmtpSettings, SmtpTransport, TlsMode};
pub use transport::{AnyTransport, Outgoing, Transport};
pub use worker::{Report, Sender, SenderOptions};
