//! Who a mail comes from, for every check that it comes from a person.
//!
//! GitLab identifies the sender by `Reply-To` first, then `From`. `Reply-To` is whatever the
//! sender wrote: nobody signs or checks it, so `From: mallory@evil.test`, `Reply-To:
//! bob@acme.com` passed as Bob. postern identifies senders by the first `From` address, the
//! identity DMARC protects at the receiving MTA and in sender authentication, and uses
//! `Reply-To` only where an answer to the mail is sent (the Service Desk thank-you).
//!
//! What sender authentication (DKIM, SPF, DMARC) found is handed in as a [`SenderTrust`]: this
//! crate does not compute it, it only asks [`SenderTrust::policy_passes`] where a rule needs
//! more than the `From` check.

use postern_mail::Email;
use postern_store::User;
use serde::{Deserialize, Serialize};

/// What sender authentication says of a message's `From`, as far as postern's rules need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderTrust {
    /// No verdict was computed (no authentication configured): the `From` check alone decides,
    /// as under the policy `off`.
    #[default]
    FromCheckOnly,
    /// The instance's or project's policy passes for this message (DMARC pass or aligned DKIM
    /// pass, as the policy asks).
    PolicyPasses,
    /// The policy fails: `From` may be forged. Rules that rest on `From` alone refuse.
    PolicyFails,
}

impl SenderTrust {
    /// Whether the rules that rest on `From` alone may act on this message.
    pub fn policy_passes(self) -> bool {
        !matches!(self, SenderTrust::PolicyFails)
    }
}

/// The sender's identity: the first `From` address (never `Reply-To` or `Sender`).
pub fn identity(email: &Email<'_>) -> Option<String> {
    email.from().into_iter().next()
}

/// Where an answer to this mail goes: the first `Reply-To` address, else the first `From`
/// address (GitLab's `from_address`). Never used to decide who the sender is.
pub fn answer_address(email: &Email<'_>) -> Option<String> {
    email
        .reply_to()
        .into_iter()
        .next()
        .or_else(|| identity(email))
}

/// Whether the mail's `From` is one of `user`'s verified addresses.
pub fn is_from(email: &Email<'_>, user: &User) -> bool {
    identity(email).is_some_and(|address| user.has_verified_email(&address))
}

/// Whether the mail's `From` is one of `participants` (compared case-insensitively, as
/// addresses are stored folded).
pub fn is_participant(email: &Email<'_>, participants: &[String]) -> bool {
    identity(email).is_some_and(|address| {
        let folded = address.to_lowercase();
        participants
            .iter()
            .any(|participant| participant.to_lowercase() == folded)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_from_not_reply_to() {
        let raw = b"From: Mallory <mallory@evil.test>\r\nReply-To: bob@acme.com\r\n\r\nhi\r\n";
        let email = Email::parse(raw);
        assert_eq!(identity(&email).as_deref(), Some("mallory@evil.test"));
        assert_eq!(answer_address(&email).as_deref(), Some("bob@acme.com"));
        assert!(is_participant(&email, &["Mallory@Evil.test".to_owned()]));
        assert!(!is_participant(&email, &["bob@acme.com".to_owned()]));
    }

    #[test]
    fn no_from_is_no_one() {
        let raw = b"Reply-To: bob@acme.com\r\nSender: bob@acme.com\r\n\r\nhi\r\n";
        let email = Email::parse(raw);
        assert_eq!(identity(&email), None);
        assert_eq!(answer_address(&email).as_deref(), Some("bob@acme.com"));
    }

    #[test]
    fn only_a_failing_policy_refuses() {
        assert!(SenderTrust::default().policy_passes());
        assert!(SenderTrust::PolicyPasses.policy_passes());
        assert!(!SenderTrust::PolicyFails.policy_passes());
    }
}
