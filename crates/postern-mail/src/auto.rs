//! Recognising automatic mail: auto-replies, bounces, bulk mail.
//!
//! Automatic mail is stored but never acted on and never answered: answering it is how mail loops
//! and backscatter start. GitLab checks two headers; postern adds what careful peers (Discourse,
//! Zammad, RT) check. `Precedence: list` alone is *not* automatic (people reply from mailing
//! lists), and `X-Auto-Response-Suppress` says what the sender wants, not what the mail is.

use serde::Serialize;

use crate::message::Email;

/// The header postern puts on every mail it sends. Mail that comes back carrying it (an
/// auto-forward, a bounce that quotes headers, another postern) is automatic: answering it
/// would start a loop.
pub const LOOP_HEADER: &str = "X-Postern-Loop";

/// Why a message counts as automatic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoReason {
    /// `Auto-Submitted` with any value other than exactly `no` (RFC 3834; GitLab).
    AutoSubmitted,
    /// `X-Autoreply: yes` (GitLab).
    XAutoreply,
    /// `X-Autorespond` present (older auto-responders).
    XAutorespond,
    /// `Precedence: bulk`, `junk` or `auto_reply`.
    Precedence,
    /// A delivery or disposition report (`multipart/report`).
    DeliveryReport,
    /// `Return-Path: <>`: bounces and auto-replies use the null sender.
    NullReturnPath,
    /// Sent by `MAILER-DAEMON`.
    MailerDaemon,
    /// Carries postern's own [`LOOP_HEADER`]: mail postern sent, come back.
    OwnLoop,
}

impl AutoReason {
    /// The snake_case name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoReason::AutoSubmitted => "auto_submitted",
            AutoReason::XAutoreply => "x_autoreply",
            AutoReason::XAutorespond => "x_autorespond",
            AutoReason::Precedence => "precedence",
            AutoReason::DeliveryReport => "delivery_report",
            AutoReason::NullReturnPath => "null_return_path",
            AutoReason::MailerDaemon => "mailer_daemon",
            AutoReason::OwnLoop => "own_loop",
        }
    }

    /// Whether GitLab itself rejects mail for this reason (its two rules).
    pub fn is_gitlab_rule(self) -> bool {
        matches!(self, AutoReason::AutoSubmitted | AutoReason::XAutoreply)
    }
}

/// The first reason `email` is automatic, GitLab's rules first; `None` for mail from a person.
pub fn auto_generated(email: &Email<'_>) -> Option<AutoReason> {
    if email.has_header(LOOP_HEADER) {
        return Some(AutoReason::OwnLoop);
    }
    // GitLab compares the stripped value case-sensitively: `No` or an empty value are automatic.
    if let Some(value) = email.header_value("Auto-Submitted")
        && value.trim() != "no"
    {
        return Some(AutoReason::AutoSubmitted);
    }
    if email
        .header_value("X-Autoreply")
        .is_some_and(|value| value.trim() == "yes")
    {
        return Some(AutoReason::XAutoreply);
    }
    if email.has_header("X-Autorespond") {
        return Some(AutoReason::XAutorespond);
    }
    if email.header_values("Precedence").iter().any(|value| {
        let value = value.trim();
        ["bulk", "junk", "auto_reply"]
            .iter()
            .any(|automatic| value.eq_ignore_ascii_case(automatic))
    }) {
        return Some(AutoReason::Precedence);
    }
    if email.content_type().as_deref() == Some("multipart/report") {
        return Some(AutoReason::DeliveryReport);
    }
    if email
        .header_values("Return-Path")
        .iter()
        .any(|value| is_null_path(value))
    {
        return Some(AutoReason::NullReturnPath);
    }
    let from_daemon = email
        .from()
        .iter()
        .chain(email.sender().iter())
        .any(|address| {
            address
                .split('@')
                .next()
                .is_some_and(|local| local.eq_ignore_ascii_case("mailer-daemon"))
        });
    if from_daemon {
        return Some(AutoReason::MailerDaemon);
    }
    None
}

/// `<>` with optional white space and comments-free content.
fn is_null_path(value: &str) -> bool {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    compact == "<>"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(headers: &str) -> Option<AutoReason> {
        let raw = format!("{headers}From: a@example.com\r\n\r\nbody");
        auto_generated(&Email::parse(raw.as_bytes()))
    }

    #[test]
    fn gitlab_rules() {
        assert_eq!(
            reason("Auto-Submitted: auto-replied\r\n"),
            Some(AutoReason::AutoSubmitted)
        );
        assert_eq!(reason("Auto-Submitted: no\r\n"), None);
        assert_eq!(reason("Auto-Submitted:  no \r\n"), None);
        assert_eq!(
            reason("Auto-Submitted: No\r\n"),
            Some(AutoReason::AutoSubmitted)
        );
        assert_eq!(
            reason("Auto-Submitted:\r\n"),
            Some(AutoReason::AutoSubmitted)
        );
        assert_eq!(reason("X-Autoreply: yes\r\n"), Some(AutoReason::XAutoreply));
        assert_eq!(reason("X-Autoreply: no\r\n"), None);
    }

    #[test]
    fn peer_rules() {
        assert_eq!(reason("Precedence: bulk\r\n"), Some(AutoReason::Precedence));
        assert_eq!(reason("Precedence: Junk\r\n"), Some(AutoReason::Precedence));
        assert_eq!(
            reason("Precedence: auto_reply\r\n"),
            Some(AutoReason::Precedence)
        );
        assert_eq!(reason("Precedence: list\r\n"), None);
        assert_eq!(
            reason("X-Autorespond: vacation\r\n"),
            Some(AutoReason::XAutorespond)
        );
        assert_eq!(
            reason("Return-Path: <>\r\n"),
            Some(AutoReason::NullReturnPath)
        );
        assert_eq!(reason("Return-Path: <a@example.com>\r\n"), None);
        assert_eq!(
            reason("Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"),
            Some(AutoReason::DeliveryReport)
        );
        assert_eq!(reason("X-Auto-Response-Suppress: All\r\n"), None);
        assert_eq!(
            reason("X-Postern-Loop: localhost\r\n"),
            Some(AutoReason::OwnLoop)
        );
        let daemon = b"From: MAILER-DAEMON@mx.example.com\r\n\r\nbounce";
        assert_eq!(
            auto_generated(&Email::parse(daemon)),
            Some(AutoReason::MailerDaemon)
        );
    }
}
