//! A real deployment behind a reverse proxy: Debian's nginx, configured as the README says,
//! terminates HTTPS (a certificate from a private CA) in front of `postern serve`, which has
//! `web.external_url` set to nginx's address and trusts only 127.0.0.1 as a proxy. Checked in
//! headless Chromium (told to accept the private certificate by its key's hash) and with a
//! plain HTTPS client bound to other loopback addresses:
//!
//! - the setup link and the session cookie follow `external_url` (`https://`, `Secure`);
//! - the address sign-in is throttled and logged by is the one nginx saw, never one a client
//!   wrote into `X-Forwarded-For`: five failures with a different forged header each still
//!   lock that client out, while another client behind the same proxy signs in;
//! - the notification mailed about a comment made in the browser links to the issue under
//!   `external_url`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::Client as Browsing;
use postern_testkit::certs::{PrivateCa, spki_sha256_base64};
use postern_testkit::chromium::{self, Browser, Error, click, fill, page_text, skip_reason};
use postern_testkit::nginx::Nginx;

use crate::https::Client;
use crate::serve::{free_port, lmtp, stop};
use crate::support::{Sandbox, StderrLines, int_field, serve_until, str_field};

const BOUND: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";
const COMMENT: &str = "Looked at it through the proxy.";

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_https_cookies_are_secure_the_client_is_nginxs_and_mail_links_use_external_url()
 {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let certificates = tempfile::tempdir().expect("a directory for the CA");
    let ca = PrivateCa::new(certificates.path(), "postern proxy test CA");
    let pair = ca.issue("nginx");
    let web = free_port();
    let Some(nginx) = Nginx::start_or_skip(web, &pair) else {
        return;
    };
    let base = nginx.url();
    let lmtp_port = free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{lmtp_port}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\n  \
         external_url: \"{base}/\"\n  trusted_proxies: [\"127.0.0.1/32\"]\nlog:\n  level: info\n"
    ));
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    let project = sandbox.admin_json(&["project", "add", "land/ooo"]);
    let project_id = int_field(&project, "id");
    sandbox.admin_json(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let address = str_field(&shown["addresses"], "new_issue").to_owned();

    let (child, stderr, link_line) = serve_until(&sandbox, None, "setup link", BOUND, |line| {
        line.contains("/setup?token=")
    });
    let link = link_line
        .rsplit(' ')
        .next()
        .expect("the link ends the line")
        .to_owned();
    assert!(
        link.starts_with(&format!("{base}/setup?token=")),
        "the setup link does not use external_url: {link_line}"
    );

    // Jake opens an issue by mail.
    let mail = format!(
        "From: jake@example.com\r\nTo: {address}\r\nSubject: Seen through a proxy\r\n\
         Message-ID: <proxy-1@example.com>\r\n\r\nHello.\r\n"
    );
    let replies = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || lmtp(lmtp_port, &address, &mail))
            .await
            .expect("LMTP")
    };
    assert!(
        replies.last().is_some_and(|reply| reply.starts_with("250")),
        "{replies:?}"
    );

    std::fs::create_dir_all(screenshot_dir()).expect("the screenshot directory");
    let spki = spki_sha256_base64(&pair.certificate);
    let browser = Browser::start_with_args(
        &sandbox.path().join("chromium-profile"),
        &[format!("--ignore-certificate-errors-spki-list={spki}")],
    )
    .await
    .unwrap_or_else(|e| panic!("cannot start headless Chromium: {e}"));
    let result = in_the_browser(&browser.client, &link, &base, project_id).await;
    if result.is_err() {
        let _ = chromium::snap(&browser.client, &screenshot_dir(), "99-failure").await;
    }
    browser.close().await;
    let result = match result {
        Ok(()) => through_the_proxy(&ca.certificate(), nginx.port(), &stderr).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(()) => mail_links_to_external_url(sandbox.path(), &base, project_id).await,
        Err(e) => Err(e),
    };

    let status = tokio::task::spawn_blocking(move || stop(child))
        .await
        .expect("stopping serve does not panic");
    let lines = stderr.finish();
    if let Err(e) = result {
        panic!(
            "{e}\n--- postern serve wrote:\n{}\n--- nginx error log:\n{}",
            lines.join("\n"),
            nginx.error_log()
        );
    }
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));
    // What postern logged about the sign-ins names the client nginx saw, never a forged one.
    let failures: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("sign-in failed"))
        .collect();
    assert!(
        !failures.is_empty() && failures.iter().all(|line| line.contains("127.0.0.2")),
        "{failures:?}"
    );
    assert!(
        !lines.iter().any(|line| line.contains("198.51.100.")),
        "a forged address reached the log:\n{}",
        lines.join("\n")
    );
}

