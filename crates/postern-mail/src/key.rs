//! Finding the mail key of a message: which header carries it, in GitLab's order
//! (`MailKey.each_candidate`,
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/gems/gitlab-email_handler/lib/gitlab/email_handler/mail_key.rb>).
//!
//! The scan stops at the **first** candidate that yields a key, even if that key later routes
//! nowhere: `To: incoming+!!!@…` is an unknown email although a later `Delivered-To` may be valid.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::address::AddressTemplate;
use crate::message::Email;

/// The header a mail key was found in, serialised as the header's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeySource {
    /// A parsed `To` address.
    #[serde(rename = "To")]
    To,
    /// A `References` message id of the form `reply-KEY@host`.
    #[serde(rename = "References")]
    References,
    /// A raw `Delivered-To` value.
    #[serde(rename = "Delivered-To")]
    DeliveredTo,
    /// A raw `X-Delivered-To` value.
    #[serde(rename = "X-Delivered-To")]
    XDeliveredTo,
    /// A raw `Envelope-To` value.
    #[serde(rename = "Envelope-To")]
    EnvelopeTo,
    /// A raw `X-Envelope-To` value.
    #[serde(rename = "X-Envelope-To")]
    XEnvelopeTo,
    /// The `for <…>` clause of a `Received` header.
    #[serde(rename = "Received")]
    Received,
    /// A raw `X-Original-To` value.
    #[serde(rename = "X-Original-To")]
    XOriginalTo,
    /// A raw `X-Forwarded-To` value.
    #[serde(rename = "X-Forwarded-To")]
    XForwardedTo,
    /// A parsed `Cc` address.
    #[serde(rename = "Cc")]
    Cc,
}

impl KeySource {
    /// The header name, as written in mail.
    pub fn header_name(self) -> &'static str {
        match self {
            KeySource::To => "To",
            KeySource::References => "References",
            KeySource::DeliveredTo => "Delivered-To",
            KeySource::XDeliveredTo => "X-Delivered-To",
            KeySource::EnvelopeTo => "Envelope-To",
            KeySource::XEnvelopeTo => "X-Envelope-To",
            KeySource::Received => "Received",
            KeySource::XOriginalTo => "X-Original-To",
            KeySource::XForwardedTo => "X-Forwarded-To",
            KeySource::Cc => "Cc",
        }
    }
}

/// A key found in a message, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailKey {
    /// The key itself, e.g. `59d8df8370b7e95c5a49fbf86aeb2c93` or `group-project-7-glimt-x-issue`.
    pub key: String,
    /// The header it came from.
    pub source: KeySource,
}

/// Service Desk custom email addresses, which only the store knows (GitLab's `CustomEmail`,
/// <https://gitlab.com/gitlab-org/gitlab/-/blob/master/gems/gitlab-email_handler/lib/gitlab/email_handler/custom_email.rb>).
///
/// The scan asks this for each `To` address. Implementations answer from the database; the pure
/// parts of the rule are [`custom_email_reply_parts`] and [`strip_verify`].
pub trait CustomEmailLookup {
    /// Step 1: `address` is `support+REPLYKEY@acme.com` and `support@acme.com` is some project's
    /// custom email → the reply key.
    fn reply_key(&self, address: &str) -> Option<String>;
    /// Step 3: `address` (with `+verify` removed) is some project's custom email → that project's
    /// default Service Desk key `<full_path_slug>-<id>-issue-`.
    fn service_desk_key(&self, address: &str) -> Option<String>;
    /// Step 3 for an address that had `+verify` (given with it removed): the key of the
    /// project whose custom email it is, when mail to its `+verify` form should reach it (a
    /// verification is pending). By default the same answer as [`Self::service_desk_key`].
    fn verification_key(&self, address: &str) -> Option<String> {
        self.service_desk_key(address)
    }
}

/// What to look for: the configured address and host, and optionally custom emails.
#[derive(Clone, Copy, Default)]
pub struct KeyScan<'a> {
    /// The mailbox's address template; `None` means no address configured (no key from any address).
    pub template: Option<&'a AddressTemplate>,
    /// `gitlab.host` (no port), for `References: <reply-KEY@host>`; `None` disables that rule.
    pub host: Option<&'a str>,
    /// Custom Service Desk emails, consulted for `To` addresses only.
    pub custom_emails: Option<&'a dyn CustomEmailLookup>,
}

