//! The mailbox watchers `serve` runs, built from the `incoming_email:` and
//! `service_desk_email:` sections (GitLab's keys, plus postern's `auth_method`,
//! `oauth2_token_file`, `tls_ca_file`, `allow_plaintext` and the OAuth keys of
//! `inbox_options`), and their `postern check` lines.
//!
//! Companion mode reads the same sections from GitLab's own configuration. Both are read into
//! the one typed model of a mailbox, [`MailboxSettings`], and go through the one mapping here
//! (`source`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postern_core::intake::{Intake, Origin};
use postern_gitlab::{InboxMethod, MailboxSettings};
use postern_inbox::graph::GraphSettings;
use postern_inbox::imap::{Auth, ImapConfig, ImapSettings, Security};
use postern_inbox::status::SourceStatus;
use postern_store::{InboundSource, Mailbox};
use postern_vocab::Shutdown;
use tokio::task::JoinSet;

use super::tokens::imap_tokens;
use crate::cmd::check::{CheckLine, PendingCheck};
use crate::exit::{CONFIG, Failure};
use crate::intake::WatcherIntake;
use crate::setup::Setup;

type Starter = Box<dyn FnOnce(&mut JoinSet<()>, Shutdown) + Send>;

/// The watchers to start, with their live status.
#[derive(Default)]
pub struct Planned {
    /// One line per watcher for the start-up log (no secrets).
    pub descriptions: Vec<String>,
    /// Their status, for `/ready`, `/metrics` and the mail desk.
    pub statuses: Vec<Arc<SourceStatus>>,
    starters: Vec<Starter>,
}

impl Planned {
    /// Starts every watcher on `tasks`.
    pub fn spawn(self, tasks: &mut JoinSet<()>, shutdown: &Shutdown) {
        for start in self.starters {
            start(tasks, shutdown.clone());
        }
    }
}

/// A configured mailbox, validated.
enum Source {
    Imap(ImapSettings),
    Graph(GraphSettings),
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Imap(_) => "imap",
            Source::Graph(_) => "microsoft_graph",
        }
    }

    fn location(&self) -> String {
        match self {
            Source::Imap(settings) => settings.location(),
            Source::Graph(settings) => settings.location(),
        }
    }
}

/// A mailbox section to watch: its name (`incoming_email`, `service_desk_email`), the store's
/// mailbox, and its settings.
pub type Section = (&'static str, Mailbox, MailboxSettings);

/// The watched sections of postern.yml.
pub fn sections(setup: &Setup) -> Vec<Section> {
    [
        (
            "incoming_email",
            Mailbox::Incoming,
            setup.config.incoming_email.as_ref(),
        ),
        (
            "service_desk_email",
            Mailbox::ServiceDesk,
            setup.config.service_desk_email.as_ref(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, mailbox, section)| Some((name, mailbox, section?.settings(mailbox))))
    .filter(|(_, _, settings)| watched(settings))
    .collect()
}

/// Whether a section asks for a watcher: enabled, and naming a server (an address alone, with
/// mail handed in by an MTA, needs none).
fn watched(section: &MailboxSettings) -> bool {
    section.enabled
        && (section.host.is_some() || section.inbox_method == InboxMethod::MicrosoftGraph)
}

/// Reads the mailbox sections; every watcher hands what it fetches to `intake`. A mailbox that
/// is enabled but cannot be watched is a configuration error, never a silent no-op.
pub fn plan(
    sections: &[Section],
    intake: &Arc<Intake>,
    max_message_size: Option<u64>,
    data_dir: &Path,
) -> Result<Planned, Failure> {
    let mut planned = Planned::default();
    for (name, mailbox, section) in sections {
        let (name, mailbox) = (*name, *mailbox);
        let source = source(name, section, max_message_size, data_dir)
            .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!(e)))?;
        let status = Arc::new(SourceStatus::new(name, source.kind(), &source.location()));
        planned
            .descriptions
            .push(format!("{name}: {} {}", source.kind(), source.location()));
        planned.statuses.push(status.clone());
        let origin = Origin {
            mailbox,
            source: match source {
                Source::Imap(_) => InboundSource::Imap,
                Source::Graph(_) => InboundSource::Graph,
            },
        };
        let intake = intake.clone();
        planned.starters.push(Box::new(move |tasks, stop| {
            let intake = Arc::new(WatcherIntake::new(intake, origin));
            match source {
                Source::Imap(settings) => {
                    tasks.spawn(postern_inbox::imap::watch(settings, intake, status, stop));
                }
                Source::Graph(settings) => {
                    tasks.spawn(postern_inbox::graph::watch(settings, intake, status, stop));
                }
            }
        }));
    }
    Ok(planned)
}

