//! One `postern serve` under test: its own data directory and configuration, a project whose
//! new-issue address the messages go to, and read-only looks into its SQLite store — or, for
//! several instances on one database ([`SharedStore`]), a PostgreSQL store the caller looks
//! into itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::mailserver::MailServer;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tokio::process::{Child, Command};

/// The environment variable that would override the policy in the configuration; the
/// benchmark removes it, so each row is measured under the policy it names.
const POLICY_ENV: &str = "POSTERN_SENDER_AUTHENTICATION";

/// The sender-authentication policy an instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderPolicy {
    /// postern's default: every message is verified (DKIM, ARC, SPF where known, DMARC).
    Dmarc,
    /// Nothing is verified: the cost of processing alone.
    Off,
}

impl SenderPolicy {
    /// The name in `postern.yml`.
    pub fn name(self) -> &'static str {
        match self {
            SenderPolicy::Dmarc => "dmarc",
            SenderPolicy::Off => "off",
        }
    }
}

/// A PostgreSQL database several instances share, and the one file that seals its
/// incoming-email tokens: every instance of a database must use the same key (the first to
/// open the store creates it).
pub struct SharedStore {
    /// `postgres://…`.
    pub url: String,
    /// `store.token_key_file` of every instance.
    pub token_key: PathBuf,
}

impl SharedStore {
    /// The `store:` section of an instance's postern.yml.
    pub fn yaml(&self) -> String {
        format!("store:\n{}", self.lines())
    }

    /// The lines of the `store:` section that name the database and the key.
    pub fn lines(&self) -> String {
        format!(
            "  url: \"{}\"\n  token_key_file: \"{}\"\n",
            self.url,
            self.token_key.display()
        )
    }
}

/// A fresh directory for one instance under test; `POSTERN_BENCH_KEEP=1` keeps it
/// (configuration, store, serve.log) for a look afterwards.
pub fn bench_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let keep = std::env::var_os("POSTERN_BENCH_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(keep)
        .tempdir()?;
    if keep {
        println!("instance directory kept: {}", dir.path().display());
    }
    Ok(dir)
}

/// A prepared data directory; [`Prepared::spawn`] starts the server on it.
pub struct Prepared {
    dir: tempfile::TempDir,
    postern: PathBuf,
    config: PathBuf,
    /// The project's new-issue address (what benchmark messages are sent to).
    pub address: String,
    /// The LMTP listener's port.
    pub lmtp_port: u16,
    /// On a [`SharedStore`]: no SQLite store of its own to look into.
    shared: bool,
}