/// Scans the candidate headers in GitLab's order and returns the first key found.
pub fn find_mail_key(email: &Email<'_>, scan: &KeyScan<'_>) -> Option<MailKey> {
    let found = |key: String, source: KeySource| Some(MailKey { key, source });
    let wildcard = |value: &str| scan.template.and_then(|t| t.key_from_address(value));

    for address in email.to() {
        let key = scan
            .custom_emails
            .and_then(|custom| custom.reply_key(&address))
            .or_else(|| wildcard(&address))
            .or_else(|| {
                scan.custom_emails.and_then(|custom| {
                    let stripped = strip_verify(&address);
                    if stripped == address {
                        custom.service_desk_key(&address)
                    } else {
                        custom.verification_key(&stripped)
                    }
                })
            });
        if let Some(key) = key {
            return found(key, KeySource::To);
        }
    }
    if let Some(host) = scan.host {
        for id in email.references() {
            if let Some(key) = key_from_fallback_message_id(&id, host) {
                return found(key, KeySource::References);
            }
        }
    }
    let raw_sources = [
        ("Delivered-To", KeySource::DeliveredTo),
        ("X-Delivered-To", KeySource::XDeliveredTo),
        ("Envelope-To", KeySource::EnvelopeTo),
        ("X-Envelope-To", KeySource::XEnvelopeTo),
    ];
    for (header, source) in raw_sources {
        for value in email.header_values(header) {
            if let Some(key) = wildcard(&value) {
                return found(key, source);
            }
        }
    }
    for recipient in received_recipients(email) {
        if let Some(key) = wildcard(&recipient) {
            return found(key, KeySource::Received);
        }
    }
    let late_raw_sources = [
        ("X-Original-To", KeySource::XOriginalTo),
        ("X-Forwarded-To", KeySource::XForwardedTo),
    ];
    for (header, source) in late_raw_sources {
        for value in email.header_values(header) {
            if let Some(key) = wildcard(&value) {
                return found(key, source);
            }
        }
    }
    for address in email.cc() {
        if let Some(key) = wildcard(&address) {
            return found(key, KeySource::Cc);
        }
    }
    None
}

/// The recipient named in each `Received` header's first `for <…>` clause, top header first.
pub fn received_recipients(email: &Email<'_>) -> Vec<String> {
    // Linear-time by construction (the `regex` crate never backtracks), which matters: GitLab's
    // receiver test feeds `for <<` repeated 100 000 times.
    static FOR_CLAUSE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"for\s+<([^<]+)>").expect("constant pattern"));
    email
        .header_values("Received")
        .iter()
        .filter_map(|value| FOR_CLAUSE.captures(value))
        .filter_map(|captures| captures.get(1).map(|m| m.as_str().to_owned()))
        .collect()
}

/// `reply-KEY@host` → `KEY` (GitLab's `key_from_fallback_message_id`); other hosts give nothing.
pub fn key_from_fallback_message_id(message_id: &str, host: &str) -> Option<String> {
    let key = message_id
        .strip_prefix("reply-")?
        .strip_suffix(host)?
        .strip_suffix('@')?;
    // `(.+)` is greedy and may itself contain `@`; it must not be empty.
    (!key.is_empty() && !key.contains('\n')).then(|| key.to_owned())
}

/// The message id postern puts first in `References` of a notification carrying `key`.
pub fn fallback_message_id(key: &str, host: &str) -> String {
    format!("reply-{key}@{host}")
}

/// Removes the first `+verify` from an address: GitLab sends the custom-email verification mail
/// to `support+verify@…` and matches what is left against the projects' custom emails.
pub fn strip_verify(address: &str) -> String {
    address.replacen("+verify", "", 1)
}

