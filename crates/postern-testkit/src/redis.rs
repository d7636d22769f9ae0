//! A private Redis server for the tests: Debian's `redis-server` on a free loopback port, in a
//! temporary directory, without persistence, stopped when the test process ends (by the same
//! reaper as PostgreSQL, through a pid file, so a restarted server is found too).
//!
//! Unlike the shared PostgreSQL server, each test that needs Redis starts its own, because the
//! fault tests stop and restart it.
//!
//! Environment: `POSTERN_SKIP_REDIS=1` skips the tests that need Redis (with a printed reason).
//! Without it, a missing `redis-server` fails those tests with a message saying what to install.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One private Redis server; stopped when dropped and when the test process ends.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    _reaper: ChildStdin,
}

impl RedisServer {
    /// A new server, or `None` (with a printed reason) under `POSTERN_SKIP_REDIS=1`.
    pub fn start_or_skip() -> Option<RedisServer> {
        if std::env::var_os("POSTERN_SKIP_REDIS").is_some_and(|v| v == "1") {
            eprintln!("POSTERN_SKIP_REDIS=1: skipping this test, which needs a Redis server");
            return None;
        }
        match RedisServer::start() {
            Ok(server) => Some(server),
            Err(e) => panic!(
                "Redis tests cannot run: {e}\nInstall the server (Debian: apt-get install -y \
                 redis-server) or set POSTERN_SKIP_REDIS=1 to skip them."
            ),
        }
    }

    /// Starts `redis-server` on a free loopback port.
    pub fn start() -> Result<RedisServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("postern-redis-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        let reaper = crate::reaper::spawn(
            &crate::reaper::kill_then_remove("REDIS_DIR", "redis.pid"),
            &[("REDIS_DIR", dir.as_os_str())],
        )?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("probing a free port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("probing a free port: {e}"))?
            .port();
        drop(listener);
        let mut server = RedisServer {
            port,
            dir,
            child: None,
            _reaper: reaper,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (SIGKILL: like a crash). Data is lost (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // A stale pid must not reach the reaper: the number may belong to another process
            // by the time this one ends.
            let _ = std::fs::remove_file(self.dir.join("redis.pid"));
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "redis-server did not answer on port {} in time",
            self.port
        ))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a Redis answers `PING` on the port.
fn ping(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