/// `postern check` lines for every watched mailbox: log in and open the folder (IMAP), get a
/// token and read the folder (Microsoft Graph).
pub fn checks(sections: Vec<Section>, data_dir: &Path) -> Vec<PendingCheck<'_>> {
    let mut checks: Vec<PendingCheck<'_>> = Vec::new();
    for (name, _, section) in sections {
        checks.push(Box::pin(async move {
            let source = match source(name, &section, None, data_dir) {
                Ok(source) => source,
                Err(reason) => {
                    return CheckLine {
                        name: name.to_owned(),
                        result: Err(reason),
                    };
                }
            };
            let label = format!("{name} ({} {})", source.kind(), source.location());
            let result = match &source {
                Source::Imap(settings) => postern_inbox::imap::check(settings)
                    .await
                    .map(|report| {
                        format!(
                            "logged in, folder has {} messages ({} unseen), UIDVALIDITY {}, IDLE {}, UIDPLUS {}",
                            report.messages,
                            report.unseen,
                            report.uid_validity,
                            yes_no(report.idle),
                            yes_no(report.uidplus)
                        )
                    })
                    .map_err(|e| e.to_string()),
                Source::Graph(settings) => postern_inbox::graph::check(settings)
                    .await
                    .map(|report| {
                        let expires = report
                            .token_expires_at
                            .duration_since(std::time::SystemTime::now())
                            .map(|left| format!("in {} min", left.as_secs() / 60))
                            .unwrap_or_else(|_| "already".to_owned());
                        format!(
                            "token obtained (expires {expires}), folder {:?} has {} messages ({} unread)",
                            report.folder_name, report.total, report.unread
                        )
                    })
                    .map_err(|e| e.to_string()),
            };
            CheckLine {
                name: label,
                result,
            }
        }));
    }
    checks
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The watcher settings of one section; the error names the section and the key.
/// `max_message_size`: the largest message downloaded whole (`None`: the source's default); a
/// larger one is handed on as its header block and refused as too large.
fn source(
    name: &str,
    section: &MailboxSettings,
    max_message_size: Option<u64>,
    data_dir: &Path,
) -> Result<Source, String> {
    match section.inbox_method {
        InboxMethod::Imap => imap(name, section, max_message_size, data_dir).map(Source::Imap),
        InboxMethod::MicrosoftGraph => graph(name, section, max_message_size).map(Source::Graph),
    }
}

fn required<'a>(name: &str, key: &str, value: Option<&'a String>) -> Result<&'a str, String> {
    value
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{name}.{key} is required"))
}

fn imap(
    name: &str,
    section: &MailboxSettings,
    max_message_size: Option<u64>,
    data_dir: &Path,
) -> Result<ImapSettings, String> {
    let host = required(name, "host", section.host.as_ref())?;
    let user = required(name, "user", section.user.as_ref())?;
    let (ssl, start_tls) = (section.ssl, section.start_tls);
    if ssl && start_tls {
        return Err(format!("{name}: ssl and start_tls cannot both be true"));
    }
    let security = if ssl {
        Security::ImplicitTls
    } else if start_tls {
        Security::StartTls
    } else {
        Security::Plain
    };
    let password = || {
        section
            .password
            .as_ref()
            .cloned()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("{name}.password is required"))
    };
    let auth = match section.auth_method.as_deref().unwrap_or("login") {
        "login" => Auth::Login {
            password: password()?,
        },
        "plain" => Auth::Plain {
            password: password()?,
        },
        "xoauth2" => Auth::XOAuth2 {
            tokens: imap_tokens(name, section, data_dir)?,
        },
        "oauthbearer" => Auth::OAuthBearer {
            tokens: imap_tokens(name, section, data_dir)?,
        },
        other => {
            return Err(format!(
                "{name}.auth_method: {other:?} is not login, plain, xoauth2 or oauthbearer"
            ));
        }
    };
    let mut config = ImapConfig::new(name, host, section.port, user, auth);
    config.security = security;
    config.allow_plaintext = section.allow_plaintext;
    config.mailbox.clone_from(&section.folder);
    config.idle_timeout = Duration::from_secs(section.idle_timeout);
    config.delete_after_delivery = section.delete_after_delivery;
    config.expunge_deleted = section.expunge_deleted;
    config.extra_ca_file = section.tls_ca_file.clone();
    // Memory is bounded by the batch, not the backlog; 4 MiB keeps a drain of 1 MB messages
    // inside the memory budget (bench/intake.sh: peak RSS under 40 MB) with one commit and one
    // flag/expunge round trip per four of them, while small messages still come 50 to a batch.
    config.batch_max_bytes = 4 << 20;
    if let Some(max) = max_message_size {
        config.max_message_size = max;
    }
    config.validate().map_err(|e| e.to_string())
}

fn graph(
    name: &str,
    section: &MailboxSettings,
    max_message_size: Option<u64>,
) -> Result<GraphSettings, String> {
    let options = section
        .inbox_options
        .as_ref()
        .ok_or_else(|| format!("{name}.inbox_options is required with microsoft_graph"))?;
    let user = required(name, "user", section.user.as_ref())?;
    let tenant = required(name, "inbox_options.tenant_id", options.tenant_id.as_ref())?;
    let client = required(name, "inbox_options.client_id", options.client_id.as_ref())?;
    let secret = options
        .client_secret
        .as_ref()
        .cloned()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{name}.inbox_options.client_secret is required"))?;
    let mut settings = GraphSettings::new(name, user, tenant, client, secret);
    settings.folder.clone_from(&section.folder);
    settings.poll_interval = Duration::from_secs(options.poll_interval.max(1));
    settings
        .azure_ad_endpoint
        .clone_from(&options.azure_ad_endpoint);
    settings.graph_endpoint.clone_from(&options.graph_endpoint);
    if let Some(page_size) = options.page_size {
        settings.page_size = page_size;
    }
    settings.delete_after_delivery = section.delete_after_delivery;
    settings.extra_ca_file = section.tls_ca_file.clone();
    if let Some(max) = max_message_size {
        settings.max_message_size = max;
    }
    settings.validate().map_err(|e| e.to_string())?;
    Ok(settings)
}