/// A running `postern serve`.
pub struct Instance {
    prepared: Prepared,
    child: Child,
    pid: u32,
    /// Its own SQLite store, read-only; `None` on a [`SharedStore`].
    db: Option<SqlitePool>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Prepared {
    /// A data directory with user `jake`, project `bench/proj` and a configuration that watches
    /// `folder` on `server`.
    pub async fn new(
        postern: &Path,
        server: &MailServer,
        folder: &str,
        policy: SenderPolicy,
    ) -> anyhow::Result<Prepared> {
        let mut prepared = Prepared::configure(postern, server, folder, policy, None)?;
        prepared.add_project()?;
        Ok(prepared)
    }

    /// A data directory whose configuration watches `folder` on `server` with `store` as its
    /// store. The store's users and projects are everyone's: call [`Prepared::add_project`] on
    /// the first instance of a fresh database only.
    pub fn sharing(
        postern: &Path,
        server: &MailServer,
        folder: &str,
        policy: SenderPolicy,
        store: &SharedStore,
    ) -> anyhow::Result<Prepared> {
        Prepared::configure(postern, server, folder, policy, Some(store))
    }

    fn configure(
        postern: &Path,
        server: &MailServer,
        folder: &str,
        policy: SenderPolicy,
        store: Option<&SharedStore>,
    ) -> anyhow::Result<Prepared> {
        let dir = bench_dir("postern-bench-")?;
        let lmtp_port = free_port()?;
        let web_port = free_port()?;
        let config = dir.path().join("postern.yml");
        std::fs::write(
            &config,
            format!(
                "incoming_email:\n  enabled: true\n  address: \"incoming+%{{key}}@example.test\"\n  \
                 user: incoming\n  password: \"{password}\"\n  host: 127.0.0.1\n  port: {port}\n  \
                 ssl: false\n  start_tls: false\n  allow_plaintext: true\n  mailbox: \"{folder}\"\n  \
                 delete_after_delivery: true\n\
                 instance:\n  host: example.test\n\
                 listener:\n  listen: \"127.0.0.1:{lmtp_port}\"\n\
                 web:\n  listen: \"127.0.0.1:{web_port}\"\n\
                 log:\n  level: warn\n\
                 sender_authentication:\n  policy: {policy}\n{store}",
                policy = policy.name(),
                password = server.password(),
                port = server.imap_port(),
                store = store.map(SharedStore::yaml).unwrap_or_default(),
            ),
        )?;
        Ok(Prepared {
            dir,
            postern: postern.to_owned(),
            config,
            address: String::new(),
            lmtp_port,
            shared: store.is_some(),
        })
    }

    /// User `jake` and project `bench/proj` in the store; sets [`Prepared::address`].
    pub fn add_project(&mut self) -> anyhow::Result<()> {
        self.admin(&["user", "add", "jake", "--email", "jake@example.com"])?;
        self.admin(&["project", "add", "bench/proj"])?;
        self.admin(&[
            "project",
            "member",
            "add",
            "bench/proj",
            "jake",
            "developer",
        ])?;
        let shown = self.admin(&["project", "show", "bench/proj", "--user", "jake"])?;
        self.address = shown["addresses"]["new_issue"]
            .as_str()
            .context("project show printed no new_issue address")?
            .to_owned();
        Ok(())
    }

    fn admin(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let output = std::process::Command::new(&self.postern)
            .arg("admin")
            .args(args)
            .arg("--json")
            .env("POSTERN_CONFIG", &self.config)
            .env_remove(POLICY_ENV)
            .current_dir(self.dir.path())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "postern admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// Starts `postern serve` and waits until its LMTP listener answers.
    pub async fn spawn(self) -> anyhow::Result<Instance> {
        let mut instance = self.launch()?;
        instance.wait_listening().await?;
        if !instance.prepared.shared {
            let options = SqliteConnectOptions::new()
                .filename(
                    instance
                        .prepared
                        .dir
                        .path()
                        .join("postern-data/postern.sqlite3"),
                )
                .read_only(true);
            instance.db = Some(SqlitePool::connect_with(options).await?);
        }
        Ok(instance)
    }

    /// Starts `postern serve` and returns at once (see [`Instance::wait_listening`]), so that
    /// several instances start together.
    pub fn launch(self) -> anyhow::Result<Instance> {
        let log = std::fs::File::create(self.dir.path().join("serve.log"))?;
        let child = Command::new(&self.postern)
            .args(["serve", "-c"])
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env_remove(POLICY_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("postern exited at once")?;
        Ok(Instance {
            prepared: self,
            child,
            pid,
            db: None,
        })
    }
}

impl Instance {
    /// Prepares and starts in one go.
    pub async fn start(
        postern: &Path,
        server: &MailServer,
        folder: &str,
        policy: SenderPolicy,
    ) -> anyhow::Result<Instance> {
        Prepared::new(postern, server, folder, policy)
            .await?
            .spawn()
            .await
    }

    /// The new-issue address.
    pub fn address(&self) -> &str {
        &self.prepared.address
    }

    /// The LMTP port.
    pub fn lmtp_port(&self) -> u16 {
        self.prepared.lmtp_port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits (at most 30 s) until the LMTP listener answers: the server has started.
    pub async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.prepared.lmtp_port))
            .await
            .is_err()
        {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "postern serve exited ({status}); see {}",
                    self.prepared.dir.path().join("serve.log").display()
                );
            }
            anyhow::ensure!(Instant::now() < deadline, "postern serve never listened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Its own SQLite store.
    fn db(&self) -> anyhow::Result<&SqlitePool> {
        self.db
            .as_ref()
            .context("this instance's store is the shared PostgreSQL database")
    }

    /// Peak resident memory so far, in MB (`VmHWM`).
    pub fn peak_rss(&self) -> anyhow::Result<f64> {
        crate::measure::proc_status_mb(self.pid, "VmHWM")
    }

    /// Resident memory after `quiet` of no load, in MB.
    pub async fn wait_idle_rss(&self, quiet: Duration) -> anyhow::Result<f64> {
        tokio::time::sleep(quiet).await;
        crate::measure::proc_status_mb(self.pid, "VmRSS")
    }

    /// Whether an issue with this title exists.
    pub async fn has_issue(&self, title: &str) -> anyhow::Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM issues WHERE title = ?")
            .bind(title)
            .fetch_optional(self.db()?)
            .await?;
        Ok(found.is_some())
    }

    /// Waits until `count` inbound messages are finished; returns when that was seen.
    pub async fn wait_processed(&self, count: usize, bound: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + bound;
        loop {
            let (done,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM inbound_messages WHERE state IN ('processed', 'rejected', 'ignored')",
            )
            .fetch_one(self.db()?)
            .await?;
            if usize::try_from(done).unwrap_or(0) >= count {
                return Ok(Instant::now());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {done} of {count} messages processed in {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Titles of every issue.
    pub async fn titles(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT title FROM issues")
            .fetch_all(self.db()?)
            .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// (finished inbound messages, issues).
    pub async fn counts(&self) -> anyhow::Result<(i64, i64)> {
        let (done,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM inbound_messages WHERE state IN ('processed', 'rejected', 'ignored')",
        )
        .fetch_one(self.db()?)
        .await?;
        let (issues,): (i64,) = sqlx::query_as("SELECT count(*) FROM issues")
            .fetch_one(self.db()?)
            .await?;
        Ok((done, issues))
    }

    /// SIGTERM, and waits for the exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(db) = &self.db {
            db.close().await;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("postern serve did not stop within 15 s of SIGTERM");
            }
        }
        Ok(())
    }
}
