//! `web.tls`: `postern serve` answers HTTPS itself with a certificate from a private CA (made
//! with `openssl`), marks cookies `Secure`, and swaps the certificate on SIGHUP without closing
//! its listener or open connections; a broken replacement keeps the old pair. Files that are
//! missing, unreadable or do not belong together stop it with an error naming the file.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_testkit::certs::{PrivateCa, ServerPair};

use crate::https::{Client, certificate_der};
use crate::serve::{free_port, stop};
use crate::support::{Sandbox, serve_until};

const BOUND: Duration = Duration::from_secs(30);

/// A sandbox whose `serve` answers HTTPS on a free port with `web.pem` / `web.key`; returns
/// it, the CA, and the web port.
fn tls_sandbox() -> (Sandbox, PrivateCa, u16) {
    let web = free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\n  tls:\n    certificate: web.pem\n    key: web.key\n",
        free_port()
    ));
    let ca_dir = sandbox.path().join("ca");
    std::fs::create_dir(&ca_dir).expect("mkdir ca");
    let ca = PrivateCa::new(&ca_dir, "postern test CA");
    (sandbox, ca, web)
}

/// Puts `pair` where the configuration points, each file replaced in one rename.
fn install(sandbox: &Sandbox, certificate: &Path, key: &Path) {
    for (from, to) in [(certificate, "web.pem"), (key, "web.key")] {
        let staged = sandbox.path().join(format!("{to}.new"));
        std::fs::copy(from, &staged).expect("copy the new file");
        std::fs::rename(&staged, sandbox.path().join(to)).expect("rename into place");
    }
}

fn hang_up(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the HTTPS client")
}

fn pem_body(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).expect("read PEM");
    text.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<String>()
}

#[test]
fn serve_answers_https_and_sighup_swaps_the_certificate_keeping_open_connections() {
    let (sandbox, ca, web) = tls_sandbox();
    let first = ca.issue("first");
    let second = ca.issue("second");
    install(&sandbox, &first.certificate, &first.key);
    let (child, stderr, _) = serve_until(&sandbox, Some("info"), "the start line", BOUND, |line| {
        line.contains("postern started")
    });
    let rt = runtime();
    let client = Client::new(&ca.certificate(), Ipv4Addr::LOCALHOST).expect("client");

    // HTTPS with the private CA; the sign-in form's cookie is Secure without external_url.
    let login = rt
        .block_on(client.get(web, "/login", ""))
        .expect("GET /login");
    assert_eq!(login.status, 200, "{}", login.head);
    let cookie = login.set_cookie("postern_login").expect("a login cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(login.certificate == certificate_der(&first.certificate));

    // A connection opened before the reload...
    let open = rt.block_on(client.connect(web)).expect("connect");
    install(&sandbox, &second.certificate, &second.key);
    hang_up(&child);
    stderr.wait_for("the reload line", BOUND, |line| {
        line.contains("certificate and key reloaded")
    });
    // ...still answers, with the certificate it was opened with; new ones get the new one.
    let kept = rt
        .block_on(open.get(web, "/health"))
        .expect("the open connection");
    assert_eq!(kept.status, 200, "{}", kept.head);
    assert!(
        kept.certificate == certificate_der(&first.certificate),
        "the open connection changed certificate"
    );
    let renewed = rt
        .block_on(client.get(web, "/health", ""))
        .expect("GET /health");
    assert_eq!(renewed.status, 200);
    assert!(
        renewed.certificate == certificate_der(&second.certificate),
        "a new connection after SIGHUP was not served the new certificate"
    );

    // A broken replacement (the first pair's key with the second certificate) keeps the pair
    // in use, and says so without quoting the key.
    install(&sandbox, &second.certificate, &first.key);
    hang_up(&child);
    let refused = stderr.wait_for("the refusal", BOUND, |line| {
        line.contains("web.tls not reloaded")
    });
    assert!(refused.contains("does not go with"), "{refused}");
    let still = rt
        .block_on(client.get(web, "/health", ""))
        .expect("GET /health");
    assert_eq!(still.status, 200);
    assert!(
        still.certificate == certificate_der(&second.certificate),
        "a broken replacement changed the certificate in use"
    );

    let status = stop(child);
    let log = stderr.finish().join("\n");
    assert!(status.success(), "{status:?}\n{log}");
    for key in [&first.key, &second.key] {
        let body = pem_body(key);
        assert!(!log.contains(&body[..40]), "a key was logged:\n{log}");
    }
}

#[test]
fn unusable_tls_files_stop_serve_with_an_error_naming_the_file() {
    let (sandbox, ca, _) = tls_sandbox();
    let ServerPair { certificate, key } = ca.issue("web");
    let other = ca.issue("other");

    // Missing.
    let error = sandbox.run(&["serve"]).one_line_error(78).to_owned();
    assert!(
        error.contains("web.tls.certificate") && error.contains("web.pem"),
        "{error}"
    );

    // Not PEM at all.
    install(&sandbox, &certificate, &key);
    std::fs::write(sandbox.path().join("web.key"), b"not a key\n").expect("write");
    let error = sandbox.run(&["serve"]).one_line_error(78).to_owned();
    assert!(
        error.contains("web.tls.key") && error.contains("web.key"),
        "{error}"
    );

    // Unreadable (a directory where the file should be).
    std::fs::remove_file(sandbox.path().join("web.key")).expect("rm");
    std::fs::create_dir(sandbox.path().join("web.key")).expect("mkdir");
    let error = sandbox.run(&["serve"]).one_line_error(78).to_owned();
    assert!(
        error.contains("web.tls.key") && error.contains("cannot read"),
        "{error}"
    );
    std::fs::remove_dir(sandbox.path().join("web.key")).expect("rmdir");

    // A key that belongs to another certificate; the message quotes neither file.
    install(&sandbox, &certificate, &other.key);
    let error = sandbox.run(&["serve"]).one_line_error(78).to_owned();
    assert!(error.contains("does not go with"), "{error}");
    for file in [&other.key, &certificate] {
        assert!(!error.contains(&pem_body(file)[..40]), "{error}");
    }
    // `postern check` says the same before anything is started, and OK once the pair is right.
    let checked = sandbox.run(&["check"]);
    assert!(
        checked.code == Some(1) && checked.stdout.contains("FAIL web.tls: web.tls: the key"),
        "{}",
        checked.stdout
    );
    install(&sandbox, &certificate, &key);
    let checked = sandbox.run(&["check"]);
    assert!(
        checked.code == Some(0) && checked.stdout.contains("OK   web.tls:"),
        "{}",
        checked.stdout
    );

    // A section without its key is a configuration error naming the missing field.
    let incomplete =
        Sandbox::with_config("web:\n  listen: \"127.0.0.1:0\"\n  tls:\n    certificate: web.pem\n");
    let error = incomplete.run(&["serve"]).one_line_error(78).to_owned();
    assert!(error.contains("key"), "{error}");
}
