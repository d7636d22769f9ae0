//! A private nginx for the tests: Debian's `nginx` as an HTTPS reverse proxy on a free
//! loopback port, with its own `nginx.conf`, pid file, logs and temporary paths in a temporary
//! directory, in the foreground (`daemon off`), stopped when dropped and when the test process
//! ends (by the reaper, through its pid file).
//!
//! The proxy is configured as the README tells administrators to: TLS ends at nginx, and the
//! client's address is *appended* to whatever `X-Forwarded-For` the client sent
//! (`$proxy_add_x_forwarded_for`), so what postern reads from the right is nginx's entry and
//! what a client wrote is still there to be ignored.
//!
//! Environment: `POSTERN_SKIP_NGINX=1` skips the tests that need it (with a printed reason).
//! Without it, a missing `nginx` fails those tests with a message saying what to install.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::ServerPair;

/// Debian's nginx binary.
pub const NGINX: &str = "/usr/sbin/nginx";
/// How long nginx may take to accept connections, and to stop.
const BOUND: Duration = Duration::from_secs(20);

/// One private nginx proxying HTTPS on `port` to plain HTTP on an upstream loopback port.
pub struct Nginx {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    _reaper: ChildStdin,
}

impl Nginx {
    /// A proxy, or `None` (with a printed reason) under `POSTERN_SKIP_NGINX=1`.
    pub fn start_or_skip(upstream: u16, tls: &ServerPair) -> Option<Nginx> {
        if std::env::var_os("POSTERN_SKIP_NGINX").is_some_and(|v| v == "1") {
            eprintln!("POSTERN_SKIP_NGINX=1: skipping this test, which needs nginx");
            return None;
        }
        match Nginx::start(upstream, tls) {
            Ok(nginx) => Some(nginx),
            Err(e) => panic!(
                "nginx tests cannot run: {e}\nInstall it (Debian: apt-get install -y nginx) or \
                 set POSTERN_SKIP_NGINX=1 to skip them."
            ),
        }
    }

    /// Starts nginx terminating TLS with `tls` on a free loopback port, proxying to
    /// `http://127.0.0.1:<upstream>`.
    pub fn start(upstream: u16, tls: &ServerPair) -> Result<Nginx, String> {
        if !Path::new(NGINX).exists() {
            return Err(format!("{NGINX} is not installed"));
        }
        let dir = tempfile::Builder::new()
            .prefix("postern-nginx-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        // Started as root, nginx's workers run as `nobody`: they must reach their temp paths.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
        let reaper = crate::reaper::spawn(
            "kill -QUIT \"$(cat \"$NGINX_DIR/nginx.pid\" 2>/dev/null)\" 2>/dev/null",
            &[("NGINX_DIR", dir.path().as_os_str())],
        )?;
        let port = free_port()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, upstream, tls))
            .map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let error_log = dir.path().join("error.log");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {NGINX}: {e}"))?;
        let mut nginx = Nginx {
            port,
            dir,
            child: Some(child),
            _reaper: reaper,
        };
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Some(child) = nginx.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut log = std::fs::read_to_string(&error_log).unwrap_or_default();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = stderr.read_to_string(&mut log);
                }
                return Err(format!("nginx exited at start ({status}):\n{log}"));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx.stop();
        Err(format!("nginx did not listen on 127.0.0.1:{port} in time"))
    }

    /// The proxy's port (HTTPS on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// What nginx wrote to its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Stops nginx (SIGQUIT: finish requests in flight, then exit), killing it if it has not
    /// stopped in time.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-QUIT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        // A stale pid must not reach the reaper.
        let _ = std::fs::remove_file(self.dir.path().join("nginx.pid"));
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("probing a free port: {e}"))
}

/// The whole configuration: one worker, everything under `dir`, one TLS server.
fn config(dir: &Path, port: u16, upstream: u16, tls: &ServerPair) -> String {
    let at = |name: &str| -> PathBuf { dir.join(name) };
    format!(
        "worker_processes 1;
pid {pid};
events {{ worker_connections 64; }}
http {{
    access_log {access};
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
",
        pid = at("nginx.pid").display(),
        access = at("access.log").display(),
        body = at("body").display(),
        proxy = at("proxy").display(),
        fastcgi = at("fastcgi").display(),
        uwsgi = at("uwsgi").display(),
        scgi = at("scgi").display(),
        certificate = tls.certificate.display(),
        key = tls.key.display(),
    )
}
