//! A private Dovecot (IMAP, LMTP) and Postfix (SMTP → Dovecot LMTP) for the tests, started by
//! the repository's `scripts/mailserver.sh` from Debian's packages.
//!
//! Lifetime: [`shared`] starts one pair of servers per test binary, on first use, and keeps them
//! in a `static`, exactly like [`crate::pg`]: statics are never dropped, so stopping cannot hang
//! off a `Drop`. Tests that stop, restart or reconfigure Dovecot start their own instead
//! ([`MailServer::start_dovecot_only`], [`MailServer::start_dovecot_with`] for extra
//! `dovecot.conf` lines, [`MailServer::stop`] and [`MailServer::restart`] on the same ports). Each server set gets a **reaper**, a `sh` process in its own process group
//! whose stdin is a pipe from this process. When the test process ends — normally, by panic, by
//! Ctrl-C or by SIGKILL — the kernel closes the pipe, `cat` in the reaper sees end-of-file, and
//! the reaper runs `mailserver.sh stop` and removes the temporary directory.
//!
//! Everything lives under a fresh temporary directory (mode 0711: Dovecot's unprivileged users
//! must be able to enter it, which the 0700 of a new temporary directory forbids), on loopback
//! ports chosen when the test runs, so several test binaries can run their servers side by side.
//! What the servers offer (see the script's header for the full list):
//!
//! - accounts `incoming` and `servicedesk` with [`MailServer::password`]; any
//!   `incoming+<detail>@example.test` lands in `incoming`'s INBOX, which is what lets parallel
//!   tests share one mailbox and find their own mail by a unique header value;
//! - Postfix on [`MailServer::smtp_port`] (plain, STARTTLS offered, AUTH through Dovecot) and
//!   [`MailServer::smtps_port`] (implicit TLS), with a certificate signed by the private CA
//!   [`MailServer::ca_pem`];
//! - one recipient, [`MailServer::rejected_recipient`], that Postfix refuses at `RCPT TO` with
//!   `550 5.1.1`, for tests of permanent failures.
//!
//! Environment: `POSTERN_SKIP_MAILSERVER=1` makes [`shared`] return `None`, so the tests that
//! need the servers skip themselves. Without it, missing packages fail the tests with a message
//! saying what to install (the script is run with `INSTALL=0`: tests never install anything).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::imap::ImapClient;

/// How many sets of ports are tried if another process takes a probed port before the servers
/// bind it.
const START_ATTEMPTS: usize = 3;

/// The mail domain the servers accept mail for.
pub const DOMAIN: &str = "example.test";

/// The account whose INBOX receives `incoming+…@example.test`.
pub const USER: &str = "incoming";

/// The one set of servers shared by every test in this binary, started on first use; `None`
/// with `POSTERN_SKIP_MAILSERVER=1`. Panics with what to install when they cannot start.
pub fn shared() -> Option<&'static MailServer> {
    static SHARED: OnceLock<Result<MailServer, String>> = OnceLock::new();
    if std::env::var_os("POSTERN_SKIP_MAILSERVER").is_some_and(|v| v == "1") {
        eprintln!("POSTERN_SKIP_MAILSERVER=1: skipping a test that needs Dovecot and Postfix");
        return None;
    }
    match SHARED.get_or_init(MailServer::start) {
        Ok(server) => Some(server),
        Err(e) => panic!(
            "the mail server for this test cannot start: {e}\n\
             Install the packages (Debian: apt-get install -y dovecot-imapd dovecot-lmtpd \
             postfix openssl, or run bash scripts/test.sh), or set POSTERN_SKIP_MAILSERVER=1 \
             to skip these tests."
        ),
    }
}

/// The loopback ports of one server set.
#[derive(Debug, Clone, Copy)]
struct Ports {
    imap: u16,
    imaps: u16,
    lmtp: u16,
    smtp: u16,
    smtps: u16,
}

/// One running Dovecot + Postfix. Dropping it does nothing; the reaper stops it when the
/// process ends, and [`MailServer::stop`] stops it earlier.
pub struct MailServer {
    base: PathBuf,
    ports: Ports,
    password: String,
    /// Whether Postfix runs too (false for [`MailServer::start_dovecot_only`]).
    postfix: bool,
    /// Lines appended to `dovecot.conf`.
    extra: String,
    /// Held open for the life of the servers; closing it (process exit) wakes the reaper.
    _reaper: ChildStdin,
}

