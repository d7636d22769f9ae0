//! `postern serve`: mail handed to its LMTP listener is stored and processed before the 250,
//! SIGTERM stops it cleanly, and a port in use is an error that names the port.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Sandbox, str_field};

const BOUND: Duration = Duration::from_secs(30);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

pub(crate) fn start(sandbox: &Sandbox) -> Child {
    sandbox
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("postern serve starts")
}

pub(crate) fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(BOUND)).expect("timeout");
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "postern serve never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one LMTP conversation and returns every reply line.
pub(crate) fn lmtp(port: u16, recipient: &str, message: &str) -> Vec<String> {
    lmtp_signalling(port, recipient, message, || {})
}

/// [`lmtp`], calling `data_sent` once the message's final `.` is written.
pub(crate) fn lmtp_signalling(
    port: u16,
    recipient: &str,
    message: &str,
    data_sent: impl FnOnce(),
) -> Vec<String> {
    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut replies = Vec::new();
    let read_reply = |reader: &mut BufReader<TcpStream>, replies: &mut Vec<String>| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply line");
        replies.push(line.trim_end().to_owned());
        // The last line of a reply has a space after the code.
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
    };
    read_reply(&mut reader, &mut replies);
    for command in [
        "LHLO test.example\r\n".to_owned(),
        "MAIL FROM:<jake@example.com>\r\n".to_owned(),
        format!("RCPT TO:<{recipient}>\r\n"),
        "DATA\r\n".to_owned(),
    ] {
        writer.write_all(command.as_bytes()).expect("send");
        read_reply(&mut reader, &mut replies);
    }
    writer.write_all(message.as_bytes()).expect("send data");
    writer.write_all(b".\r\n").expect("end data");
    data_sent();
    read_reply(&mut reader, &mut replies);
    writer.write_all(b"QUIT\r\n").expect("quit");
    replies
}

pub(crate) fn stop(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "postern serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A sandbox whose `serve` listens for LMTP on a free port, with jake a developer of
/// `land/ooo`; returns it, the port and the project's new-issue address for jake.
fn lmtp_sandbox() -> (Sandbox, u16, String) {
    let port = free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n"
    ));
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    sandbox.admin_json(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let address = str_field(&shown["addresses"], "new_issue").to_owned();
    (sandbox, port, address)
}

#[test]
fn lmtp_mail_is_processed_and_sigterm_stops_cleanly() {
    let (sandbox, port, address) = lmtp_sandbox();

    let child = start(&sandbox);
    let message = format!(
        "From: jake@example.com\r\nTo: {address}\r\nSubject: By LMTP\r\nMessage-ID: <l-1@x>\r\n\r\nHello.\r\n"
    );
    let replies = lmtp(port, &address, &message);
    assert!(
        replies.last().is_some_and(|reply| reply.starts_with("250")),
        "{replies:?}"
    );
    // The 250 came after the commit: the issue is there.
    let issue = sandbox.admin_json(&["issue", "show", "land/ooo", "1"]);
    assert_eq!(str_field(&issue, "title"), "By LMTP");
    let status = stop(child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_port_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n"
    ));
    let run = sandbox.run(&["serve"]);
    let error = run.one_line_error(78);
    assert!(error.contains(&port.to_string()), "{error}");
}

/// A plain HTTP/1.1 GET on loopback; returns the status line and the body.
pub(crate) fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::Read as _;
    let mut stream = connect(port);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn health_answers_on_the_web_port_and_ready_and_metrics_need_an_administrator() {
    let (port, web) = (free_port(), free_port());
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\n"
    ));
    let child = start(&sandbox);
    let (status, body) = http_get(web, "/health");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.trim(), "ok");
    // /ready and /metrics show mailbox locations and errors: administrators only (postern-web's
    // ops tests sign in and scrape with a token).
    for path in ["/ready", "/metrics"] {
        let (status, body) = http_get(web, path);
        assert!(status.contains(" 401 "), "{path}: {status}");
        assert!(!body.contains("postern_store_up"), "{path}: {body}");
    }
    let (status, _) = http_get(web, "/admin/mail");
    assert!(
        status.contains(" 303 ") || status.contains(" 302 ") || status.contains(" 401 "),
        "the mail desk needs a sign-in: {status}"
    );
    assert!(stop(child).success());
}