/// The first administrator through the setup link, the session cookie, and a comment on
/// Jake's issue.
async fn in_the_browser(
    client: &Browsing,
    link: &str,
    base: &str,
    project_id: i64,
) -> Result<(), Error> {
    client.goto(link).await?;
    fill(client, "input[name=username]", "root").await?;
    fill(client, "input[name=email]", "root@example.com").await?;
    fill(client, "input[name=password]", PASSWORD).await?;
    click(client, "button[type=submit]").await?;
    if !page_text(client).await?.contains("Projects") {
        return Err("the setup form did not sign root in".into());
    }
    chromium::snap(client, &screenshot_dir(), "01-signed-in").await?;
    let session = client.get_named_cookie("postern_session").await?;
    if session.secure() != Some(true) || session.http_only() != Some(true) {
        return Err(format!("the session cookie is not Secure and HttpOnly: {session:?}").into());
    }
    client
        .goto(&format!("{base}/projects/{project_id}/issues/1"))
        .await?;
    if !page_text(client).await?.contains("Seen through a proxy") {
        return Err("not Jake's issue".into());
    }
    fill(client, "#comment-body", COMMENT).await?;
    click(client, "#comment").await?;
    chromium::snap(client, &screenshot_dir(), "02-commented").await?;
    if !page_text(client).await?.contains(COMMENT) {
        return Err("the comment is not on the issue page".into());
    }
    Ok(())
}

/// One sign-in through nginx from `client`, forging `X-Forwarded-For: forged`.
async fn sign_in(
    client: &Client,
    port: u16,
    forged: &str,
    password: &str,
) -> Result<crate::https::Reply, Box<dyn std::error::Error + Send + Sync>> {
    let forged = format!("X-Forwarded-For: {forged}\r\n");
    let form = client.get(port, "/login", &forged).await?;
    let cookie = form.cookie_pair("postern_login").ok_or("no login cookie")?;
    let csrf = form.csrf().ok_or("no CSRF token on the form")?;
    let headers = format!("{forged}Cookie: {cookie}\r\n");
    client
        .post_form(
            port,
            "/login",
            &headers,
            &[
                ("csrf", &csrf),
                ("username", "root"),
                ("password", password),
            ],
        )
        .await
}

/// Failed sign-ins from 127.0.0.2, each forging another address, lock 127.0.0.2 out; 127.0.0.3
/// behind the same proxy still signs in.
async fn through_the_proxy(ca: &Path, port: u16, stderr: &StderrLines) -> Result<(), Error> {
    let attacker = Client::new(ca, Ipv4Addr::new(127, 0, 0, 2)).map_err(|e| e.to_string())?;
    for n in 0..5 {
        let reply = sign_in(&attacker, port, &format!("198.51.100.{n}"), "wrong")
            .await
            .map_err(|e| e.to_string())?;
        if reply.status != 401 {
            return Err(format!("failed sign-in {n}: {}", reply.head).into());
        }
    }
    let limited = sign_in(&attacker, port, "198.51.100.99", PASSWORD)
        .await
        .map_err(|e| e.to_string())?;
    if limited.status != 429 {
        return Err(format!(
            "a forged X-Forwarded-For escaped the limit: {}\n{:?}",
            limited.head,
            stderr.snapshot()
        )
        .into());
    }
    let neighbour = Client::new(ca, Ipv4Addr::new(127, 0, 0, 3)).map_err(|e| e.to_string())?;
    let signed_in = sign_in(&neighbour, port, "198.51.100.0", PASSWORD)
        .await
        .map_err(|e| e.to_string())?;
    if signed_in.status != 303 {
        return Err(format!(
            "another client behind the proxy was locked out too: {}",
            signed_in.head
        )
        .into());
    }
    let session = signed_in
        .set_cookie("postern_session")
        .ok_or("no session cookie")?;
    if !session.contains("; Secure") {
        return Err(format!("the session cookie is not Secure: {session}").into());
    }
    Ok(())
}

/// The notification to Jake about root's comment links to the issue under `external_url`.
async fn mail_links_to_external_url(dir: &Path, base: &str, project_id: i64) -> Result<(), Error> {
    let outbox = dir.join("postern-data").join("outbox");
    let deadline = Instant::now() + BOUND;
    let mail = loop {
        let found = std::fs::read_dir(&outbox).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.to_string_lossy().ends_with("-jake@example.com.eml"))
                .filter_map(|path| std::fs::read_to_string(path).ok())
                .find(|text| text.contains("Looked at it"))
        });
        if let Some(mail) = found {
            break mail;
        }
        if Instant::now() > deadline {
            return Err(format!("no notification to Jake in {}", outbox.display()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Undo quoted-printable's soft line breaks, should the encoder have folded the line.
    let unfolded = mail.replace("=\r\n", "").replace("=3D", "=");
    let link = format!("{base}/projects/{project_id}/issues/1");
    if !unfolded.contains(&format!("View it on postern: {link}")) {
        return Err(format!("the notification does not link to {link}:\n{mail}").into());
    }
    if !unfolded.contains(&format!("<a href=\"{link}\">View it on postern</a>")) {
        return Err(format!("the HTML part does not link to {link}:\n{mail}").into());
    }
    Ok(())
}