impl std::fmt::Debug for MailServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailServer")
            .field("base", &self.base)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl MailServer {
    /// Starts Dovecot and Postfix under a new temporary directory, on free loopback ports.
    pub fn start() -> Result<MailServer, String> {
        MailServer::start_with(true, "")
    }

    /// Starts a private Dovecot alone (IMAP, IMAPS, LMTP; no Postfix), for tests that stop,
    /// restart or otherwise disturb the server and must not share it. `None` with
    /// `POSTERN_SKIP_MAILSERVER=1`; panics with what to install when it cannot start.
    pub fn start_dovecot_only() -> Option<MailServer> {
        MailServer::start_dovecot_with("")
    }

    /// [`MailServer::start_dovecot_only`] with `extra` appended to `dovecot.conf` (and kept
    /// for [`MailServer::restart`]): e.g. `imap_capability = …` to play a server without IDLE
    /// or UIDPLUS.
    pub fn start_dovecot_with(extra: &str) -> Option<MailServer> {
        if std::env::var_os("POSTERN_SKIP_MAILSERVER").is_some_and(|v| v == "1") {
            eprintln!("POSTERN_SKIP_MAILSERVER=1: skipping a test that needs Dovecot");
            return None;
        }
        match MailServer::start_with(false, extra) {
            Ok(server) => Some(server),
            Err(e) => panic!(
                "a private Dovecot for this test cannot start: {e}\n\
                 Install the packages (Debian: apt-get install -y dovecot-imapd dovecot-lmtpd \
                 openssl, or run bash scripts/test.sh), or set POSTERN_SKIP_MAILSERVER=1."
            ),
        }
    }

    fn start_with(postfix: bool, extra: &str) -> Result<MailServer, String> {
        let script = script_path();
        if !script.is_file() {
            return Err(format!("{} is missing", script.display()));
        }
        let base = tempfile::Builder::new()
            .prefix("postern-mail-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| format!("chmod 711 {}: {e}", base.display()))?;
        let reaper = spawn_reaper(&script, &base)?;
        // A random password: nothing outside this process needs to know it.
        let password = format!(
            "pw-{}",
            postern_store::new_upload_secret().map_err(|e| e.to_string())?
        );

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let ports = free_ports()?;
            let start = Start {
                ports,
                password: &password,
                postfix,
                extra,
            };
            match run_script(&script, &base, "start", Some(start)) {
                Ok(out)
                    if !postfix || env_value(&out, "SMTP_PORT").is_some_and(|p| !p.is_empty()) =>
                {
                    return Ok(MailServer {
                        base,
                        ports,
                        password,
                        postfix,
                        extra: extra.to_owned(),
                        _reaper: reaper,
                    });
                }
                Ok(_) => {
                    last_error = format!(
                        "Postfix did not start: {}",
                        read_log(&base.join("log/postfix-start.err"))
                    );
                }
                Err(e) => last_error = e,
            }
            // A half-started set (Dovecot up, Postfix on a taken port) is stopped before the
            // next ports are tried.
            run_script(&script, &base, "stop", None).ok();
        }
        Err(last_error)
    }

    /// Stops both servers now (the reaper then finds nothing to stop).
    pub fn stop(&self) -> Result<(), String> {
        run_script(&script_path(), &self.base, "stop", None).map(drop)
    }

    /// Starts the servers again after [`MailServer::stop`], on the same ports, with the same
    /// password, certificate and mailboxes.
    pub fn restart(&self) -> Result<(), String> {
        run_script(
            &script_path(),
            &self.base,
            "start",
            Some(Start {
                ports: self.ports,
                password: &self.password,
                postfix: self.postfix,
                extra: &self.extra,
            }),
        )
        .map(drop)
    }

    /// The Maildir of [`USER`] (`new/`, `cur/`, `tmp/` of the INBOX): where a test can drop a
    /// message while Dovecot is stopped, as a local delivery agent would.
    pub fn maildir(&self) -> PathBuf {
        self.base.join("mail").join(USER).join("Maildir")
    }

    /// Dovecot's log so far, for assertions about what clients did (logins, failures).
    pub fn dovecot_log(&self) -> String {
        read_log(&self.base.join("log/dovecot.log"))
    }

    /// Postfix's plain SMTP port (STARTTLS and AUTH offered, neither required).
    pub fn smtp_port(&self) -> u16 {
        self.ports.smtp
    }

    /// Postfix's implicit-TLS SMTP port.
    pub fn smtps_port(&self) -> u16 {
        self.ports.smtps
    }

    /// Dovecot's plain IMAP port.
    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// Dovecot's implicit-TLS IMAP port.
    pub fn imaps_port(&self) -> u16 {
        self.ports.imaps
    }

    /// Dovecot's LMTP port.
    pub fn lmtp_port(&self) -> u16 {
        self.ports.lmtp
    }

    /// The password of both accounts (IMAP login and SMTP AUTH).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `incoming+<detail>@example.test`, delivered into [`USER`]'s INBOX.
    pub fn address(&self, detail: &str) -> String {
        format!("{USER}+{detail}@{DOMAIN}")
    }

    /// The recipient Postfix refuses with `550 5.1.1` at `RCPT TO`.
    pub fn rejected_recipient(&self) -> String {
        format!("rejected@{DOMAIN}")
    }

    /// The private CA that signed the servers' certificate (for `127.0.0.1` and `localhost`),
    /// in PEM: what a client must trust to talk TLS to them.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.base.join("ssl/ca.pem")).unwrap_or_default()
    }

    /// The temporary directory holding configuration, logs, queue and mailboxes.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Postfix's log so far, for assertion messages.
    pub fn postfix_log(&self) -> String {
        read_log(&self.base.join("log/postfix.log"))
    }

    /// A logged-in IMAP session on [`USER`] with INBOX selected.
    pub async fn imap(&self) -> std::io::Result<ImapClient> {
        let mut client = ImapClient::connect(self.ports.imap).await?;
        client.login(USER, &self.password).await?;
        client.select("INBOX").await?;
        Ok(client)
    }

    /// The messages in [`USER`]'s INBOX whose header `name` contains `value`, fetched with
    /// `BODY.PEEK[]`, in UID order.
    pub async fn messages_with_header(
        &self,
        name: &str,
        value: &str,
    ) -> std::io::Result<Vec<Vec<u8>>> {
        let mut client = self.imap().await?;
        let uids = client
            .uid_search(&format!("HEADER {} {}", name, crate::imap::quote(value)))
            .await?;
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            out.push(client.uid_fetch_body(uid).await?);
        }
        client.logout().await?;
        Ok(out)
    }

    /// Waits (bounded by `timeout`) until Postfix holds no mail for `recipient` and at least
    /// `at_least` messages with header `name` containing `value` are in the INBOX; returns them.
    /// Once the queue holds nothing for the recipient, no further copy can still arrive, so the
    /// count returned is final — what "delivered exactly once" tests need.
    pub async fn wait_for_delivery(
        &self,
        recipient: &str,
        name: &str,
        value: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let queued = self.queued_for(recipient)?;
            let found = self
                .messages_with_header(name, value)
                .await
                .map_err(|e| format!("IMAP: {e}"))?;
            if !queued && found.len() >= at_least {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "after {timeout:?}: {} message(s) with {name}: {value} (wanted {at_least}), \
                     still queued for {recipient}: {queued}\npostfix log:\n{}",
                    found.len(),
                    self.postfix_log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether Postfix's queue (incoming, active, deferred, hold) holds mail for `recipient`.
    pub fn queued_for(&self, recipient: &str) -> Result<bool, String> {
        let out = Command::new("postqueue")
            .arg("-c")
            .arg(self.base.join("postfix/etc"))
            .arg("-j")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("postqueue: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "postqueue -j failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // One JSON object per queued message; the address appears quoted in its recipients.
        let needle = format!("\"{recipient}\"");
        Ok(String::from_utf8_lossy(&out.stdout).contains(&needle))
    }
}

/// `scripts/mailserver.sh` of this repository.
fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mailserver.sh")
}

/// What `start` needs besides the base directory.
struct Start<'a> {
    ports: Ports,
    password: &'a str,
    postfix: bool,
    /// Lines appended to `dovecot.conf`.
    extra: &'a str,
}

