//! The issue list in a real headless Chromium: signed in, a project of 30 issues shows the
//! newest 20 with a link to the next page, and the search form (no script: a GET form) finds
//! the issue a comment names. Screenshots go to `<target>/tmp/chromium/` beside the main flow's.

use fantoccini::{Client, Locator};
use postern_store::{NewIssue, NewNote, Noteable, Project, Role, Visibility};
use postern_testkit::TestDb;
use postern_testkit::chromium::{Error, click, fill, page_text};

use crate::support::{PASSWORD, Web};

use crate::in_chromium::snap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_pages_through_and_searches_the_issue_list() {
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    let alice = web.user("alice", false).await.unwrap();
    let project = web.project("list", Visibility::Private).await.unwrap();
    web.member(&project, &alice, Role::Developer).await.unwrap();
    let mut tx = web.store().begin().await.unwrap();
    for i in 1..=30 {
        let issue = tx
            .create_issue(NewIssue::new(
                project.id,
                alice.id,
                &format!("Issue number {i}"),
                "Something to look into.",
            ))
            .await
            .unwrap();
        if i == 4 {
            tx.create_note(NewNote::new(
                Noteable::Issue(issue.id),
                alice.id,
                "The espresso machine leaks.",
            ))
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();

    crate::in_chromium::run(&web, "search", async |client, base| {
        flow(client, base, &project).await
    })
    .await;
}

async fn rows(client: &Client) -> Result<Vec<String>, Error> {
    let mut titles = Vec::new();
    for cell in client.find_all(Locator::Css("#issues td a")).await? {
        titles.push(cell.text().await?);
    }
    Ok(titles)
}

async fn flow(client: &Client, base: &str, project: &Project) -> Result<(), Error> {
    client.goto(&format!("{base}/login")).await?;
    fill(client, "#username", "alice").await?;
    fill(client, "#password", PASSWORD).await?;
    click(client, "#sign-in").await?;

    client
        .goto(&format!("{base}/projects/{}", project.id))
        .await?;
    snap(client, "search-01-list").await?;
    let first = rows(client).await?;
    assert_eq!(first.len(), 20, "{first:?}");
    assert_eq!(first[0], "Issue number 30");
    let text = page_text(client).await?;
    assert!(text.contains("New issue"), "{text}");

    click(client, "a[rel=next]").await?;
    snap(client, "search-02-page-2").await?;
    let second = rows(client).await?;
    assert_eq!(second.first().map(String::as_str), Some("Issue number 10"));
    assert_eq!(second.len(), 10);

    fill(client, "input[name=q]", "espresso").await?;
    click(client, "#issue-search button[type=submit]").await?;
    snap(client, "search-03-results").await?;
    assert_eq!(rows(client).await?, ["Issue number 4"]);
    let url = client.current_url().await?;
    assert!(url.as_str().contains("q=espresso"), "{url}");
    Ok(())
}
