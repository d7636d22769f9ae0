//! The main flow in a real headless Chromium (Debian's `chromium` + `chromium-driver`): first
//! administrator from the setup link, a project with Service Desk, a ticket by mail seen in the
//! mail desk, answered in the browser, and the answer waiting in the outbox. Screenshots of every
//! step go to `<target>/tmp/chromium/`.

use postern_core::Outcome;

use fantoccini::{Client, Locator};
use postern_store::{InboundSource, Mailbox};
use postern_testkit::TestDb;
use postern_testkit::chromium::{Error, click, fill, find, page_text};

use crate::support::{PASSWORD, Web};

use crate::in_chromium::snap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_sees_a_mailed_ticket_answers_it_and_finds_the_outbox_entry() {
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    crate::in_chromium::run(&web, "main", async |client, base| {
        flow(&web, client, base).await
    })
    .await;
}

async fn flow(web: &Web, client: &Client, base: &str) -> Result<(), Error> {
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
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

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
