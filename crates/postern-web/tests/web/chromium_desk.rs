//! Service Desk work in a real headless Chromium, as an agent does it: a customer's HTML mail
//! (a table, an inline image, a remote image, a relative `src`) read on the ticket's page, an
//! internal note, then an answer in Markdown; and the mail desk and outbox pages that show it.
//! Screenshots go to `<target>/tmp/chromium/desk-*.png`.

use fantoccini::{Client, Locator};
use postern_core::Outcome;
use postern_store::{InboundSource, Mailbox, OutboxFilter, Role, Visibility};
use postern_testkit::TestDb;
use postern_testkit::chromium::{Error, click, fill, find, page_text};

use crate::support::{PASSWORD, Web};

use crate::in_chromium::snap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_agent_reads_an_html_ticket_writes_an_internal_note_and_answers() {
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    crate::in_chromium::run(&web, "desk", async |client, base| {
        flow(&web, client, base).await
    })
    .await;
}

async fn flow(web: &Web, client: &Client, base: &str) -> Result<(), Error> {
    web.user("agent", true).await.map_err(|e| e.to_string())?;
    let mut tx = web.store().begin().await?;
    let agent = tx.user_by_username("agent").await?.ok_or("agent")?;
    tx.rollback().await?;
    let project = web
        .project("desk", Visibility::Private)
        .await
        .map_err(|e| e.to_string())?;
    web.member(&project, &agent, Role::Reporter)
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = web.store().begin().await?;
    let mut settings = project.service_desk.clone();
    settings.enabled = true;
    tx.update_service_desk(project.id, &settings).await?;
    tx.commit().await?;
    let outcome = web
        .processor
        .receive(
            crate::agents::html_ticket_mail(&project).as_bytes(),
            Mailbox::ServiceDesk,
            InboundSource::Lmtp,
            None,
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

    client.goto(&format!("{base}/login")).await?;
    fill(client, "#username", "agent").await?;
    fill(client, "#password", PASSWORD).await?;
    click(client, "#sign-in").await?;

    // The ticket reads as the customer wrote it.
    client
        .goto(&format!("{base}/projects/{}/issues/1", project.id))
        .await?;
    snap(client, "desk-01-html-ticket").await?;
    let view = find(client, "#description .mail-html")
        .await?
        .text()
        .await?;
    assert!(view.contains("Tea") && view.contains("Total"), "{view}");
    let cells = client
        .find_all(Locator::Css("#description .mail-html td"))
        .await?;
    assert_eq!(cells.len(), 2, "the table's cells are cells");
    let image = find(client, "#description .mail-html img").await?;
    // The inline image loaded from its upload (a broken image has no natural width).
    let width = client
        .execute(
            "return arguments[0].naturalWidth;",
            vec![serde_json::to_value(&image)?],
        )
        .await?;
    assert_eq!(width.as_u64(), Some(1), "inline image loaded");
    let text = page_text(client).await?;
    assert!(text.contains("1 remote image blocked"), "{text}");
    assert!(
        text.contains("customer@example.org"),
        "the line names the customer: {text}"
    );

    // An internal note, then the answer.
    fill(client, "#comment-body", "Tea was 2, ask accounting first").await?;
    find(client, "#comment-internal").await?.click().await?;
    click(client, "#comment").await?;
    snap(client, "desk-02-internal-note").await?;
    let note = find(client, ".note.internal").await?.text().await?;
    assert!(note.contains("ask accounting"), "{note}");
    fill(
        client,
        "#comment-body",
        "We have **corrected** the invoice:\n\n| Item | Total |\n|---|---|\n| Tea | 2 |\n",
    )
    .await?;
    click(client, "#comment").await?;
    snap(client, "desk-03-answered").await?;

    let mut tx = web.store().begin().await?;
    let mut answers = 0;
    for mail in tx.list_outbox(&OutboxFilter::default()).await? {
        let raw = tx.outbox_raw(mail.id).await?.ok_or("raw")?;
        assert!(
            !String::from_utf8_lossy(&raw).contains("accounting"),
            "the internal note was queued"
        );
        if mail.kind == "service_desk_note" {
            answers += 1;
        }
    }
    tx.rollback().await?;
    assert_eq!(answers, 1);

    // The mail desk and the outbox, where the answer opens as sent.
    client.goto(&format!("{base}/admin/mail")).await?;
    snap(client, "desk-04-mail-desk").await?;
    let desk = page_text(client).await?;
    assert!(
        desk.contains("Wrong invoice") && desk.contains("customer@example.org"),
        "{desk}"
    );
    client.goto(&format!("{base}/admin/mail/outbox")).await?;
    snap(client, "desk-05-outbox").await?;
    click(client, "#outbox a[href^='/admin/mail/outbox/']").await?;
    snap(client, "desk-06-outbox-mail").await?;
    Ok(())
}
