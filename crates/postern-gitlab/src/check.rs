//! The companion-mode part of `postern check --gitlab-config PATH`: the checks of GitLab's
//! `gitlab:incoming_email:check` (its `lib/system_check/incoming_email_check.rb`) adapted to
//! postern, plus the delivery path. The IMAP/Graph login checks belong to the mail sources and
//! are run by the caller.
//!
//! Proving the webhook secret without delivering mail: GitLab answers 401 to any token it
//! refuses, before reading the body. So the check first sends a token signed with a random key
//! (it must be refused: otherwise the endpoint is not GitLab's, or does not check), then a
//! correctly signed request with an **empty** body. GitLab enqueues it, and its worker drops a
//! blank message with an `EmptyEmailError` log line and no rejection mail (the failure handler
//! only answers non-blank messages, and processing errors are never retried), so nothing
//! reaches any user or project.

use std::path::Path;

use crate::deliver::{Destination, destinations};
use crate::jwt::JwtSigner;
use crate::settings::{GitlabMailboxes, mailbox_type};
use crate::webhook::WebhookOptions;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Passed (`yes`).
    Ok,
    /// Failed (`no`).
    Failed,
    /// Not applicable (`skipped`).
    Skipped,
}

/// One line of the check's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckLine {
    /// The question, as GitLab words it (`Mailroom enabled?` becomes `postern-gitlab enabled?`).
    pub name: String,
    /// The answer.
    pub status: CheckStatus,
    /// Why, for failures and skips; never a secret.
    pub reason: Option<String>,
    /// GitLab's "Try fixing it:" lines.
    pub fixes: Vec<String>,
}

impl CheckLine {
    fn ok(name: impl Into<String>) -> CheckLine {
        CheckLine {
            name: name.into(),
            status: CheckStatus::Ok,
            reason: None,
            fixes: Vec::new(),
        }
    }

    fn failed(name: impl Into<String>, reason: impl Into<String>, fixes: &[&str]) -> CheckLine {
        CheckLine {
            name: name.into(),
            status: CheckStatus::Failed,
            reason: Some(reason.into()),
            fixes: fixes.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn skipped(name: impl Into<String>, reason: impl Into<String>) -> CheckLine {
        CheckLine {
            name: name.into(),
            status: CheckStatus::Skipped,
            reason: Some(reason.into()),
            fixes: Vec::new(),
        }
    }
}

/// Runs the checks for `config`. `systemd_dirs` are where unit files are looked for (pass
/// [`SYSTEMD_DIRS`]); `proc_dir` is `/proc` (tests pass a fake one).
pub async fn check(
    config: &GitlabMailboxes,
    systemd_dirs: &[&Path],
    proc_dir: &Path,
) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let incoming_enabled = config.incoming.as_ref().is_some_and(|m| m.enabled);
    if !incoming_enabled {
        lines.push(CheckLine::skipped(
            "Incoming Email",
            "Reply by email is disabled in config/gitlab.yml",
        ));
    }
    lines.push(service_enabled(systemd_dirs));
    lines.push(running(
        proc_dir,
        "postern running?",
        "postern",
        Some("serve"),
        true,
    ));
    lines.push(running(
        proc_dir,
        "mail_room stopped?",
        "mail_room",
        None,
        false,
    ));
    lines.extend(delivery(config).await);
    lines
}

/// Where systemd unit files live.
pub const SYSTEMD_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

fn service_enabled(dirs: &[&Path]) -> CheckLine {
    let name = "postern-gitlab enabled?";
    let has = |unit: &str| dirs.iter().any(|d| d.join(unit).is_file());
    if !has("postern-gitlab.service") {
        return CheckLine::failed(
            name,
            "postern-gitlab.service is not installed",
            &[
                "Install postern-gitlab.service and enable it (systemctl enable --now postern-gitlab.service)",
                "For more information see: README.md, \"Replacing mail_room\"",
            ],
        );
    }
    let mailroom_wanted = dirs.iter().any(|d| {
        d.join("gitlab.target.wants/gitlab-mailroom.service")
            .exists()
            || std::fs::read_to_string(d.join("gitlab.target")).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.starts_with("Wants=") && l.contains("gitlab-mailroom.service"))
            })
    });
    if mailroom_wanted {
        return CheckLine::failed(
            name,
            "gitlab.target still wants gitlab-mailroom.service: mail_room and postern would both read the mailbox",
            &["Remove gitlab-mailroom.service from gitlab.target (systemctl edit gitlab.target)"],
        );
    }
    CheckLine::ok(name)
}

