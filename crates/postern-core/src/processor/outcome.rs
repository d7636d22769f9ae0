//! What became of one message ([`ReceiveOutcome`]), as `postern receive` prints it, the log's
//! `message_finished` line shows it, `/metrics` counts it and the store keeps it (as JSON on
//! the message). Its words are enums, printed as their snake_case names.

use postern_store::InboundState;
use postern_vocab::{ErrorKind, HandlerKind};
use serde::{Deserialize, Serialize};

use crate::authentication::AuthenticationRecord;

/// How the attempt to receive one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A handler changed the tracker.
    Processed,
    /// Refused for good, with an error kind (and maybe a reject notice).
    Rejected,
    /// Automatic mail: stored, never answered.
    Ignored,
    /// Already stored; the first copy's outcome is in `first_outcome`.
    Duplicate,
    /// Stored; processing failed for now and is tried again.
    Queued,
    /// Stored and set aside (see [`InboundState::Quarantined`]).
    Quarantined,
}

impl Outcome {
    /// The snake_case name, as in JSON, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Rejected => "rejected",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
            Outcome::Queued => "queued",
            Outcome::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one message, as `postern receive` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveOutcome {
    /// The stored message (the first copy, for duplicates).
    pub inbound_id: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// The handler that ran.
    pub handler: Option<HandlerKind>,
    /// The error kind, for rejected, ignored, queued and quarantined messages.
    pub error: Option<ErrorKind>,
    /// The reason text.
    pub reason: Option<String>,
    /// What was created.
    pub created: Option<Created>,
    /// Whether a reject notice was queued for the sender.
    pub reject_notice_queued: bool,
    /// For duplicates: the outcome of the first copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_outcome: Option<Outcome>,
    /// What sender authentication found, when the instance verifies senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<AuthenticationRecord>>,
}

/// A record created by a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// `issue`, `ticket`, `merge_request` or `note`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The project's full path.
    pub project: String,
    /// The or merge request's number in the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iid: Option<i64>,
    /// The comment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<i64>,
}

pub(super) fn queued_outcome(id: i64, reason: String) -> ReceiveOutcome {
    ReceiveOutcome {
        inbound_id: id,
        outcome: Outcome::Queued,
        handler: None,
        error: Some(ErrorKind::TemporaryFailure),
        reason: Some(reason),
        created: None,
        reject_notice_queued: false,
        first_outcome: None,
        authentication: None,
    }
}

pub(crate) fn quarantined_outcome(id: i64, reason: String) -> ReceiveOutcome {
    ReceiveOutcome {
        inbound_id: id,
        outcome: Outcome::Quarantined,
        handler: None,
        error: Some(ErrorKind::Quarantined),
        reason: Some(reason),
        created: None,
        reject_notice_queued: false,
        first_outcome: None,
        authentication: None,
    }
}

pub(super) fn is_finished(state: InboundState) -> bool {
    matches!(
        state,
        InboundState::Processed | InboundState::Rejected | InboundState::Ignored
    )
}

/// A duplicate's outcome: the first copy's, read from the JSON stored with it (nothing of it
/// when that is missing or unreadable).
pub(super) fn duplicate_outcome(first_id: i64, stored: Option<String>) -> ReceiveOutcome {
    let first: Option<ReceiveOutcome> = stored.and_then(|json| serde_json::from_str(&json).ok());
    ReceiveOutcome {
        inbound_id: first_id,
        outcome: Outcome::Duplicate,
        handler: first.as_ref().and_then(|f| f.handler),
        error: first.as_ref().and_then(|f| f.error),
        reason: first.as_ref().and_then(|f| f.reason.clone()),
        created: first.as_ref().and_then(|f| f.created.clone()),
        reject_notice_queued: false,
        authentication: first.as_ref().and_then(|f| f.authentication.clone()),
        first_outcome: first.map(|f| f.outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_and_printed_ones() {
        let outcome = quarantined_outcome(7, "disk full".to_owned());
        let json = serde_json::to_value(&outcome).expect("serialises");
        assert_eq!(json["outcome"], "quarantined");
        assert_eq!(json["error"], "quarantined");
        assert_eq!(json["handler"], serde_json::Value::Null);
        let read: ReceiveOutcome = serde_json::from_value(json).expect("reads its own JSON");
        assert_eq!(read, outcome);
        for outcome in [Outcome::Processed, Outcome::Duplicate, Outcome::Queued] {
            let json = serde_json::to_string(&outcome).expect("serialises");
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }
}