/// Runs the script; `start` is given for the `start` command. Returns its stdout.
fn run_script(
    script: &Path,
    base: &Path,
    command: &str,
    start: Option<Start<'_>>,
) -> Result<String, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(command).arg(base).env("INSTALL", "0");
    if let Some(Start {
        ports,
        password,
        postfix,
        extra,
    }) = start
    {
        cmd.env("POSTFIX", if postfix { "1" } else { "0" })
            .env("DOVECOT_EXTRA", extra);
        cmd.env("IMAP_PORT", ports.imap.to_string())
            .env("IMAPS_PORT", ports.imaps.to_string())
            .env("LMTP_PORT", ports.lmtp.to_string())
            .env("SMTP_PORT", ports.smtp.to_string())
            .env("SMTPS_PORT", ports.smtps.to_string())
            .env("MAIL_PASSWORD", password);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "mailserver.sh {command} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value of `NAME=value` in the script's `env` output.
fn env_value<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

/// The reaper (see `crate::reaper`): stops the servers and removes `base` when the test
/// process ends.
fn spawn_reaper(script: &Path, base: &Path) -> Result<ChildStdin, String> {
    crate::reaper::spawn(
        "bash \"$MS_SCRIPT\" stop \"$MS_BASE\" >/dev/null 2>&1; rm -rf \"$MS_BASE\"",
        &[
            ("MS_SCRIPT", script.as_os_str()),
            ("MS_BASE", base.as_os_str()),
        ],
    )
}

/// Five distinct free loopback ports: all probes are held open together so the kernel cannot
/// hand out the same port twice.
fn free_ports() -> Result<Ports, String> {
    let probe = || {
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("probing a free port: {e}"))
    };
    let listeners = [probe()?, probe()?, probe()?, probe()?, probe()?];
    let mut ports = [0u16; 5];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|e| format!("probing a free port: {e}"))?
            .port();
    }
    let [imap, imaps, lmtp, smtp, smtps] = ports;
    Ok(Ports {
        imap,
        imaps,
        lmtp,
        smtp,
        smtps,
    })
}

/// A loopback port with nothing listening on it (probed, then released), for "server down"
/// tests. Another process could take it in between; on loopback in a test run that is rare
/// enough, and a test seeing a connection to something else would fail loudly, not pass.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("probe a free port");
    listener.local_addr().expect("probe address").port()
}
