//! Why a message was refused: a [`Rejection`] names its [`ErrorKind`] (GitLab's error classes
//! and their reject texts, defined with the rest of the shared vocabulary in `postern-vocab`)
//! and carries its text; [`ProcessError`] draws the line between permanent refusals and
//! temporary failures.

/// GitLab's error classes and postern's own, with GitLab's reject texts: one vocabulary with
/// the receiver's decision (`postern_mail::receiver`) and the store's records.
pub use postern_vocab::ErrorKind;

/// A refusal with its reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which refusal.
    pub kind: ErrorKind,
    /// The text the sender is told (and the store records, unless `recorded` says more).
    pub reason: String,
    /// What the store, the mail desk and `postern receive` record instead of `reason`, when
    /// the operator should learn more than the sender may (a Service Desk that is off is "project
    /// not found" to the sender, as in GitLab, which does not reveal that the project exists).
    pub recorded: Option<String>,
}

impl Rejection {
    /// A refusal with the kind's fixed text (or the kind's name when it has none).
    pub fn new(kind: ErrorKind) -> Rejection {
        Rejection {
            kind,
            reason: kind.fixed_reason().unwrap_or(kind.as_str()).to_owned(),
            recorded: None,
        }
    }

    /// A refusal with its own text (validation errors, patch failures).
    pub fn with_reason(kind: ErrorKind, reason: impl Into<String>) -> Rejection {
        Rejection {
            kind,
            reason: reason.into(),
            recorded: None,
        }
    }

    /// GitLab's `verify_record!` text: `The <record> could not be created for the following
    /// reasons:` and one `- <error>` line per validation error.
    pub fn invalid_record(kind: ErrorKind, record_name: &str, errors: &[String]) -> Rejection {
        let mut reason =
            format!("The {record_name} could not be created for the following reasons:");
        for error in errors {
            reason.push_str("\n\n- ");
            reason.push_str(error);
        }
        Rejection {
            kind,
            reason,
            recorded: None,
        }
    }

    /// This refusal, recorded for the operator as `recorded` (see [`Rejection::recorded`]).
    pub fn recorded_as(mut self, recorded: impl Into<String>) -> Rejection {
        self.recorded = Some(recorded.into());
        self
    }

    /// The text the store and the mail desk keep.
    pub fn recorded_reason(&self) -> &str {
        self.recorded.as_deref().unwrap_or(&self.reason)
    }
}

impl From<ErrorKind> for Rejection {
    fn from(kind: ErrorKind) -> Self {
        Rejection::new(kind)
    }
}

/// Why processing could not finish: a permanent refusal, or a temporary failure to retry.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The message is refused for good.
    #[error("rejected ({}): {}", .0.kind.as_str(), .0.reason)]
    Rejected(Rejection),
    /// Something outside the message failed (database, disk, git); nothing was written, and
    /// trying again later can succeed.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// A failure that retrying will not fix and that is not the sender's fault (a bug, a broken
    /// invariant). Recorded on the message; no notice is sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Rejection> for ProcessError {
    fn from(rejection: Rejection) -> Self {
        ProcessError::Rejected(rejection)
    }
}

/// Without randomness no token or Message-ID can be made; the system may give it again later.
impl From<postern_vocab::random::NoRandomness> for ProcessError {
    fn from(error: postern_vocab::random::NoRandomness) -> Self {
        ProcessError::Temporary(error.to_string())
    }
}

impl From<ErrorKind> for ProcessError {
    fn from(kind: ErrorKind) -> Self {
        ProcessError::Rejected(Rejection::new(kind))
    }
}

impl From<postern_store::StoreError> for ProcessError {
    fn from(error: postern_store::StoreError) -> Self {
        if error.is_temporary() {
            ProcessError::Temporary(error.to_string())
        } else {
            ProcessError::Internal(error.to_string())
        }
    }
}

/// What a change a person asked for (at the command line, on a settings page, through the API)
/// ends in when it is not made: a refusal whose text is for that person (`R`, one enum per
/// concern: [`crate::members::MemberRefusal`], [`crate::projects::ProjectRefusal`] …), or a
/// failure of the store or of git that is not theirs to fix.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<R> {
    /// The change cannot be made; the text is for the person.
    #[error(transparent)]
    Refused(R),
    /// The store or git failed.
    #[error(transparent)]
    Failed(ProcessError),
}

/// A refusal of a change a person asked for; its `Display` text is shown to them.
pub trait Refusal: std::fmt::Display {}

impl<R: Refusal> From<R> for ChangeError<R> {
    fn from(refusal: R) -> Self {
        ChangeError::Refused(refusal)
    }
}

impl<R> From<ProcessError> for ChangeError<R> {
    fn from(failure: ProcessError) -> Self {
        ChangeError::Failed(failure)
    }
}

impl<R> From<postern_store::StoreError> for ChangeError<R> {
    fn from(error: postern_store::StoreError) -> Self {
        ChangeError::Failed(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_record_text_matches_gitlab() {
        let rejection = Rejection::invalid_record(
            ErrorKind::InvalidIssue,
            "issue",
            &["Title can't be blank".to_owned()],
        );
        assert_eq!(
            rejection.reason,
            "The issue could not be created for the following reasons:\n\n- Title can't be blank"
        );
    }
}