/// Whether a process whose command line contains `needle` (and `and` if given) runs.
fn running(proc_dir: &Path, name: &str, needle: &str, and: Option<&str>, want: bool) -> CheckLine {
    let found = std::fs::read_dir(proc_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| e.file_name().to_str() != Some(&std::process::id().to_string()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .any(|c| c.contains(needle) && and.is_none_or(|a| c.contains(a)));
    match (found, want) {
        (true, true) | (false, false) => CheckLine::ok(name),
        (false, true) => CheckLine::failed(
            name,
            "no `postern serve` process found",
            &[
                "Start postern-gitlab.service",
                "see its journal (journalctl -u postern-gitlab) for possible errors",
            ],
        ),
        (true, false) => CheckLine::failed(
            name,
            "mail_room is running: it would take messages from the mailbox as well (and lose some)",
            &[
                "Stop and disable mail_room (gitlab-ctl stop mailroom; or systemctl disable --now gitlab-mailroom.service)",
            ],
        ),
    }
}

async fn delivery(config: &GitlabMailboxes) -> Vec<CheckLine> {
    let options = WebhookOptions {
        timeout: std::time::Duration::from_secs(15),
        ..WebhookOptions::default()
    };
    let routes = match destinations(config, &options) {
        Ok(routes) => routes,
        Err(e) => {
            return vec![CheckLine::failed(
                "Delivery to GitLab configured?",
                e.to_string(),
                &["Check that the information in the GitLab configuration is correct"],
            )];
        }
    };
    if routes.is_empty() {
        return vec![CheckLine::skipped(
            "Delivery to GitLab configured?",
            "no enabled mailbox with an address",
        )];
    }
    let mut lines = vec![CheckLine::ok("Delivery to GitLab configured?")];
    lines.push(arbitration(config).await);
    for (mailbox, destination) in routes {
        let what = mailbox_type(mailbox);
        match destination {
            Destination::Webhook(hook) => {
                let name = format!("JWT accepted by {}?", hook.url());
                lines.push(webhook_line(&name, &hook).await);
            }
            Destination::Sidekiq(sidekiq) => {
                let name = format!("Redis reachable for {what}?");
                lines.push(match sidekiq.ping().await {
                    Ok(()) => CheckLine::ok(name),
                    Err(reason) => CheckLine::failed(
                        name,
                        reason,
                        &["Check GitLab's Redis settings (resque.yml / redis.queues.yml, or gitlab_rails['redis_*'])"],
                    ),
                });
            }
        }
    }
    lines
}

/// Whether several companion instances on these mailboxes would deliver each message once:
/// through GitLab's Redis when its configuration names it ([`crate::arbiter`]). Without it the
/// line is skipped with the warning that a second instance would deliver duplicates.
async fn arbitration(config: &GitlabMailboxes) -> CheckLine {
    let Some(redis) = config.arbitration_redis() else {
        return CheckLine::skipped(
            "Deliveries arbitrated between postern instances?",
            "GitLab's configuration names no Redis (resque.yml or redis.queues.yml beside gitlab.yml, gitlab_rails['redis_*'], or arbitration_options in mail_room.yml): run one postern instance per mailbox, or several on one PostgreSQL store; a second one with a store of its own would deliver duplicates",
        );
    };
    let name = "Redis reachable for arbitration between postern instances?";
    let fixes = &[
        "Check GitLab's Redis settings (resque.yml / redis.queues.yml, gitlab_rails['redis_*'], or mail_room.yml's arbitration_options)",
    ];
    let arbiter = match crate::Arbiter::new(redis, "check") {
        Ok(arbiter) => arbiter,
        Err(e) => return CheckLine::failed(name, e.to_string(), fixes),
    };
    match arbiter.ping().await {
        Ok(()) => CheckLine::ok(name),
        Err(reason) => CheckLine::failed(
            name,
            format!("{reason}; deliveries wait until it answers"),
            fixes,
        ),
    }
}

async fn webhook_line(name: &str, hook: &crate::webhook::Webhook) -> CheckLine {
    let fix = &["Check gitlab_url and secret_file (they must match GitLab's own configuration)"];
    let Ok(random) = crate::jwt::random_hex(32) else {
        return CheckLine::failed(name, "no randomness for the probe token", fix);
    };
    let probe =
        JwtSigner::hs256_from_base64(&base64_of_hex(&random), "probe").and_then(|s| s.token());
    let Ok(probe) = probe else {
        return CheckLine::failed(name, "cannot sign the probe token", fix);
    };
    match hook.post(Vec::new(), &probe).await {
        Err(reason) => {
            return CheckLine::failed(name, format!("cannot reach GitLab: {reason}"), fix);
        }
        Ok(a) if a.status == 401 => {}
        Ok(a) if a.status == 404 => {
            return CheckLine::failed(
                name,
                "GitLab has no mail_room API there (404): wrong gitlab_url, or a GitLab older than 15.3",
                fix,
            );
        }
        Ok(a) => {
            return CheckLine::failed(
                name,
                format!(
                    "a token signed with a random key was answered {}, not 401: this is not GitLab's mail_room API",
                    a.status
                ),
                fix,
            );
        }
    }
    let token = match hook.signer().token() {
        Ok(t) => t,
        Err(e) => return CheckLine::failed(name, e.to_string(), fix),
    };
    match hook.post(Vec::new(), &token).await {
        Ok(a) if (200..300).contains(&a.status) => CheckLine::ok(name),
        Ok(a) if a.status == 401 || a.status == 403 => CheckLine::failed(
            name,
            "GitLab refused postern's token: the secret differs from GitLab's, the mailbox is not enabled in GitLab, or the clocks differ by more than 5 minutes",
            fix,
        ),
        Ok(a) => CheckLine::failed(name, format!("GitLab answered {}", a.status), fix),
        Err(reason) => CheckLine::failed(name, format!("cannot reach GitLab: {reason}"), fix),
    }
}

/// Base64 of the bytes spelled by `hex` (for a random probe key).
fn base64_of_hex(hex: &str) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
