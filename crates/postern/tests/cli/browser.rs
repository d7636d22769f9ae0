//! The first run, as a new user has it, driven in a real headless Chromium (Debian's
//! `chromium` + `chromium-driver`): `postern serve` with no configuration at all in an empty
//! directory (SQLite in `./postern-data`, LMTP on 127.0.0.1:2525, web on 127.0.0.1:8080), the
//! one-time setup link from its standard error, the first administrator, a project with
//! Service Desk made in the browser, a mail to the project's address handed to the built-in
//! listener, the mail desk showing it, the ticket answered in the browser, and the answer to
//! the customer as a file in `./postern-data/outbox/`. Screenshots of every step (and a copy of
//! that file) go to `<target>/tmp/chromium-serve/`.
//!
//! On the way it goes through the help desk work of issue 18 in the same binary: the
//! customer's HTML mail (a table, an inline image, a remote image) shown readably, the line
//! naming who an answer reaches, the page's own error for an empty comment, an internal note
//! that reaches nobody, a Markdown answer whose HTML part renders it, the closing that tells
//! the customer, the search box, the profile page, and the ticket page at 400 px without
//! sideways scrolling.
//!
//! The default ports are fixed, so runs of this test (from any checkout on this machine) take
//! a lock file first; a port held by something else fails the test with a message naming it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use postern_testkit::chromium::{self, Browser, Error, click, fill, page_text, skip_reason};

use crate::serve::{lmtp, stop};
use crate::support::{Sandbox, serve_until};

const LMTP_PORT: u16 = 2525;
const WEB_PORT: u16 = 8080;
const BOUND: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";
/// The answer in Markdown, and how it reads rendered.
const ANSWER: &str = "We are sending the **fire brigade**.";
const ANSWER_SHOWN: &str = "We are sending the fire brigade.";
const INTERNAL: &str = "Check the wiring before answering.";
const CUSTOMER: &str = "customer@example.org";

/// Holds the machine-wide lock on the default ports (waits at most ten minutes for it).
fn lock_default_ports() -> File {
    let path = std::env::temp_dir().join("postern-default-ports.lock");
    let file = File::create(&path)
        .unwrap_or_else(|e| panic!("cannot create the lock file {}: {e}", path.display()));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!(
                "another test run held {} for ten minutes (or locking failed): {e}",
                path.display()
            ),
        }
    }
}

#[track_caller]
fn assert_port_free(port: u16, what: &str) {
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
        panic!(
            "127.0.0.1:{port} ({what}, a default of `postern serve`) is in use ({e}); this test \
             runs serve without configuration and needs it free: stop what listens there"
        );
    }
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-serve")
}

