//! postern in GitLab companion mode (`serve --gitlab-config`): a gitlab.yml with webhook
//! delivery and a `secret_file`, a postern.yml with only the store and web address. Used to drain
//! a folder into the same HTTP sink as mail_room, and by the takeover benchmark
//! (`crate::takeover`) for several instances on one PostgreSQL store.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use postern_testkit::mailserver::{MailServer, USER};

use crate::instance::SharedStore;
use crate::sink::{Run, Sink};

/// The 32-byte secret of the gitlab.yml's `secret_file` (what GitLab checks the JWT with).
pub const SECRET: [u8; 32] = [5; 32];

/// One companion-mode instance's directory and configuration; [`Companion::spawn`] starts a
/// process on it (again after a kill: the data directory stays).
pub struct Companion {
    dir: tempfile::TempDir,
    postern: std::path::PathBuf,
}

impl Companion {
    /// Writes the configuration: `folder` on `server`, webhook delivery to `gitlab_url`, the
    /// store in the directory or `store`.
    pub fn new(
        postern: &Path,
        server: &MailServer,
        folder: &str,
        gitlab_url: &str,
        store: Option<&SharedStore>,
    ) -> anyhow::Result<Companion> {
        let dir = crate::instance::bench_dir("postern-companion-bench-")?;
        let secret = dir.path().join(".gitlab_incoming_email_secret");
        postern_testkit::gitlab::write_secret_file(&secret, &SECRET);
        std::fs::write(
            dir.path().join("gitlab.yml"),
            format!(
                "production:\n  incoming_email:\n    enabled: true\n    \
                 address: \"incoming+%{{key}}@example.test\"\n    user: \"{USER}\"\n    \
                 password: \"{password}\"\n    host: 127.0.0.1\n    port: {imap}\n    ssl: false\n    \
                 start_tls: false\n    mailbox: \"{folder}\"\n    delete_after_delivery: true\n    \
                 expunge_deleted: true\n    delivery_method: webhook\n    \
                 gitlab_url: \"{gitlab_url}\"\n    secret_file: {secret}\n",
                imap = server.imap_port(),
                password = server.password(),
                secret = secret.display(),
            ),
        )?;
        let web = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let shared = store.map(SharedStore::lines).unwrap_or_default();
        std::fs::write(
            dir.path().join("postern.yml"),
            format!(
                "store:\n  data_dir: \"{}\"\n{shared}web:\n  listen: \"127.0.0.1:{web}\"\n\
                 log:\n  level: warn\n",
                dir.path().join("data").display()
            ),
        )?;
        Ok(Companion {
            dir,
            postern: postern.to_owned(),
        })
    }

    /// Starts `postern serve --gitlab-config`, its stderr appended to `serve.log`.
    pub fn spawn(&self) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))?;
        tokio::process::Command::new(&self.postern)
            .arg("serve")
            .arg("-c")
            .arg(self.dir.path().join("postern.yml"))
            .arg("--gitlab-config")
            .arg(self.dir.path().join("gitlab.yml"))
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start postern serve --gitlab-config")
    }
}

/// Drains `folder` with `postern serve --gitlab-config` until `count` messages were POSTed.
pub async fn drain(
    postern: &Path,
    server: &MailServer,
    folder: &str,
    count: usize,
) -> anyhow::Result<Run> {
    let sink = Sink::start().await?;
    let companion = Companion::new(
        postern,
        server,
        folder,
        &format!("http://127.0.0.1:{}", sink.port()),
        None,
    )?;
    let started = Instant::now();
    let child = companion.spawn()?;
    sink.watch("postern (companion)", child, started, count, server, folder)
        .await
}
