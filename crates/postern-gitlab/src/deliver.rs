//! Where a mailbox's messages go ([`Destination`]: webhook or Sidekiq), how an attempt can fail
//! ([`DeliveryFailure`]), and building the destinations of a whole configuration at start-up.

use postern_store::Mailbox;
use postern_vocab::{ErrorKind, HandlerKind};

use crate::jwt::{JwtError, JwtSigner};
use crate::settings::{DeliveryMethod, GitlabMailboxes, mailbox_type};
use crate::sidekiq::{Pushed, Sidekiq, SidekiqError};
use crate::webhook::{Webhook, WebhookError, WebhookOptions, http_client};

/// Why one delivery attempt did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// It may pass later (GitLab or Redis unavailable, 5xx, 401/403): keep and retry.
    Temporary {
        /// What failed (`webhook_unreachable`, `redis_unavailable` …).
        kind: ErrorKind,
        /// What happened, without secrets.
        reason: String,
    },
    /// GitLab refused the message for good (too large).
    Rejected {
        /// The error kind (`email_too_large`).
        kind: ErrorKind,
        /// GitLab's reason.
        reason: String,
    },
}

/// One mailbox's destination.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per mailbox, built once at start-up; boxing buys nothing"
)]
pub enum Destination {
    /// GitLab's internal API.
    Webhook(Webhook),
    /// GitLab's Sidekiq queue on Redis.
    Sidekiq(Sidekiq),
}

impl Destination {
    /// Delivers one raw message whose store content identity is `identity`; `Ok` only once
    /// GitLab (or its Redis) accepted it. A webhook always reports [`Pushed::New`]; Sidekiq
    /// reports [`Pushed::Already`] when its marker showed an earlier attempt had pushed it.
    pub async fn deliver(&self, raw: &[u8], identity: &str) -> Result<Pushed, DeliveryFailure> {
        match self {
            Destination::Webhook(w) => w.deliver(raw).await.map(|()| Pushed::New),
            Destination::Sidekiq(s) => s.deliver(raw, identity).await,
        }
    }

    /// The handler recorded on a delivered message: `webhook` or `sidekiq`.
    pub fn handler(&self) -> HandlerKind {
        match self {
            Destination::Webhook(_) => HandlerKind::Webhook,
            Destination::Sidekiq(_) => HandlerKind::Sidekiq,
        }
    }

    /// Where messages go, for logs and outcomes (no secrets: a URL without credentials, or
    /// the Redis list's name).
    pub fn describe(&self) -> String {
        match self {
            Destination::Webhook(w) => w.url().to_owned(),
            Destination::Sidekiq(s) => format!("redis list {}", s.key()),
        }
    }
}

/// Why the destinations of a configuration could not be built. Shown at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// No `gitlab_url` for a webhook mailbox.
    #[error("{0}: delivery_method webhook needs gitlab_url (or GitLab's own URL)")]
    NoUrl(&'static str),
    /// The JWT secret or key is unusable.
    #[error("{mailbox}: {source}")]
    Jwt {
        /// `incoming_email` or `service_desk_email`.
        mailbox: &'static str,
        /// What is wrong with it.
        source: JwtError,
    },
    /// The HTTP client or URL is unusable.
    #[error("{mailbox}: {source}")]
    Webhook {
        /// `incoming_email` or `service_desk_email`.
        mailbox: &'static str,
        /// What is wrong.
        source: WebhookError,
    },
    /// The Redis settings are unusable.
    #[error("{mailbox}: {source}")]
    Sidekiq {
        /// `incoming_email` or `service_desk_email`.
        mailbox: &'static str,
        /// What is wrong.
        source: SidekiqError,
    },
}

/// The destination of every active mailbox of `config`, incoming first. Reads the JWT secrets
/// now, so a secret GitLab would refuse stops start-up with a message saying why.
pub fn destinations(
    config: &GitlabMailboxes,
    options: &WebhookOptions,
) -> Result<Vec<(Mailbox, Destination)>, SetupError> {
    let mut client = None;
    let mut out = Vec::new();
    for settings in config.active() {
        let name = mailbox_type(settings.mailbox);
        let destination = match settings.delivery_method {
            DeliveryMethod::Webhook => {
                let base = config
                    .webhook_base(settings)
                    .ok_or(SetupError::NoUrl(name))?;
                let signer = JwtSigner::from_settings(
                    settings.secret.as_ref(),
                    settings.private_key_file.as_deref(),
                )
                .map_err(|source| SetupError::Jwt {
                    mailbox: name,
                    source,
                })?;
                let client = match &client {
                    Some(c) => c,
                    None => client.insert(http_client(options).map_err(|source| {
                        SetupError::Webhook {
                            mailbox: name,
                            source,
                        }
                    })?),
                };
                Destination::Webhook(
                    Webhook::new(client.clone(), base, settings.mailbox, signer).map_err(
                        |source| SetupError::Webhook {
                            mailbox: name,
                            source,
                        },
                    )?,
                )
            }
            DeliveryMethod::Sidekiq => {
                Destination::Sidekiq(Sidekiq::new(&config.redis, settings.mailbox).map_err(
                    |source| SetupError::Sidekiq {
                        mailbox: name,
                        source,
                    },
                )?)
            }
        };
        out.push((settings.mailbox, destination));
    }
    Ok(out)
}
