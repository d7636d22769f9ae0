//! The main flow in a real headless Chromium (Debian's `chromium` + `chromium-driver`): first
//! administrator from the setup link, a project with Service Desk, a ticket by mail seen in the
//! mail desk, answered in the browser, and the answer waiting in the outbox. Screenshots of every
//! step go to `<target>/tmp/chromium/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use postern_store::{InboundSource, Mailbox};
use postern_testkit::TestDb;

use crate::support::{PASSWORD, Web};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn skip_reason() -> Option<String> {
    if std::env::var_os("POSTERN_SKIP_CHROMIUM").is_some() {
        return Some("POSTERN_SKIP_CHROMIUM is set".into());
    }
    for binary in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(binary).exists() {
            return Some(format!(
                "{binary} is not installed (Debian: chromium chromium-driver)"
            ));
        }
    }
    None
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium")
}

async fn snap(client: &Client, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let png = client.screenshot().await?;
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    println!("screenshot: {}", path.display());
    Ok(())
}

async fn fill(client: &Client, css: &str, text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let field = find(client, css).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// `css` once it is on the page (a page may still be loading under load; bounded wait).
async fn find(
    client: &Client,
    css: &str,
) -> Result<fantoccini::elements::Element, Box<dyn std::error::Error>> {
    Ok(client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await?)
}

/// Clicks a link or submit button and waits (bounded) until the next page replaced this one,
/// so the next lookup cannot see the old page.
async fn click(client: &Client, css: &str) -> Result<(), Box<dyn std::error::Error>> {
    let old_page = client.find(Locator::Css("html")).await?;
    find(client, css).await?.click().await?;
    for _ in 0..100 {
        if old_page.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    find(client, "main").await?;
    Ok(())
}

async fn page_text(client: &Client) -> Result<String, Box<dyn std::error::Error>> {
    Ok(find(client, "main").await?.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_sees_a_mailed_ticket_answers_it_and_finds_the_outbox_entry() {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    std::fs::create_dir_all(screenshot_dir()).unwrap();
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(postern_web::serve(listener, web.state.clone(), async {
        let _ = stopped.await;
    }));

    let driver_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--user-data-dir=".to_owned()
                        + &web.data.path().join("chromium-profile").to_string_lossy()],
        }),
    );
    let mut client = None;
    // chromedriver needs a moment to listen; bounded wait.
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let client = client.expect("chromedriver did not start within 10 s");
    let result = flow(&web, &client, &base).await;
    if result.is_err() {
        let _ = snap(&client, "99-failure").await;
    }
    let _ = client.close().await;
    let _ = driver.kill().await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    result.unwrap();
}

async fn flow(web: &Web, client: &Client, base: &str) -> Result<(), Box<dyn std::error::Error>> {
    // First run: the one-time link makes the first administrator.
    let link = postern_web::setup_link(&web.state)
        .await?
        .ok_or("no setup link")?;
    let token = link
        .expose()
        .rsplit("token=")
        .next()
        .unwrap_or_default()
        .to_owned();
    client.goto(&format!("{base}/setup?token={token}")).await?;
    fill(client, "input[name=username]", "root").await?;
    fill(client, "input[name=email]", "root@example.com").await?;
    fill(client, "input[name=password]", PASSWORD).await?;
    snap(client, "01-setup").await?;
    click(client, "button[type=submit]").await?;
    assert!(page_text(client).await?.contains("Projects"));

    // Sign out and in again with the new password.
    click(client, "#logout").await?;
    fill(client, "#username", "root").await?;
    fill(client, "#password", PASSWORD).await?;
    snap(client, "02-login").await?;
    click(client, "#sign-in").await?;

    // A project with Service Desk.
    client.goto(&format!("{base}/admin/projects")).await?;
    fill(client, "#namespace", "group").await?;
    fill(client, "#path", "helpdesk").await?;
    fill(client, "#project-name", "Help desk").await?;
    click(client, "#create-project").await?;
    let enabled = find(client, "#sd-enabled").await?;
    enabled.click().await?;
    assert!(
        enabled.is_selected().await?,
        "Service Desk checkbox not ticked"
    );
    click(client, "#save-service-desk").await?;
    snap(client, "03-project-settings").await?;
    let settings = page_text(client).await?;
    assert!(settings.contains("support+group-helpdesk-"), "{settings}");

    // A customer writes to the Service Desk address (the listener's path: Processor::receive).
    let mut tx = web.store().begin().await?;
    let project = tx
        .project_by_full_path("group/helpdesk")
        .await?
        .ok_or("project missing")?;
    tx.rollback().await?;
    let mail = format!(
        "From: Customer <customer@example.org>\r\nTo: support+group-helpdesk-{}-issue-@example.com\r\n\
         Subject: My printer is on fire\r\nMessage-ID: <fire@example.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nPlease help, it is *really* hot.\r\n",
        project.id
    );
    let outcome = web
        .processor
        .receive(
            mail.as_bytes(),
            Mailbox::ServiceDesk,
            InboundSource::Lmtp,
            None,
        )
        .await?;
    assert_eq!(outcome.outcome, "processed", "{outcome:?}");

    client.goto(&format!("{base}/admin/mail")).await?;
    snap(client, "04-mail-desk").await?;
    let desk = page_text(client).await?;
    assert!(
        desk.contains("service_desk") && desk.contains("processed"),
        "{desk}"
    );

    // The ticket, answered in the browser.
    client
        .goto(&format!("{base}/projects/{}", project.id))
        .await?;
    click(client, "#issues a").await?;
    snap(client, "05-ticket").await?;
    assert!(page_text(client).await?.contains("My printer is on fire"));
    fill(client, "#comment-body", "We are sending the fire brigade.").await?;
    click(client, "#comment").await?;
    snap(client, "06-answered").await?;
    assert!(
        page_text(client)
            .await?
            .contains("We are sending the fire brigade.")
    );

    // The answer to the customer waits in the outbox.
    client.goto(&format!("{base}/admin/mail/outbox")).await?;
    snap(client, "07-outbox").await?;
    let outbox = client.find(Locator::Css("#outbox")).await?.text().await?;
    assert!(outbox.contains("customer@example.org"), "{outbox}");
    Ok(())
}
