//! The SMTP transport: the stored bytes through a relay with lettre's `send_raw`.
//!
//! One connection per mail (no pool): the worker sends a few mails a second at most, and a
//! fresh connection never fails on a pooled one the relay has silently closed.
//!
//! Classification, which decides between "retry later" and "failed for good":
//!
//! - 5xx to `MAIL FROM`, `RCPT TO` or the data → permanent: the relay has judged this mail.
//! - 5xx that only a login produces (530, 534, 535, 538: authentication required, too weak,
//!   refused, needs encryption) → temporary: the relay refused *us*, every mail would fail the
//!   same way, and it is fixed by correcting the settings, not by dropping the mail.
//! - 4xx, connection refused or reset, timeouts, TLS failures → temporary.
//! - A recipient that is not an address → permanent, without connecting.

use postern_vocab::Secret;
use std::fmt;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use crate::{DeliveryError, OutboxError, Outgoing, Transport};

/// SMTP reply codes a relay gives only to a failed or missing login (RFC 4954).
const AUTH_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// How many times the per-step `timeout` one whole delivery may take at most: connect, greeting,
/// EHLO, STARTTLS and EHLO again, AUTH, MAIL, RCPTs, DATA and the final answer.
const STEPS_PER_DELIVERY: u32 = 8;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (a relay on loopback or a trusted network). A login, if configured, is sent
    /// in clear too.
    None,
    /// Plain connection upgraded with `STARTTLS`, which must succeed (usually port 587).
    StartTls,
    /// TLS from the first byte, "implicit TLS" (usually port 465).
    Tls,
}

/// Where and how to hand mail to an SMTP relay.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The relay's host name or IP address; also the name its TLS certificate must carry.
    pub host: String,
    /// The relay's port (25, 587, 465 …).
    pub port: u16,
    /// Connection protection.
    pub tls: TlsMode,
    /// Login name, if the relay wants a login (needs [`SmtpSettings::password`] too).
    pub user: Option<String>,
    /// Login password.
    pub password: Option<Secret>,
    /// The envelope sender (`MAIL FROM`), where bounces go. Not the `From:` header, which is
    /// part of the stored message.
    pub from: String,
    /// How long one step (connecting, one command and its answer) may take.
    pub timeout: Duration,
    /// The name given in `EHLO`; the domain of [`SmtpSettings::from`] when `None`.
    pub hello_name: Option<String>,
    /// An extra trusted root certificate (PEM), for a relay with a private or self-signed
    /// certificate; the system's roots stay trusted.
    pub ca_pem: Option<String>,
}

impl SmtpSettings {
    /// Settings for `host:port` with `tls`, sending as `from`, no login, 30 s per step.
    pub fn new(host: &str, port: u16, tls: TlsMode, from: &str) -> SmtpSettings {
        SmtpSettings {
            host: host.to_owned(),
            port,
            tls,
            user: None,
            password: None,
            from: from.to_owned(),
            timeout: Duration::from_secs(30),
            hello_name: None,
            ca_pem: None,
        }
    }
}

/// Sends through an SMTP relay.
pub struct SmtpTransport {
    /// lettre's client, holding the relay's address, TLS parameters and credentials.
    inner: AsyncSmtpTransport<Tokio1Executor>,
    /// The envelope sender, parsed once.
    from: Address,
    /// `host:port`, for error messages.
    relay: String,
    /// Kept only to scrub it from error texts; see [`scrub`].
    password: Option<Secret>,
    /// Upper bound of one whole delivery.
    deadline: Duration,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("relay", &self.relay)
            .field("from", &self.from)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Checks the settings and prepares the client. Connects to nothing.
    pub fn new(settings: SmtpSettings) -> Result<SmtpTransport, OutboxError> {
        let config = |setting, reason: String| OutboxError::Config { setting, reason };
        let from: Address = settings
            .from
            .parse()
            .map_err(|e| config("smtp.from", format!("{:?}: {e}", settings.from)))?;
        let hello = settings
            .hello_name
            .clone()
            .unwrap_or_else(|| from.domain().to_owned());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .hello_name(ClientId::Domain(hello));
        let tls_parameters = || -> Result<TlsParameters, OutboxError> {
            let mut params = TlsParameters::builder(settings.host.clone());
            if let Some(pem) = &settings.ca_pem {
                let cert = Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| config("smtp.ca_pem", e.to_string()))?;
                params = params.add_root_certificate(cert);
            }
            params
                .build()
                .map_err(|e| config("smtp.tls", e.to_string()))
        };
        builder = builder.tls(match settings.tls {
            TlsMode::None => Tls::None,
            // Required, not Opportunistic: a relay that stops offering STARTTLS (or a
            // man-in-the-middle that strips it) must not receive the password in clear.
            TlsMode::StartTls => Tls::Required(tls_parameters()?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters()?),
        });
        match (&settings.user, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder
                    .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(config(
                    "smtp.user",
                    "user and password must be given together".to_owned(),
                ));
            }
        }
        Ok(SmtpTransport {
            inner: builder.build(),
            from,
            relay: format!("{}:{}", settings.host, settings.port),
            password: settings.password,
            deadline: settings.timeout.saturating_mul(STEPS_PER_DELIVERY),
        })
    }

    /// Asks the relay whether it would take mail (connect, EHLO, STARTTLS, login, NOOP), for
    /// `postern check`. The error is classified like a delivery's.
    pub async fn check(&self) -> Result<(), DeliveryError> {
        match self.inner.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeliveryError::Temporary(format!(
                "SMTP relay {}: did not answer NOOP",
                self.relay
            ))),
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let text = scrub(
            &format!("SMTP relay {}: {}", self.relay, error_chain(e)),
            self.password.as_ref(),
        );
        let auth = e
            .status()
            .is_some_and(|code| AUTH_CODES.contains(&code.to_string().as_str()));
        if e.is_permanent() && !auth {
            DeliveryError::Permanent(text)
        } else {
            DeliveryError::Temporary(text)
        }
    }
}

