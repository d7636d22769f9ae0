//! Test support: test mail, queuing it, reading rows back, and transports for the races.

use std::sync::Mutex;
use std::time::Duration;

use postern_outbox::{DeliveryError, Outgoing, SmtpSettings, TlsMode, Transport};
use postern_store::{EnqueueOutcome, NewOutboxMail, OutboxMail, Store};
use postern_testkit::BoxError;
use postern_testkit::mailserver::MailServer;

/// The envelope sender of every test; bounces to it are dropped by the test Postfix.
pub const FROM: &str = "postern@example.test";

/// How long a test waits for Postfix to hand a mail to Dovecot.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(60);

/// A unique tag for one test's mail (the mailbox is shared by the tests of this binary).
pub fn tag() -> String {
    let random = postern_store::new_upload_secret().expect("random tag");
    format!("t{}", &random[..16])
}

/// A message exercising what transports must not touch: CRLF line ends, a folded header, 8-bit
/// UTF-8 in the body, an encoded-word subject, lines starting with `.` (SMTP dot-stuffing) and
/// `From ` (mbox escaping), trailing spaces and an empty last line.
pub fn message(tag: &str, to: &str) -> Vec<u8> {
    [
        "From: \"Postern Test\" <postern@example.test>",
        &format!("To: <{to}>"),
        &format!("Subject: =?UTF-8?B?w5xiZXIgZGVuIEJlcmc=?= {tag}"),
        "Date: Sat, 28 Nov 2026 16:37:00 +0000",
        &format!("Message-ID: <{tag}@postern.test>"),
        &format!("X-Postern-Test: {tag}"),
        "References: <issue_1@postern.test>",
        " <note_2@postern.test>",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Hello \u{2014} \u{fc}n\u{ef}code body.",
        ".a line starting with a dot",
        "..two dots",
        ".",
        "From the start of a line",
        "trailing spaces   ",
        "",
        "last line",
        "",
        "",
    ]
    .join("\r\n")
    .into_bytes()
}

/// Queues `raw` for `recipients`; returns the row id.
pub async fn enqueue(store: &Store, recipients: &[&str], raw: &[u8]) -> Result<i64, BoxError> {
    let mut tx = store.begin().await?;
    let outcome = tx
        .enqueue_outbox(&NewOutboxMail {
            kind: "notification".to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            raw: raw.to_vec(),
            inbound_id: None,
            dedupe_key: None,
            not_before: None,
        })
        .await?;
    tx.commit().await?;
    match outcome {
        EnqueueOutcome::Queued(id) => Ok(id),
        EnqueueOutcome::Duplicate(id) => Err(format!("unexpected duplicate of {id}").into()),
    }
}

/// The row, as stored now.
pub async fn row(store: &Store, id: i64) -> Result<OutboxMail, BoxError> {
    let mut tx = store.begin_read_only().await?;
    let mail = tx.outbox_mail(id).await?.ok_or("outbox row vanished")?;
    tx.commit().await?;
    Ok(mail)
}

/// Plain SMTP to the test Postfix on `port`, 10 s per step.
pub fn plain(port: u16) -> SmtpSettings {
    let mut settings = SmtpSettings::new("127.0.0.1", port, TlsMode::None, FROM);
    settings.timeout = Duration::from_secs(10);
    settings
}

/// `(header fields, body)` of a message: each field with its continuation lines, CRLF-joined.
pub fn split(raw: &[u8]) -> (Vec<Vec<u8>>, &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header/body separator");
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in raw[..end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(field)) => {
                field.extend_from_slice(b"\r\n");
                field.extend_from_slice(line);
            }
            _ => fields.push(line.to_vec()),
        }
    }
    (fields, &raw[end + 4..])
}

/// Asserts that `delivered` carries every header field of `sent` byte for byte and exactly
/// its body. The relay and the mailbox may only add trace fields in front.
pub fn assert_same_mail(sent: &[u8], delivered: &[u8]) {
    let (sent_fields, sent_body) = split(sent);
    let (delivered_fields, delivered_body) = split(delivered);
    for field in &sent_fields {
        assert!(
            delivered_fields.contains(field),
            "header field {:?} missing or changed; delivered:\n{}",
            String::from_utf8_lossy(field),
            String::from_utf8_lossy(delivered)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(delivered_body),
        String::from_utf8_lossy(sent_body),
        "body changed"
    );
    assert_eq!(delivered_body, sent_body, "body bytes changed");
}

/// The shared mail server, or `None` (test skipped) with `POSTERN_SKIP_MAILSERVER=1`.
pub fn mail_server() -> Option<&'static MailServer> {
    postern_testkit::mailserver::shared()
}

/// A transport that remembers what it was asked to send, taking `delay` per mail so that two
/// workers' rounds overlap.
#[derive(Debug, Default)]
pub struct Recording {
    /// Ids sent, in order.
    pub sent: Mutex<Vec<i64>>,
    /// Time taken per mail.
    pub delay: Duration,
}

impl Transport for Recording {
    async fn send(&self, mail: Outgoing<'_>) -> Result<(), DeliveryError> {
        tokio::time::sleep(self.delay).await;
        self.sent.lock().expect("not poisoned").push(mail.id);
        Ok(())
    }
}
