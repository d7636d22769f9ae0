//! Mail understanding for postern: what a message is, who sent it, which key it carries, whether
//! it is automatic, and what the person actually wrote.
//!
//! This crate is pure. It reads bytes and returns values; it opens no file or socket, touches no
//! database and keeps no state, so every rule here can be unit-tested, fuzzed and benchmarked
//! alone. The rules reproduce GitLab's receiver (`Gitlab::Email::Receiver`, its handlers' key
//! patterns and `ReplyParser`) and Discourse's reply trimmer; where postern deliberately differs,
//! the item's documentation says so.
//!
//! Main pieces:
//! - [`Email`]: one parsed message with the header views GitLab's rules need.
//! - [`AddressTemplate`]: `incoming+%{key}@example.com`, matched and built both ways.
//! - [`find_mail_key`] → [`MailKey`], then [`route_incoming`] / [`route_service_desk`] → [`Route`].
//! - [`auto_generated`]: automatic mail, with the reason.
//! - [`receiver`]: the receiver's decision before any handler, which `inspect` and processing
//!   share, refusals named as [`ErrorKind`]s.
//! - [`parse_reply`]: the reply text; [`trim`] and [`html`] are its two halves. Trimming has
//!   two modes ([`trim::TrimMode`]): GitLab's trimmer byte for byte (the default here), and
//!   postern's own, which keeps what GitLab's is known to eat ([`trim::trim_reply`]).
//! - [`analyse`]: all of the above at once, as `postern inspect` prints it.
//!
//! ```
//! use postern_mail::{analyse, AnalysisOptions, HandlerKind};
//!
//! let raw = b"From: jake@example.com\r\n\
//!             To: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\
//!             Subject: Re: the bug\r\n\r\n\
//!             I could not disagree more.\r\n\r\n\
//!             On Tue, someone wrote:\r\n> the original\r\n";
//! let analysis = analyse(raw, &AnalysisOptions::default());
//! assert_eq!(analysis.handler, Some(HandlerKind::CreateNote));
//! assert_eq!(analysis.body, "I could not disagree more.");
//! ```
#![deny(missing_docs)]

pub mod address;
pub mod analysis;
pub mod attachments;
pub mod auto;
pub mod html;
pub mod key;
pub mod limits;
pub mod message;
pub mod quick_actions;
pub mod receiver;
pub mod reply;
pub mod route;
pub mod trim;

pub use address::AddressTemplate;
pub use analysis::{Analysis, AnalysisOptions, analyse};
pub use attachments::{Attachment, attachments, patches};
pub use auto::{AutoReason, auto_generated};
pub use key::{CustomEmailLookup, KeyScan, KeySource, MailKey, find_mail_key};
pub use message::{Email, cap_message, header_message_id, message_id_for_log, message_id_of};
pub use postern_vocab::ErrorKind;
pub use quick_actions::{
    QuickAction, QuickActionScan, extract_quick_actions, extract_quick_actions_capped,
    find_quick_actions, redact_quick_actions, scan_quick_actions,
};
pub use receiver::{AttachmentLimits, ByBytes, Mailbox, OverLimit, ReceiverSettings, Routing};
pub use reply::{Reply, ReplyError, ReplyOptions, parse_reply};
pub use route::{HandlerKind, ProjectRef, ReplyKey, Route, route_incoming, route_service_desk};
