//! `postern serve`: mail handed to its LMTP listener is stored and processed before the 250,
//! SIGTERM stops it cleanly, and a port in use is an error that names the port.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Sandbox, str_field};

const BOUND: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn start(sandbox: &Sandbox) -> Child {
    sandbox
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("postern serve starts")
}

fn connect(port: u16) -> TcpStream {
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
fn lmtp(port: u16, recipient: &str, message: &str) -> Vec<String> {
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
    read_reply(&mut reader, &mut replies);
    writer.write_all(b"QUIT\r\n").expect("quit");
    replies
}

fn stop(mut child: Child) -> std::process::ExitStatus {
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

#[test]
fn lmtp_mail_is_processed_and_sigterm_stops_cleanly() {
    let port = free_port();
    let sandbox = Sandbox::with_config(&format!("listener:\n  listen: \"127.0.0.1:{port}\"\n"));
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    sandbox.admin_json(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let address = str_field(&shown["addresses"], "new_issue").to_owned();

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
    let sandbox = Sandbox::with_config(&format!("listener:\n  listen: \"127.0.0.1:{port}\"\n"));
    let run = sandbox.run(&["serve"]);
    let error = run.one_line_error(78);
    assert!(error.contains(&port.to_string()), "{error}");
}