#[test]
fn a_web_port_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{}\"\nweb:\n  listen: \"127.0.0.1:{port}\"\n",
        free_port()
    ));
    let run = sandbox.run(&["serve"]);
    let error = run.one_line_error(78);
    assert!(
        error.contains(&port.to_string()) && error.contains("web.listen"),
        "{error}"
    );
}

/// Every directory and file under `dir` whose mode lets anyone but the owner in.
fn open_entries(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut open = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Bounded: a fresh data directory holds a few dozen entries.
    for _ in 0..10_000 {
        let Some(path) = pending.pop() else { break };
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = metadata.permissions().mode() & 0o777;
        if (metadata.is_dir() || metadata.is_file()) && mode & 0o077 != 0 {
            open.push(format!("{} {mode:o}", path.display()));
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    open
}

#[test]
fn the_data_directory_is_private_after_a_start_under_umask_022() {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let (sandbox, port, address) = lmtp_sandbox();
    // As an earlier version left it under umask 022: everything readable by everyone.
    let data = sandbox.path().join("postern-data");
    std::fs::create_dir_all(data.join("uploads/old")).expect("mkdir");
    std::fs::write(data.join("uploads/old/picture.png"), b"png").expect("write");
    for (path, mode) in [
        (data.clone(), 0o755),
        (data.join("uploads"), 0o755),
        (data.join("uploads/old"), 0o755),
        (data.join("uploads/old/picture.png"), 0o644),
        (data.join("postern.sqlite3"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    assert!(!open_entries(&data).is_empty());

    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "umask 022 && exec \"$0\" serve",
            crate::support::POSTERN,
        ])
        .current_dir(sandbox.path())
        .env("POSTERN_CONFIG", sandbox.path().join("postern.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("postern serve starts");
    // Mail creates new files while it runs (raw message, spool, outbox): those must be private too.
    let message = format!(
        "From: jake@example.com\r\nTo: {address}\r\nSubject: Private\r\nMessage-ID: <p-1@x>\r\n\r\nHello.\r\n"
    );
    let replies = lmtp(port, &address, &message);
    assert!(
        replies.last().is_some_and(|reply| reply.starts_with("250")),
        "{replies:?}"
    );
    let open = open_entries(&data);
    let mut stderr = child.stderr.take().expect("stderr");
    let status = stop(child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).expect("read stderr");
    assert!(status.success(), "{status:?}: {log}");
    assert!(open.is_empty(), "still open to others: {open:?}");
    assert!(data.join("postern.sqlite3").exists());
    assert!(
        log.contains("data directory: entries other users could read are now private"),
        "{log}"
    );
}

/// The response head of a plain GET on loopback.
fn http_head(port: u16, path: &str) -> String {
    use std::io::Read as _;
    let mut stream = connect(port);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(head, _)| head.to_owned())
}

#[test]
fn behind_an_https_proxy_cookies_are_secure_and_bad_proxies_are_refused() {
    let web = free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\n  external_url: \"https://tracker.example/\"\n  trusted_proxies: [\"127.0.0.1/32\", \"::1\"]\n",
        free_port()
    ));
    let child = start(&sandbox);
    let head = http_head(web, "/login");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with("set-cookie: postern_login=")
        })
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{head}");
    assert!(stop(child).success());

    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{}\"\nweb:\n  listen: \"127.0.0.1:0\"\n  trusted_proxies: [\"10.0.0.0/40\"]\n",
        free_port()
    ));
    let run = sandbox.run(&["serve"]);
    let error = run.one_line_error(78);
    assert!(
        error.contains("web.trusted_proxies") && error.contains("10.0.0.0/40"),
        "{error}"
    );
}
