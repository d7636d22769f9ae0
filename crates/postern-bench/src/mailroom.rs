//! mail_room side by side: Debian's `ruby-mail-room` (GitLab's fork 0.0.9) draining the same
//! kind of folder into a local HTTP sink that stands in for GitLab's webhook endpoint, so both
//! are measured on the same messages and the same machine.

use std::time::Instant;

use anyhow::Context as _;
use postern_testkit::mailserver::{MailServer, USER};

use crate::sink::{Run, Sink};

/// Whether `mail_room` is installed.
pub fn available() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v mail_room"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Drains `folder` with mail_room until `count` messages were POSTed.
pub async fn drain(server: &MailServer, folder: &str, count: usize) -> anyhow::Result<Run> {
    let dir = tempfile::Builder::new()
        .prefix("mail-room-bench-")
        .tempdir()?;
    let sink = Sink::start().await?;
    let port = sink.port();
    let config = dir.path().join("mail_room.yml");
    std::fs::write(
        &config,
        format!(
            "---\n:mailboxes:\n  -\n    :host: \"127.0.0.1\"\n    :port: {imap}\n    :ssl: false\n    \
             :start_tls: false\n    :email: \"{USER}\"\n    :password: \"{password}\"\n    \
             :name: \"{folder}\"\n    :delete_after_delivery: true\n    :expunge_deleted: true\n    \
             :delivery_method: postback\n    :delivery_options:\n      \
             :delivery_url: \"http://127.0.0.1:{port}/\"\n      :content_type: \"text/plain\"\n",
            imap = server.imap_port(),
            password = server.password(),
        ),
    )?;
    let started = Instant::now();
    let child = tokio::process::Command::new("mail_room")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start mail_room")?;
    sink.watch("mail_room", child, started, count, server, folder)
        .await
}
