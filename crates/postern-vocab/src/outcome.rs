//! What became of an inbound message, in the words every crate records it with: which handler
//! took it ([`HandlerKind`]) and why it was refused or failed ([`ErrorKind`]).
//!
//! The receiver decides them (`postern-mail`), processing and the GitLab companion record them
//! (`postern-store`), `postern receive`, `postern inspect`, the mail desk and `/metrics` show
//! them. Each is stored and printed as its snake_case name, which is the stable contract:
//! renaming a variant never changes stored data or JSON.
//!
//! GitLab's error classes are in
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email.rb>, its reject texts in
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/failure_handler.rb>.

use std::fmt;

/// A name that is none of an enum's variants (a value read from outside, or stored by a newer
/// version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Which enum.
    pub of: &'static str,
    /// The name, cut to 64 bytes.
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.of, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// Declares a fieldless enum named by snake_case text: serde names, `as_str`, `FromStr`,
/// `Display`, and (feature `sqlx`) a backend-generic `sqlx::Decode` from text. Values are bound
/// as `.as_str()`, so no `Encode` is needed.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in the store, JSON, logs and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName {
                        of: stringify!($name),
                        name: s.chars().take(64).collect(),
                    }),
                }
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

named_enum! {
    /// What took a message: one of the receiver's six handlers, or (companion mode) the way it
    /// was handed to GitLab.
    pub enum HandlerKind {
        /// Reply to a notification → comment.
        CreateNote = "create_note",
        /// Mail to a project's new-issue address → issue.
        CreateIssue = "create_issue",
        /// Mail to an issue's address → comment on that issue.
        CreateNoteOnIssuable = "create_note_on_issuable",
        /// Mail to the unsubscribe address of a notification.
        Unsubscribe = "unsubscribe",
        /// Mail to a project's new-merge-request address → merge request.
        CreateMergeRequest = "create_merge_request",
        /// Mail to a project's Service Desk address → ticket.
        ServiceDesk = "service_desk",
        /// Companion mode: POSTed to GitLab's internal mail_room API.
        Webhook = "webhook",
        /// Companion mode: pushed onto GitLab's Sidekiq queue.
        Sidekiq = "sidekiq",
    }
}

named_enum! {
    /// Why a message was refused or could not be processed: GitLab's error classes (a permanent
    /// refusal, stored as rejected with this kind; where GitLab sends a reject notice, postern
    /// queues one, never to automatic mail), postern's own refusals, and the failures processing
    /// and the GitLab companion record on a message they retry or set aside.
    pub enum ErrorKind {
        /// The raw message is blank, or the note text is empty after trimming.
        EmptyEmail = "empty_email",
        /// Automatic mail (auto-reply, bounce, bulk): stored, ignored, never answered.
        AutoGeneratedEmail = "auto_generated_email",
        /// No key, or a key no handler accepts.
        UnknownIncomingEmail = "unknown_incoming_email",
        /// A reply or unsubscribe key that matches no sent notification.
        SentNotificationNotFound = "sent_notification_not_found",
        /// No such project, wrong slug, Service Desk off, or no read access.
        ProjectNotFound = "project_not_found",
        /// Unknown token, or the sender is not one of the recipient's verified addresses.
        UserNotFound = "user_not_found",
        /// The author is blocked.
        UserBlocked = "user_blocked",
        /// The author may not do this.
        UserNotAuthorized = "user_not_authorized",
        /// The issue or merge request the reply belongs to no longer exists.
        NoteableNotFound = "noteable_not_found",
        /// The comment failed validation.
        InvalidNote = "invalid_note",
        /// The issue failed validation.
        InvalidIssue = "invalid_issue",
        /// The merge request failed validation.
        InvalidMergeRequest = "invalid_merge_request",
        /// Patches that do not apply.
        InvalidAttachment = "invalid_attachment",
        /// Too large to process (or, in companion mode, GitLab said so).
        EmailTooLarge = "email_too_large",
        /// Over one of postern's limits on what one message may do (attachments, patches,
        /// quick actions); the reason names the limit. postern's own kind.
        LimitExceeded = "limit_exceeded",
        /// The mail would act as a postern user, but its `From` is not authenticated enough
        /// for the sender-authentication policy (DMARC fails under `dmarc`, no DMARC or aligned
        /// DKIM pass under `require`). postern's own kind. No notice: the sender may be forged.
        SenderNotAuthenticated = "sender_not_authenticated",
        /// A failure that is not the sender's fault and that retrying will not fix (a bug).
        /// postern's own kind: GitLab tracks these as exceptions. No notice is sent.
        Internal = "internal_error",
        /// Processing failed in a way that may pass (store busy, disk full); retried.
        TemporaryFailure = "temporary_failure",
        /// The same temporary failure too many times in a row: quarantined.
        RepeatedFailure = "repeated_failure",
        /// The store refused even to store the message as it came: quarantined as bytes.
        StoreRefused = "store_refused",
        /// What `postern receive` reports for a message set aside; the stored kind says why.
        Quarantined = "quarantined",
        /// Companion mode: no token could be made for GitLab's internal API.
        WebhookToken = "webhook_token",
        /// Companion mode: GitLab could not be reached.
        WebhookUnreachable = "webhook_unreachable",
        /// Companion mode: GitLab refused this message (a 4xx other than too large).
        WebhookRefused = "webhook_refused",
        /// Companion mode: GitLab refused the token (401/403).
        WebhookUnauthorized = "webhook_unauthorized",
        /// Companion mode: GitLab answered with an unexpected status.
        WebhookStatus = "webhook_status",
        /// Companion mode: the Sidekiq job could not be built.
        SidekiqJob = "sidekiq_job",
        /// Companion mode: GitLab's Redis could not be reached.
        RedisUnavailable = "redis_unavailable",
        /// Companion mode: another postern instance watching the same mailbox holds the
        /// delivery of this message; it is waited for, then recorded as handled there (or
        /// delivered here if that instance went away). Not an error.
        ClaimedByAnotherInstance = "claimed_by_another_instance",
    }
}

