//! GitLab companion mode: postern as a drop-in for mail_room.
//!
//! GitLab runs mail_room to read its mailboxes and hand each message to GitLab, either as an
//! HTTP POST to its internal API (`webhook`) or as a Sidekiq job pushed onto Redis (`sidekiq`).
//! mail_room loses mail in several ways: it marks a message `\Seen` when it fetches it, so a
//! failed or interrupted delivery leaves it read and never picked up again; it counts any HTTP
//! status as delivered; and any delivery or reconnect error ends the process (see
//! <https://github.com/tpitale/mail_room/blob/master/lib/mail_room/imap/connection.rb>). In
//! companion mode postern's mailbox sources store each message durably first, and this crate
//! delivers the stored messages to GitLab, acknowledging each only when GitLab (or its Redis)
//! has accepted it.
//!
//! - [`import`] reads GitLab's configuration (`gitlab.yml`, Omnibus `gitlab.rb` or
//!   `mail_room.yml`) into [`GitlabMailboxes`], with GitLab's keys and defaults.
//! - [`Webhook`] signs a JWT exactly as GitLab verifies it ([`JwtSigner`]) and POSTs the raw
//!   message; [`Sidekiq`] pushes the job JSON GitLab's workers read.
//! - [`Deliverer`] takes stored messages from the store's `inbound_messages` table, claims each
//!   (so several postern processes on one PostgreSQL never deliver one twice), delivers it and
//!   records the outcome; temporary failures are retried with back-off, never dropped.
//! - [`Arbiter`] lets companion instances with stores of their own, watching the same
//!   mailbox, deliver each message once: a claim per message on GitLab's Redis.
//! - [`check()`] runs the checks of `gitlab:incoming_email:check` plus the delivery path.
//!
//! Delivery is at-least-once and, outside one window, exactly once: if the process dies after
//! GitLab answered 2xx (or Redis replied) but before the outcome is committed, the message is
//! delivered again once its claim is stale — at most one duplicate of each message that was in
//! flight (`DelivererOptions::concurrency`, 4 by default), never a loss. Secrets
//! (passwords, tokens, the JWT key, Redis passwords) are held in [`Secret`] and never appear in
//! logs, errors or `Debug` output.
#![deny(missing_docs)]

pub mod arbiter;
pub mod check;
mod deliver;
mod deliverer;
pub mod import;
pub mod jwt;
mod settings;
pub mod sidekiq;
pub mod webhook;

pub use arbiter::{Arbiter, Claim, instance_id};
pub use check::{CheckLine, CheckStatus, check};
pub use deliver::{DeliveryFailure, Destination, SetupError, destinations};
pub use deliverer::{Deliverer, DelivererOptions, DeliveryStats, Report};
pub use import::{ImportError, load};
pub use jwt::{JwtError, JwtSigner};
pub use settings::{
    ConfigFormat, DeliveryMethod, GitlabMailboxes, GraphOptions, InboxMethod, MailboxSettings,
    RedisSettings, Secret, WebhookSecret, mailbox_source, mailbox_type, worker_class,
};
pub use sidekiq::{Pushed, Sidekiq};
pub use webhook::{Webhook, WebhookOptions};
