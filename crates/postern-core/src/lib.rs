//! The tracker side of postern: what a message does once it is understood.
//!
//! [`Processor::receive`] stores a raw message, runs GitLab's receiver checks, picks one of the
//! six handlers (reply → comment, new issue, comment by issue address, unsubscribe, new merge
//! request with patches applied by git, Service Desk ticket or reply), checks the sender and
//! the permissions in GitLab's order, writes the result and the message's outcome in **one**
//! transaction, and queues a reject notice where GitLab would send one. A refusal is a named
//! [`ErrorKind`] with GitLab's reason text; a temporary failure ([`ProcessError::Temporary`])
//! writes nothing, so the caller can retry without duplicates.
//!
//! Every source hands its messages to [`intake::Intake`], which stores them and either runs
//! the processor on them at once or leaves them to the processing [`queue`].
//!
//! Main types: [`Processor`] and its [`ProcessorConfig`]; [`ReceiveOutcome`] (what `postern
//! receive` prints); [`ErrorKind`] / [`Rejection`]; the permission model in [`permissions`].
//!
//! What this crate must never do: open sockets, speak IMAP/SMTP/HTTP, or send mail. Mail to send
//! is written to the outbox table; the outbox crate delivers it.
#![deny(missing_docs)]

pub mod actions;
pub mod authentication;
pub mod auto_mail;
pub mod branches;
pub mod config;
pub mod content;
pub mod custom_email;
pub mod error;
mod handlers;
pub mod intake;
pub mod limits;
pub mod mail_html;
pub mod members;
pub mod mentions;
pub mod notice;
pub mod notification_levels;
pub mod notify;
pub mod permissions;
pub mod processor;
pub mod projects;
pub mod queue;
pub mod quick;
pub mod sender;
pub mod service_desk;
pub mod system_notes;
mod unsubscribe;
pub mod users;
pub mod verification;

pub use config::ProcessorConfig;
pub use error::{ChangeError, ErrorKind, ProcessError, Refusal, Rejection};
pub use intake::body_of;
pub use limits::MessageLimits;
pub use postern_vocab::HandlerKind;
pub use postern_work::RetryPolicy;
pub use processor::{Created, Outcome, Processor, ReceiveOutcome};