impl Transport for SmtpTransport {
    async fn send(&self, mail: Outgoing<'_>) -> Result<(), DeliveryError> {
        let mut to = Vec::with_capacity(mail.recipients.len());
        for recipient in mail.recipients {
            let address: Address = recipient.parse().map_err(|e| {
                DeliveryError::Permanent(format!("invalid recipient {recipient:?}: {e}"))
            })?;
            to.push(address);
        }
        let envelope = Envelope::new(Some(self.from.clone()), to)
            .map_err(|e| DeliveryError::Permanent(format!("invalid envelope: {e}")))?;
        let data = without_final_line_break(mail.raw);
        match tokio::time::timeout(self.deadline, self.inner.send_raw(&envelope, data)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(DeliveryError::Temporary(format!(
                "SMTP relay {}: no answer within {:?}",
                self.relay, self.deadline
            ))),
        }
    }
}

/// `raw` without its last line break. lettre ends the data with `CRLF . CRLF`, whose first
/// CRLF (RFC 5321 §4.1.1.4) ends the message's last line; sending the stored CRLF as well would
/// add an empty line to every delivered message. This is framing, not re-encoding: the relay
/// stores exactly `raw`.
fn without_final_line_break(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"))
        .unwrap_or(raw)
}

/// `e` and its sources, each once: lettre's own text already repeats its first source, and its
/// layers may repeat a prefix ("Connection error: Connection error: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

/// `text` with every occurrence of the password replaced by `[redacted]`: a relay may echo what
/// it received, and `last_error` is shown to administrators and written to logs.
fn scrub(text: &str, password: Option<&Secret>) -> String {
    password.map_or_else(|| text.to_owned(), |p| p.scrub(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_final_line_break_is_left_to_the_smtp_framing() {
        assert_eq!(without_final_line_break(b"a\r\n\r\nb\r\n"), b"a\r\n\r\nb");
        assert_eq!(without_final_line_break(b"a\r\n\r\n"), b"a\r\n");
        assert_eq!(without_final_line_break(b"a\n"), b"a");
        assert_eq!(without_final_line_break(b"a"), b"a");
    }

    #[test]
    fn passwords_are_scrubbed_and_never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            scrub("535 bad hunter2 hunter2", Some(&secret)),
            "535 bad [redacted] [redacted]"
        );
        assert_eq!(scrub("x", Some(&Secret::new(""))), "x");
        let mut settings = SmtpSettings::new("relay", 587, TlsMode::StartTls, "a@b.example");
        settings.user = Some("me".to_owned());
        settings.password = Some(secret);
        assert!(!format!("{settings:?}").contains("hunter2"));
        let transport = SmtpTransport::new(settings).expect("valid settings");
        assert!(!format!("{transport:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let bad_from = SmtpSettings::new("relay", 25, TlsMode::None, "not an address");
        assert!(matches!(
            SmtpTransport::new(bad_from),
            Err(OutboxError::Config {
                setting: "smtp.from",
                ..
            })
        ));
        let mut half_login = SmtpSettings::new("relay", 25, TlsMode::None, "a@b.example");
        half_login.password = Some(Secret::new("x"));
        assert!(matches!(
            SmtpTransport::new(half_login),
            Err(OutboxError::Config {
                setting: "smtp.user",
                ..
            })
        ));
    }
}