async fn snap(client: &Client, name: &str) -> Result<(), Error> {
    chromium::snap(client, &screenshot_dir(), name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_runs_serve_without_configuration_and_answers_a_mailed_ticket_in_chromium() {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let _lock = lock_default_ports();
    assert_port_free(LMTP_PORT, "the LMTP listener");
    assert_port_free(WEB_PORT, "the web UI");
    std::fs::create_dir_all(screenshot_dir()).expect("the screenshot directory");

    let sandbox = Sandbox::new();
    let (child, stderr, link_line) = serve_until(&sandbox, None, "setup link", BOUND, |line| {
        line.contains("/setup?token=")
    });
    let link = link_line
        .rsplit(' ')
        .next()
        .expect("the link ends the line")
        .to_owned();
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{WEB_PORT}/setup?token=")),
        "{link_line}"
    );

    let browser = Browser::start(&sandbox.path().join("chromium-profile"))
        .await
        .unwrap_or_else(|e| panic!("cannot start headless Chromium: {e}"));
    let client = &browser.client;
    let result = flow(client, &link, sandbox.path()).await;
    if result.is_err() {
        let _ = snap(client, "99-failure").await;
    }
    browser.close().await;
    let status = tokio::task::spawn_blocking(move || stop(child))
        .await
        .expect("stopping serve does not panic");
    let lines = stderr.finish();
    if let Err(e) = result {
        panic!("{e}\n--- postern serve wrote:\n{}", lines.join("\n"));
    }
    assert!(
        status.success(),
        "postern serve did not exit cleanly on SIGTERM: {status:?}\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|line| line.contains("stopped")),
        "{}",
        lines.join("\n")
    );
}

async fn flow(client: &Client, link: &str, dir: &Path) -> Result<(), Error> {
    let base = format!("http://127.0.0.1:{WEB_PORT}");
    // The one-time link from standard error makes the first administrator.
    client.goto(link).await?;
    fill(client, "input[name=username]", "root").await?;
    fill(client, "input[name=email]", "root@example.com").await?;
    fill(client, "input[name=password]", PASSWORD).await?;
    snap(client, "01-setup").await?;
    click(client, "button[type=submit]").await?;
    assert!(page_text(client).await?.contains("Projects"));

    // Signing out and in again with the new password.
    click(client, "#logout").await?;
    fill(client, "#username", "root").await?;
    fill(client, "#password", PASSWORD).await?;
    snap(client, "02-login").await?;
    click(client, "#sign-in").await?;
    assert!(page_text(client).await?.contains("Projects"));

    // A project, made in the browser, with Service Desk on.
    client.goto(&format!("{base}/admin/projects")).await?;
    fill(client, "#namespace", "group").await?;
    fill(client, "#path", "helpdesk").await?;
    fill(client, "#project-name", "Help desk").await?;
    snap(client, "03-new-project").await?;
    click(client, "#create-project").await?;
    click(client, "#sd-enabled").await?;
    click(client, "#save-service-desk").await?;
    snap(client, "04-project-addresses").await?;
    let project_url = client.current_url().await?;
    let project_id = project_url
        .path()
        .rsplit('/')
        .next()
        .ok_or("no project id in the URL")?
        .to_owned();
    let address = client
        .find(Locator::XPath(
            "//table[@id='addresses']//tr[th='Service Desk']/td/code",
        ))
        .await?
        .text()
        .await?;
    assert!(
        address.starts_with("incoming+group-helpdesk-") && address.ends_with("-issue-@localhost"),
        "{address}"
    );

    // A customer writes to that address; the mail is handed to the built-in listener.
    let mail = format!(
        "From: Customer <{CUSTOMER}>\r\nTo: {address}\r\nSubject: My printer is on fire\r\n\
         Message-ID: <fire@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><p>Please help,<br>it is <b>really</b> hot:</p>\
         <table><tr><th>Room</th><th>Degrees</th></tr><tr><td>Office</td><td>41</td></tr></table>\
         <p><img src=\"cid:photo@example.org\" alt=\"the printer\"></p>\
         <img src=\"https://tracker.example.net/pixel.gif\"></body></html>\r\n\
         --rel\r\nContent-Type: image/png; name=\"photo.png\"\r\nContent-ID: <photo@example.org>\r\n\
         Content-Disposition: inline; filename=\"photo.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n\
         --rel--\r\n"
    );
    let replies = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || lmtp(LMTP_PORT, &address, &mail)).await?
    };
    if !replies.last().is_some_and(|reply| reply.starts_with("250")) {
        return Err(format!("LMTP did not accept the mail: {replies:?}").into());
    }

    // The mail desk shows it (the 250 came after processing; the wait is a safety bound).
    let deadline = Instant::now() + BOUND;
    loop {
        client.goto(&format!("{base}/admin/mail")).await?;
        let desk = client.find(Locator::Css("#inbound")).await?.text().await?;
        if desk.contains("fire@example.org") && desk.contains("processed") {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the mail desk never showed the mail:\n{desk}").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    snap(client, "05-mail-desk").await?;

    // The ticket, answered in the browser.
    client
        .goto(&format!("{base}/projects/{project_id}"))
        .await?;
    click(client, "#issues a").await?;
    let ticket = page_text(client).await?;
    if !ticket.contains("My printer is on fire") {
        return Err(format!("not the ticket:\n{ticket}").into());
    }
    // The customer's HTML is shown readably: the table as a table, the inline image in
    // place from postern's own uploads, the remote image blocked and counted.
    let table = text_of(client, ".mail-html table").await?;
    assert!(table.contains("Office") && table.contains("41"), "{table}");
    client
        .find(Locator::Css(".mail-html img[src^='/uploads/']"))
        .await?;
    assert!(
        text_of(client, ".blocked")
            .await?
            .contains("1 remote image blocked")
    );
    assert!(text_of(client, "#mail-line").await?.contains(CUSTOMER));
    snap(client, "06-ticket").await?;
    let ticket_url = client.current_url().await?;

    // An empty comment gets the page's own words, in the layout.
    click(client, "#comment").await?;
    let refused = page_text(client).await?;
    assert!(refused.contains("The comment is empty"), "{refused}");
    snap(client, "06b-empty-comment").await?;

    // An internal note, then the answer in Markdown.
    client.goto(ticket_url.as_str()).await?;
    fill(client, "#comment-body", INTERNAL).await?;
    click(client, "#comment-internal").await?;
    click(client, "#comment").await?;
    assert!(page_text(client).await?.contains("internal note"));
    fill(client, "#comment-body", ANSWER).await?;
    click(client, "#comment").await?;
    snap(client, "07-answered").await?;
    if !page_text(client).await?.contains(ANSWER_SHOWN) {
        return Err("the answer is not on the ticket page".into());
    }

    // At 400 px the ticket page does not scroll sideways.
    client.set_window_size(400, 900).await?;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            Vec::new(),
        )
        .await?;
    assert!(overflow.as_i64().is_some_and(|px| px <= 0), "{overflow}");
    snap(client, "07b-ticket-400px").await?;
    client.set_window_size(1280, 900).await?;

    // The answer to the customer is written to the outbox folder.
    let outbox = dir.join("postern-data").join("outbox");
    let (file, contents) = wait_for_answer_file(&outbox).await?;
    let name = file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    assert!(name.ends_with(&format!("-{CUSTOMER}.eml")), "{name}");
    let to = contents
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("to:"))
        .unwrap_or_default();
    assert!(to.contains(CUSTOMER), "{to}\n{contents}");
    let parsed = mail_parser::MessageParser::default()
        .parse(contents.as_bytes())
        .ok_or("the answer file is not a mail")?;
    let html = parsed.body_html(0).ok_or("the answer has no HTML part")?;
    assert!(html.contains("<strong>fire brigade</strong>"), "{html}");
    assert!(!contents.contains(INTERNAL), "the internal note was mailed");
    // Kept with the screenshots: the sandbox goes away with the test.
    let kept = screenshot_dir().join("09-notification.eml");
    std::fs::copy(&file, &kept)?;
    println!(
        "notification: {} (kept as {})",
        file.display(),
        kept.display()
    );

    // The outbox page lists the answer as sent (recorded just after the file was written).
    let deadline = Instant::now() + BOUND;
    loop {
        client.goto(&format!("{base}/admin/mail/outbox")).await?;
        let listed = client.find(Locator::Css("#outbox")).await?.text().await?;
        let answer_sent = listed.lines().any(|row| {
            row.contains("service_desk_note") && row.contains(CUSTOMER) && row.contains("sent")
        });
        if answer_sent {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the outbox never listed the answer as sent:\n{listed}").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    snap(client, "08-outbox").await?;
    // Only the answer went out: no file holds the internal note.
    for entry in std::fs::read_dir(&outbox)?.flatten() {
        let text = String::from_utf8_lossy(&std::fs::read(entry.path())?).into_owned();
        assert!(!text.contains(INTERNAL), "{}", entry.path().display());
    }

    // Closing the answered ticket in the browser tells the customer, by a mail of its own.
    client.goto(ticket_url.as_str()).await?;
    click(client, "#toggle-state").await?;
    snap(client, "09b-closed").await?;
    let (_, closed) = wait_for_file_with(&outbox, "was closed by").await?;
    assert!(closed.contains(CUSTOMER), "{closed}");

    // The search box finds the ticket by a word of its mail, and nothing for another word.
    client
        .goto(&format!("{base}/projects/{project_id}?q=printer+fire"))
        .await?;
    assert!(
        text_of(client, "#issues")
            .await?
            .contains("My printer is on fire")
    );
    snap(client, "10-search").await?;
    client
        .goto(&format!("{base}/projects/{project_id}?q=toner"))
        .await?;
    assert!(
        !text_of(client, "main")
            .await?
            .contains("My printer is on fire")
    );

    // The profile page: notification levels and the incoming-email address.
    client.goto(&format!("{base}/profile")).await?;
    client.find(Locator::Css("#level-global")).await?;
    snap(client, "11-profile").await?;
    Ok(())
}

/// The text of the first element matching `css`.
async fn text_of(client: &Client, css: &str) -> Result<String, Error> {
    Ok(client.find(Locator::Css(css)).await?.text().await?)
}

/// Waits (bounded) for an `.eml` file in `outbox` holding the answer; returns it and its text.
async fn wait_for_answer_file(outbox: &Path) -> Result<(PathBuf, String), Error> {
    wait_for_file_with(outbox, ANSWER).await
}

/// Waits (bounded) for an `.eml` file in `outbox` holding `text`; returns it and its text.
async fn wait_for_file_with(outbox: &Path, wanted: &str) -> Result<(PathBuf, String), Error> {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Ok(entries) = std::fs::read_dir(outbox) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "eml") {
                    let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
                    if text.contains(wanted) {
                        return Ok((path, text));
                    }
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no file with {wanted:?} in {}", outbox.display()).into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
