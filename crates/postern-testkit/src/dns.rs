//! A private authoritative DNS server for the tests: Debian's Knot DNS (`knotd`) serving one
//! zone, written per test, on a free loopback port (UDP and TCP), in a temporary directory,
//! stopped when dropped and, by the same reaper as the other servers, when the test process
//! ends. Sender-authentication tests publish their DKIM keys, SPF and DMARC records here.
//!
//! Long TXT values (a 2048-bit RSA key) are split into strings of at most 255 bytes, as a
//! zone file requires; resolvers join them back.
//!
//! Environment: `POSTERN_SKIP_DNS=1` skips the tests that need it (with a printed reason).
//! Without it, a missing `knotd` fails those tests with a message saying what to install.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer for its zone.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One private DNS server; stopped when dropped and when the test process ends.
pub struct DnsServer {
    port: u16,
    dir: PathBuf,
    origin: String,
    child: Option<Child>,
    _reaper: ChildStdin,
}

impl DnsServer {
    /// A server for `origin` (e.g. `"test."`) with `records` (zone-file lines, see
    /// [`txt_record`] and [`a_record`]), or `None` (with a printed reason) under
    /// `POSTERN_SKIP_DNS=1`.
    pub fn start_or_skip(origin: &str, records: &[String]) -> Option<DnsServer> {
        if std::env::var_os("POSTERN_SKIP_DNS").is_some_and(|v| v == "1") {
            eprintln!("POSTERN_SKIP_DNS=1: skipping this test, which needs a DNS server");
            return None;
        }
        match DnsServer::start(origin, records) {
            Ok(server) => Some(server),
            Err(e) => panic!(
                "DNS tests cannot run: {e}\nInstall the server (Debian: apt-get install -y \
                 --no-install-recommends knot) or set POSTERN_SKIP_DNS=1 to skip them."
            ),
        }
    }

    /// Starts `knotd` for `origin` with `records` on a free loopback port.
    pub fn start(origin: &str, records: &[String]) -> Result<DnsServer, String> {
        let origin = format!("{}.", origin.trim_end_matches('.'));
        let dir = tempfile::Builder::new()
            .prefix("postern-dns-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        let reaper = crate::reaper::spawn(
            &crate::reaper::kill_then_remove("DNS_DIR", "knot.pid"),
            &[("DNS_DIR", dir.as_os_str())],
        )?;
        let port = free_port()?;
        std::fs::create_dir_all(dir.join("db")).map_err(|e| format!("database dir: {e}"))?;
        let config = format!(
            "server:\n    rundir: \"{d}\"\n    pidfile: \"{d}/knot.pid\"\n    listen: 127.0.0.1@{port}\n    \
             udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: \"{d}/db\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    file: \"zone\"\n    \
             journal-content: none\n    zonefile-sync: -1\n    zonefile-load: whole\n\
             zone:\n  - domain: {origin}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("knot.conf"), config).map_err(|e| format!("knot.conf: {e}"))?;
        let mut zone = format!(
            "$ORIGIN {origin}\n$TTL 300\n@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60\n\
             @ NS ns.{origin}\nns A 127.0.0.1\n"
        );
        for record in records {
            zone.push_str(record);
            zone.push('\n');
        }
        std::fs::write(dir.join("zone"), zone).map_err(|e| format!("zone file: {e}"))?;
        let mut server = DnsServer {
            port,
            dir,
            origin,
            child: None,
            _reaper: reaper,
        };
        server.restart()?;
        Ok(server)
    }

    /// The server's address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Stops the server at once (SIGKILL): queries then go unanswered.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // A stale pid must not reach the reaper: the number may be reused by then.
            let _ = std::fs::remove_file(self.dir.join("knot.pid"));
        }
    }

    /// Starts the server again on the same port (after [`DnsServer::stop`]).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run knotd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if answers_soa(self.port, &self.origin) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("knotd exited at start ({status}); check the zone"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "knotd did not answer on port {} in time",
            self.port
        ))
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A zone-file TXT record for `name` (relative to the origin, or absolute with a final dot):
/// the value in quoted strings of at most 255 bytes, `"` and `\` escaped.
pub fn txt_record(name: &str, value: &str) -> String {
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let mut quoted = String::from("\"");
            for &byte in chunk {
                match byte {
                    b'"' | b'\\' => {
                        quoted.push('\\');
                        quoted.push(char::from(byte));
                    }
                    0x20..=0x7e => quoted.push(char::from(byte)),
                    other => quoted.push_str(&format!("\\{other:03}")),
                }
            }
            quoted.push('"');
            quoted
        })
        .collect();
    format!("{name} TXT {}", strings.join(" "))
}

/// A zone-file A record.
pub fn a_record(name: &str, address: Ipv4Addr) -> String {
    format!("{name} A {address}")
}

/// A loopback port free for both TCP and UDP right now.
fn free_port() -> Result<u16, String> {
    for _ in 0..20 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("probing a free port: {e}"))?;
        let port = tcp
            .local_addr()
            .map_err(|e| format!("probing a free port: {e}"))?
            .port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no loopback port free for both TCP and UDP".to_string())
}

/// Whether the server answers a SOA query for `origin` with NOERROR and an answer.
fn answers_soa(port: u16, origin: &str) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    let mut query = vec![0x50, 0x54, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in origin.split('.').filter(|l| !l.is_empty()) {
        query.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        query.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    query.extend_from_slice(&[0, 0, 6, 0, 1]);
    if socket.send_to(&query, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut answer = [0u8; 512];
    match socket.recv(&mut answer) {
        Ok(n) if n >= 12 => {
            answer[..2] == query[..2] && answer[3] & 0x0f == 0 && (answer[6], answer[7]) != (0, 0)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_values_are_split_into_255_byte_strings() {
        let value = format!("v=DKIM1; p={}\"\\", "A".repeat(400));
        let record = txt_record("sel._domainkey.acme", &value);
        assert!(record.starts_with("sel._domainkey.acme TXT \""));
        let strings: Vec<&str> = record.split("\" \"").collect();
        assert_eq!(strings.len(), 2);
        assert!(
            record.ends_with("\\\"\\\\\""),
            "quotes and backslashes escaped: {record}"
        );
    }
}
