//! postern's persistent state: schema, migrations and queries, one code path on two databases.
//!
//! This crate owns every byte postern keeps between two messages: users and their addresses,
//! projects with their Service Desk settings, members, issues and tickets, merge requests, notes,
//! the sent notifications whose reply keys bring answers back, subscriptions, uploads (their
//! bytes in the database on PostgreSQL, files of the instance on SQLite: see [`StagedUploads`]),
//! the durable copy of every inbound message with its dedupe identities and outcome, the outbox of
//! mail still to send, counters of mail sent per window of time, the web UI's password hashes,
//! sessions and API tokens (as hashes), and a small key/value `settings` table. It runs on embedded **SQLite**
//! (the default: one file under the data directory) or on **PostgreSQL** (selected by URL), with
//! the same SQL text on both and two equivalent migration folders (`migrations/sqlite`,
//! `migrations/postgres`) because their DDL differs.
//!
//! The main types:
//!
//! - [`Store`] is the connection pool. [`Store::connect`] picks the backend from the URL and
//!   brings the schema up to date. It is cheap to clone and shared by every task.
//! - [`Tx`] is one open transaction, and the only way to run a query. Processing one message is
//!   one `Tx`: everything it changed is committed together by [`Tx::commit`], or nothing is (an
//!   error, an early return or a panic drops the `Tx`, which rolls it back).
//! - [`TokenKey`] seals incoming-email tokens at rest (the database keeps their hash and a sealed
//!   copy); the binary loads it from its data directory and passes it in [`StoreOptions`].
//! - [`StoreError`] says what went wrong and, through [`StoreError::is_temporary`], whether trying
//!   again later can help (the caller turns that into exit code 75 or a retry with back-off).
//!
//! ```no_run
//! # async fn example() -> Result<(), postern_store::StoreError> {
//! use postern_store::{NewUser, Store};
//!
//! let store = Store::connect("sqlite::memory:").await?;
//! let mut tx = store.begin().await?;
//! let user = tx.create_user(NewUser::new("alice", "Alice", "alice@example.com")).await?;
//! let found = tx.user_by_incoming_token(&user.incoming_email_token).await?;
//! assert_eq!(found.map(|u| u.id), Some(user.id));
//! tx.commit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! What this crate must never do: parse mail (it stores raw bytes and identities the caller
//! computed), speak HTTP or any mail protocol, or decide anything a GitLab administrator would
//! call a business rule — who may comment, which handler applies, when an issue reopens. It stores
//! and finds; `postern-core` decides. It depends on no other postern crate.

#![deny(missing_docs)]

mod api_tokens;
mod checkpoint;
mod error;
mod files;
mod ids;
mod inbound;
mod inbound_origins;
mod inbound_retry;
mod intake;
mod issues;
pub mod leases;
mod merge_requests;
mod metrics;
mod notes;
mod notification_levels;
mod notifications;
mod outbox;
mod passwords;
mod project_policy;
mod projects;
mod protected;
mod raw_files;
mod search;
mod send_counters;
mod sessions;
mod settings;
mod sqltypes;
mod store;
mod time;
mod token_key;
mod tx;
mod upload_bytes;
mod uploads;
mod users;

pub use api_tokens::ApiToken;
pub use error::StoreError;
pub use files::StagedFiles;
pub use ids::{
    MAX_STORED_IDENTIFIER_BYTES, base36, bounded_identifier, content_identity, full_path_slug,
    is_plain_identifier, new_discussion_id, new_incoming_email_token, new_reply_key,
    new_upload_secret, without_nul,
};
pub use inbound::{
    DuplicateOf, InboundFilter, InboundFinish, InboundMessage, InboundMeta, InboundSource,
    InboundState, InsertOutcome, Mailbox, NewInbound,
};
pub use inbound_origins::InboundOrigin;
pub use issues::{Issue, IssueFilter, IssueState, IssueType, IssueUpdate, NewIssue};
pub use leases::{Lease, LeaseId, LeaseTimes};
pub use merge_requests::{Commit, MergeRequest, MergeRequestState, NewMergeRequest};
pub use metrics::StateCount;
pub use notes::{NewNote, Note, Noteable, Subscription};
pub use notifications::{
    CreatedNotification, NewSentNotification, ReplyKey, SentNotification, reply_key_hash,
};
pub use outbox::{EnqueueOutcome, NewOutboxMail, OutboxFilter, OutboxMail, OutboxState};
/// The handler and error kinds recorded on inbound messages, as stored.
pub use postern_vocab::{ErrorKind, HandlerKind};
pub use project_policy::ProjectSenderPolicy;
pub use projects::{
    CustomEmailVerificationState, Member, NewProject, Project, ProjectUpdate, Role,
    ServiceDeskSettings, Visibility,
};
pub use raw_files::EXTERNAL_FROM_BYTES;
pub use search::{
    DEFAULT_PER_PAGE, IssueQuery, IssueSort, IssueVisibility, MAX_DOCUMENT_CHARS, MAX_PAGE,
    MAX_PER_PAGE, MAX_PHRASE_WORDS, MAX_QUERY_CHARS, MAX_TERMS, Page, SearchText,
};
pub use sessions::WebSession;
pub use settings::Setting;
pub use store::{Backend, Store, StoreOptions};
pub use time::Timestamp;
pub use token_key::TokenKey;
pub use tx::Tx;
pub use upload_bytes::StagedUploads;
pub use uploads::{NewUpload, Upload, UploadReference};
pub use users::{NewUser, SUPPORT_BOT_USERNAME, User, UserEmail, UserKind, UserState};