/// The pure half of GitLab's `CustomEmail.key_from_reply_address` (a reply to a custom email
/// keeps its key as a sub-address when the provider forwards it):
/// `support+REPLYKEY@acme.com` → `(REPLYKEY, "support@acme.com")` when the key has a
/// reply-key shape and the remaining address is a plausible custom email.
/// The caller still checks that the address is some project's custom email.
pub fn custom_email_reply_parts(address: &str) -> Option<(String, String)> {
    static REPLY_PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(r"\+({})@", crate::route::FULL_REPLY_KEY_PATTERN))
            .expect("constant pattern")
    });
    // GitLab's `\A(?>[a-zA-Z0-9]+|[\-._]+){1,255}@[\w\-.]{1,255}\.{1}[a-zA-Z]{2,63}\z`, with the
    // atomic group flattened (it only bounds backtracking) and Ruby's ASCII `\w` spelled out.
    static CUSTOM_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\A[a-zA-Z0-9\-._]+@[A-Za-z0-9_\-.]{1,255}\.[a-zA-Z]{2,63}\z")
            .expect("constant pattern")
    });
    let captures = REPLY_PART.captures(address)?;
    let key = captures.get(1)?;
    let whole = captures.get(0)?;
    let mut custom = String::with_capacity(address.len());
    custom.push_str(&address[..whole.start()]);
    custom.push('@');
    custom.push_str(&address[whole.end()..]);
    CUSTOM_EMAIL
        .is_match(&custom)
        .then(|| (key.as_str().to_owned(), custom))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_with(template: &AddressTemplate) -> KeyScan<'_> {
        KeyScan {
            template: Some(template),
            host: Some("localhost"),
            custom_emails: None,
        }
    }

    #[test]
    fn to_wins_over_later_headers() {
        let template = AddressTemplate::new("incoming+%{key}@example.com");
        let raw = b"To: incoming+first@example.com\r\nDelivered-To: incoming+second@example.com\r\n\r\nhi";
        let email = Email::parse(raw);
        let key = find_mail_key(&email, &scan_with(&template));
        assert_eq!(
            key,
            Some(MailKey {
                key: "first".into(),
                source: KeySource::To
            })
        );
    }

    #[test]
    fn raw_values_with_display_names_do_not_match() {
        let template = AddressTemplate::new("incoming+%{key}@example.com");
        let raw = b"Delivered-To: \"X\" <incoming+k@example.com>\r\nX-Original-To: incoming+k2@example.com\r\n\r\nhi";
        let email = Email::parse(raw);
        let key = find_mail_key(&email, &scan_with(&template)).map(|k| (k.key, k.source));
        assert_eq!(key, Some(("k2".into(), KeySource::XOriginalTo)));
    }

    #[test]
    fn received_for_clause_is_linear_and_exact() {
        let template = AddressTemplate::new("incoming+%{key}@example.com");
        let mut raw = b"Received: from a by b ".to_vec();
        raw.extend(b"for <<".repeat(100_000));
        raw.extend(b"\r\nReceived: by x for <incoming+r@example.com>; Thu\r\n\r\nbody");
        let email = Email::parse(&raw);
        let key = find_mail_key(&email, &scan_with(&template)).map(|k| (k.key, k.source));
        assert_eq!(key, Some(("r".into(), KeySource::Received)));
    }

    #[test]
    fn fallback_message_id_needs_the_exact_host() {
        assert_eq!(
            key_from_fallback_message_id("reply-abc@localhost", "localhost").as_deref(),
            Some("abc")
        );
        assert_eq!(
            key_from_fallback_message_id("reply-abc@otherhost", "localhost"),
            None
        );
        assert_eq!(
            key_from_fallback_message_id("reply-@localhost", "localhost"),
            None
        );
        assert_eq!(
            key_from_fallback_message_id("issue_1@localhost", "localhost"),
            None
        );
    }

    #[test]
    fn custom_email_reply_address_is_split() {
        let parts = custom_email_reply_parts("support+59d8df8370b7e95c5a49fbf86aeb2c93@acme.com");
        assert_eq!(
            parts,
            Some((
                "59d8df8370b7e95c5a49fbf86aeb2c93".into(),
                "support@acme.com".into()
            ))
        );
        assert_eq!(custom_email_reply_parts("support+hello@acme.com"), None);
        assert_eq!(strip_verify("support+verify@acme.com"), "support@acme.com");
    }
}
