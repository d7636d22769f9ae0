//! postern in GitLab companion mode (`serve --gitlab-config`) draining a folder into the same
//! HTTP sink as mail_room: a gitlab.yml with webhook delivery and a `secret_file`, a postern.yml
//! with only the store and web address.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use postern_testkit::mailserver::{MailServer, USER};

use crate::sink::{Run, Sink};

/// Drains `folder` with `postern serve --gitlab-config` until `count` messages were POSTed.
pub async fn drain(
    postern: &Path,
    server: &MailServer,
    folder: &str,
    count: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::Builder::new()
        .prefix("postern-companion-bench-")
        .tempdir()?;
    let sink = Sink::start().await?;
    let secret = dir.path().join(".gitlab_incoming_email_secret");
    postern_testkit::gitlab::write_secret_file(&secret, &[5; 32]);
    let gitlab_yml = dir.path().join("gitlab.yml");
    std::fs::write(
        &gitlab_yml,
        format!(
            "production:\n  incoming_email:\n    enabled: true\n    \
             address: \"incoming+%{{key}}@example.test\"\n    user: \"{USER}\"\n    \
             password: \"{password}\"\n    host: 127.0.0.1\n    port: {imap}\n    ssl: false\n    \
             start_tls: false\n    mailbox: \"{folder}\"\n    delete_after_delivery: true\n    \
             expunge_deleted: true\n    delivery_method: webhook\n    \
             gitlab_url: \"http://127.0.0.1:{port}\"\n    secret_file: {secret}\n",
            imap = server.imap_port(),
            password = server.password(),
            port = sink.port(),
            secret = secret.display(),
        ),
    )?;
    let web = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("postern.yml");
    std::fs::write(
        &config,
        format!(
            "store:\n  data_dir: \"{}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\nlog:\n  level: warn\n",
            dir.path().join("data").display()
        ),
    )?;
    let started = Instant::now();
    let child = tokio::process::Command::new(postern)
        .arg("serve")
        .arg("-c")
        .arg(&config)
        .arg("--gitlab-config")
        .arg(&gitlab_yml)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start postern serve --gitlab-config")?;
    sink.watch("postern (companion)", child, started, count, server, folder)
        .await
}
