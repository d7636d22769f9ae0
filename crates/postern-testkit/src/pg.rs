//! A private PostgreSQL server for the tests, started from the Debian packages' binaries.
//!
//! Lifetime: [`shared_admin_url`] starts one server per test binary, on first use, and keeps it
//! in a `static`. Statics are never dropped, so stopping it cannot hang off a `Drop`. Instead
//! every server gets a **reaper**: a tiny `sh` process in its own process group whose stdin is a
//! pipe from this process. The write end lives as long as the test process; when the process
//! ends — normally, by panic, by Ctrl-C or by SIGKILL — the kernel closes it, `cat` in the reaper
//! sees end-of-file, and the reaper runs `pg_ctl stop -m immediate` and removes the temporary
//! directory. No polling, no `atexit`, no unsafe code.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root `initdb` and `pg_ctl` run
//! as the `postgres` user through `runuser`, in a temporary directory owned by that user. The
//! server listens on 127.0.0.1 only, on a free port, with its Unix socket inside the temporary
//! directory, trust authentication and `fsync=off`.
//!
//! Environment:
//! - `POSTERN_TEST_PG_URL=postgres://user@host:port/db` uses that server instead (databases are
//!   created on it and not dropped).
//! - `POSTERN_SKIP_PG=1` skips the PostgreSQL half of every test. Without it, missing binaries
//!   make the PostgreSQL tests fail with a message saying what to install.
//! - `POSTERN_PG_BINDIR=/path/to/bin` overrides the discovery of `initdb` and `pg_ctl`.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// How many ports are tried if another process takes the free port between our probe and the
/// server's bind.
const START_ATTEMPTS: usize = 3;

/// What the test needs to know to find or start PostgreSQL.
pub enum PgChoice {
    /// Skip PostgreSQL (`POSTERN_SKIP_PG=1`).
    Skip,
    /// An admin URL of a running server.
    Url(String),
}

/// The server (or external URL) shared by every test in this binary.
pub fn shared_admin_url() -> PgChoice {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    if std::env::var_os("POSTERN_SKIP_PG").is_some_and(|v| v == "1") {
        return PgChoice::Skip;
    }
    let shared = SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("POSTERN_TEST_PG_URL") {
            return Ok(url);
        }
        let server = PgServer::start()?;
        let url = server.admin_url();
        // Keep the server (and its reaper pipe) for the life of the process.
        KEEP.lock()
            .map_err(|_| "pg server registry poisoned".to_owned())?
            .push(server);
        Ok(url)
    });
    match shared {
        Ok(url) => PgChoice::Url(url.clone()),
        Err(e) => panic!(
            "PostgreSQL tests cannot run: {e}\n\
             Install the server (Debian: apt-get install -y postgresql), point \
             POSTERN_TEST_PG_URL at a server, or set POSTERN_SKIP_PG=1 to skip them."
        ),
    }
}

static KEEP: Mutex<Vec<PgServer>> = Mutex::new(Vec::new());

/// Whether `POSTERN_TEST_PG_URL` points the tests at an external server.
pub fn using_external_server() -> bool {
    std::env::var_os("POSTERN_TEST_PG_URL").is_some()
}

/// One private server. Dropping it does nothing; [`PgServer::stop`] stops it, and the reaper
/// stops it when the process ends.
pub struct PgServer {
    port: u16,
    dir: PathBuf,
    pg_ctl: PathBuf,
    run_as_postgres: bool,
    /// Held open for the life of the server; closing it (process exit) wakes the reaper.
    _reaper: ChildStdin,
}

impl PgServer {
    /// initdb + pg_ctl start in a fresh temporary directory.
    pub fn start() -> Result<PgServer, String> {
        let bin = bin_dir().ok_or_else(|| {
            "no PostgreSQL server binaries found (looked in $POSTERN_PG_BINDIR, \
             /usr/lib/postgresql/*/bin and PATH for initdb and pg_ctl)"
                .to_owned()
        })?;
        let run_as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("postern-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        if run_as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let pg_ctl = bin.join("pg_ctl");
        let reaper = spawn_reaper(&dir, &data, &pg_ctl, run_as_postgres)?;

        let initdb = bin.join("initdb");
        let mut cmd = pg_command(&initdb, run_as_postgres);
        cmd.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(cmd, "initdb")?;

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let opts = server_options(port, &dir);
            let mut cmd = pg_command(&pg_ctl, run_as_postgres);
            cmd.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"]);
            match run(cmd, "pg_ctl start") {
                Ok(()) => {
                    return Ok(PgServer {
                        port,
                        dir,
                        pg_ctl,
                        run_as_postgres,
                        _reaper: reaper,
                    });
                }
                Err(e) => {
                    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                    last_error = format!("{e}\nserver.log:\n{log}");
                }
            }
        }
        Err(last_error)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server again after [`PgServer::stop`], on the same port and data: the clients'
    /// connections were cut, and they reconnect to the same URL.
    pub fn start_again(&self) -> Result<(), String> {
        let opts = server_options(self.port, &self.dir);
        let mut cmd = pg_command(&self.pg_ctl, self.run_as_postgres);
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]);
        run(cmd, "pg_ctl start")
    }

    /// Stops the server the way an operator restarting it would (`-m fast`): every client
    /// connection is cut, and what was committed is kept. The server runs without synchronous
    /// commit (see `server_options`), so [`PgServer::stop`]'s crash could lose commits that
    /// were already acknowledged: a property of this test server, not of its clients.
    pub fn stop_fast(&self) -> Result<(), String> {
        let mut cmd = pg_command(&self.pg_ctl, self.run_as_postgres);
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run(cmd, "pg_ctl stop")
    }

    /// Stops the server at once (`-m immediate`: like a crash, which is what the tests want).
    pub fn stop(&self) -> Result<(), String> {
        let mut cmd = pg_command(&self.pg_ctl, self.run_as_postgres);
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        run(cmd, "pg_ctl stop")
    }
}

/// `pg_ctl -o`: loopback only, sockets in `dir`, and no durability (tests need none).
fn server_options(port: u16, dir: &Path) -> String {
    format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    )
}

/// The reaper (see `crate::reaper`): stops the server and removes `dir` when the test process
/// ends.
fn spawn_reaper(
    dir: &Path,
    data: &Path,
    pg_ctl: &Path,
    as_postgres: bool,
) -> Result<ChildStdin, String> {
    let run_as: &std::ffi::OsStr = if as_postgres {
        "runuser -u postgres --".as_ref()
    } else {
        "".as_ref()
    };
    crate::reaper::spawn(
        "$PG_RUNAS \"$PG_CTL\" -D \"$PG_DATA\" -m immediate stop >/dev/null 2>&1; \
         rm -rf \"$PG_DIR\"",
        &[
            ("PG_RUNAS", run_as),
            ("PG_CTL", pg_ctl.as_os_str()),
            ("PG_DATA", data.as_os_str()),
            ("PG_DIR", dir.as_os_str()),
        ],
    )
}

fn pg_command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `$POSTERN_PG_BINDIR`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian keeps
/// the server binaries out of PATH), else the directory of `pg_ctl` on PATH.
fn bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("POSTERN_PG_BINDIR") {
        return Some(PathBuf::from(d)).filter(|d| has_tools(d));
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, bin)| bin);
    debian.or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_tools(d)))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                "running as root, but there is no `postgres` user to run the server".to_owned()
            })
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("probing a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("probing a free port: {e}"))
}