impl ErrorKind {
    /// GitLab's reject text for kinds with a fixed text (FailureHandler); `None` where the text
    /// is the error's own message or where no notice is sent.
    pub fn fixed_reason(self) -> Option<&'static str> {
        Some(match self {
            ErrorKind::EmptyEmail => {
                "It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies."
            }
            ErrorKind::UnknownIncomingEmail => {
                "We couldn't figure out what the email is for. Please create your issue or comment through the web interface."
            }
            ErrorKind::SentNotificationNotFound => {
                "We couldn't figure out what the email is in reply to. Please create your comment through the web interface."
            }
            ErrorKind::ProjectNotFound => {
                "We couldn't find the project. Please check if there's any typo."
            }
            ErrorKind::UserNotFound => {
                "We couldn't figure out what user corresponds to the email. Please create your comment through the web interface."
            }
            ErrorKind::UserBlocked => {
                "Your account has been blocked. If you believe this is in error, contact a staff member."
            }
            ErrorKind::UserNotAuthorized => {
                "You are not allowed to perform this action. If you believe this is in error, contact a staff member."
            }
            ErrorKind::NoteableNotFound => {
                "The thread you are replying to no longer exists, perhaps it was deleted? If you believe this is in error, contact a staff member."
            }
            ErrorKind::EmailTooLarge => {
                "We couldn't process your email because it is too large. Please create your issue or comment through the web interface."
            }
            _ => return None,
        })
    }

    /// Whether the reject notice offers a retry (`Reply-To` set to the original address).
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            ErrorKind::EmptyEmail
                | ErrorKind::InvalidNote
                | ErrorKind::InvalidIssue
                | ErrorKind::InvalidMergeRequest
        )
    }

    /// Whether a refusal of this kind is answered with a reject notice at all: GitLab's
    /// refusals are, except automatic mail; postern's own refusals and failures are not.
    pub fn sends_reject_notice(self) -> bool {
        matches!(
            self,
            ErrorKind::EmptyEmail
                | ErrorKind::UnknownIncomingEmail
                | ErrorKind::SentNotificationNotFound
                | ErrorKind::ProjectNotFound
                | ErrorKind::UserNotFound
                | ErrorKind::UserBlocked
                | ErrorKind::UserNotAuthorized
                | ErrorKind::NoteableNotFound
                | ErrorKind::InvalidNote
                | ErrorKind::InvalidIssue
                | ErrorKind::InvalidMergeRequest
                | ErrorKind::InvalidAttachment
                | ErrorKind::EmailTooLarge
                | ErrorKind::LimitExceeded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(*kind));
            let json = serde_json::to_string(kind).expect("a name serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                serde_json::from_str::<ErrorKind>(&json).expect("its own name"),
                *kind
            );
        }
        for handler in HandlerKind::ALL {
            assert_eq!(handler.as_str().parse::<HandlerKind>(), Ok(*handler));
        }
        assert_eq!(ErrorKind::Internal.as_str(), "internal_error");
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it() {
        let error = "no_such_kind".parse::<ErrorKind>().expect_err("not a kind");
        assert_eq!(error.to_string(), "unknown ErrorKind \"no_such_kind\"");
    }

    #[test]
    fn only_user_fixable_errors_offer_a_retry() {
        assert!(ErrorKind::EmptyEmail.can_retry());
        assert!(!ErrorKind::UserNotFound.can_retry());
        assert!(!ErrorKind::AutoGeneratedEmail.sends_reject_notice());
        assert!(!ErrorKind::TemporaryFailure.sends_reject_notice());
        assert!(ErrorKind::LimitExceeded.sends_reject_notice());
    }
}
