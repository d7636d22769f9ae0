//! Issue 18 items 3, 5, 6 and 8 in a real headless Chromium: signing in returns to the page
//! asked for (by email address), errors are pages of the layout, a refused new issue keeps its
//! text, the issue's fields are edited and the history shows it, members see their addresses,
//! and the profile page. Screenshots go to `<target>/tmp/chromium/`.

use fantoccini::Client;
use postern_store::{NewIssue, Role, Visibility};
use postern_testkit::TestDb;
use postern_testkit::chromium::{Error, click, fill, find, page_text};

use crate::support::{PASSWORD, Web};

/// The test support's `Send` errors as chromium's.
fn unsized_error(error: postern_testkit::BoxError) -> Error {
    error
}

use crate::in_chromium::snap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_errors_fields_addresses_and_profile() {
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    crate::in_chromium::run(&web, "pages", async |client, base| {
        flow(&web, client, base).await
    })
    .await;
}

async fn flow(web: &Web, client: &Client, base: &str) -> Result<(), Error> {
    let alice = web.user("alice", false).await.map_err(unsized_error)?;
    let bob = web.user("bob", false).await.map_err(unsized_error)?;
    let project = web
        .project("desk", Visibility::Private)
        .await
        .map_err(unsized_error)?;
    web.member(&project, &alice, Role::Developer)
        .await
        .map_err(unsized_error)?;
    web.member(&project, &bob, Role::Developer)
        .await
        .map_err(unsized_error)?;
    web.issue(&project, &bob, "Bob's printer", "It smokes.")
        .await
        .map_err(unsized_error)?;
    let issue = format!("{base}/projects/{}/issues/1", project.id);

    // Signed out, the issue asks for sign-in and returns to it; the email address signs in.
    client.goto(&issue).await?;
    find(client, "input[name=next]").await?;
    fill(client, "#username", "alice@example.com").await?;
    fill(client, "#password", PASSWORD).await?;
    snap(client, "pages-01-sign-in-returns").await?;
    click(client, "#sign-in").await?;
    assert_eq!(client.current_url().await?.as_str(), issue);
    assert!(page_text(client).await?.contains("Bob's printer"));

    // The issue's fields, edited from the page; the history says what changed.
    find(client, "#fields summary").await?.click().await?;
    fill(client, "#field-labels", "printer, urgent").await?;
    fill(client, "#field-assignees", "bob").await?;
    snap(client, "pages-02-fields-form").await?;
    click(client, "#save-fields").await?;
    let text = page_text(client).await?;
    assert!(text.contains("assigned to @bob"), "{text}");
    assert!(text.contains("added ~printer ~urgent labels"), "{text}");
    assert_eq!(find(client, "#assignees").await?.text().await?, "@bob");
    click(client, "#toggle-state").await?;
    let text = page_text(client).await?;
    assert!(text.contains("closed"), "{text}");
    snap(client, "pages-03-history").await?;

    // A page that cannot exist is a 404 of the layout, not a Rust parse error.
    client.goto(&format!("{base}/projects/abc")).await?;
    let text = page_text(client).await?;
    assert!(text.contains("Page not found"), "{text}");
    assert!(!text.contains("Cannot parse"));
    find(client, "#logout").await?;
    snap(client, "pages-04-not-found").await?;

    // A refused new issue comes back with what was typed and the reason beside the title.
    client
        .goto(&format!("{base}/projects/{}/issues/new", project.id))
        .await?;
    fill(client, "#new-title", "   ").await?;
    fill(
        client,
        "#new-description",
        "Details I do not want to type again",
    )
    .await?;
    click(client, "#create-issue").await?;
    assert!(page_text(client).await?.contains("Title can't be blank"));
    let kept = find(client, "#new-description")
        .await?
        .prop("value")
        .await?;
    assert_eq!(kept.as_deref(), Some("Details I do not want to type again"));
    snap(client, "pages-05-new-issue-error").await?;

    // The project page shows alice her own addresses, in read-only fields.
    client
        .goto(&format!("{base}/projects/{}", project.id))
        .await?;
    let field = find(client, "#my-addresses input.address").await?;
    let value = field.prop("value").await?.unwrap_or_default();
    assert!(value.contains(&alice.incoming_email_token), "{value}");
    assert_eq!(field.attr("readonly").await?.as_deref(), Some("true"));
    snap(client, "pages-06-addresses").await?;

    // The profile.
    click(client, "#nav-profile").await?;
    assert!(
        page_text(client)
            .await?
            .contains("alice@example.com (primary)")
    );
    snap(client, "pages-07-profile").await?;
    Ok(())
}

/// Every field inside `root` that is not labelled: no `<label for>`, no enclosing `<label>`,
/// no `aria-label(ledby)`. Hidden fields and buttons need none. A small axe-style check.
const UNLABELLED: &str = r#"
const root = document.querySelector(arguments[0]);
if (!root) { return ["no element " + arguments[0]]; }
const missing = [];
for (const field of root.querySelectorAll("input, select, textarea")) {
  const type = (field.getAttribute("type") || "").toLowerCase();
  if (["hidden", "submit", "button", "reset"].includes(type) || field.hidden) { continue; }
  const byFor = field.id && document.querySelector('label[for="' + CSS.escape(field.id) + '"]');
  if (byFor || field.closest("label") || field.getAttribute("aria-label") || field.getAttribute("aria-labelledby")) { continue; }
  missing.push(field.outerHTML.slice(0, 120));
}
return missing;
"#;

/// How much wider than the window the page is, and the window's width.
const OVERFLOW: &str = r#"
return [document.documentElement.scrollWidth - window.innerWidth, window.innerWidth];
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_main_pages_fit_400_px_and_their_fields_are_labelled() {
    let web = Web::new(TestDb::sqlite().await).await.unwrap();
    crate::in_chromium::run(&web, "narrow", async |client, base| {
        narrow(&web, client, base).await
    })
    .await;
}

async fn narrow(web: &Web, client: &Client, base: &str) -> Result<(), Error> {
    let root = web.user("root", true).await.map_err(unsized_error)?;
    let project = web
        .project("narrow", Visibility::Private)
        .await
        .map_err(unsized_error)?;
    web.member(&project, &root, Role::Owner)
        .await
        .map_err(unsized_error)?;
    // A word longer than any screen, a right-to-left override, a table of mail.
    let long_word = "Supercalifragilistic".repeat(12);
    let outcome = web
        .receive(&web.new_issue_mail(
            &project,
            &root,
            &long_word,
            &format!("{long_word}\n\n| a | b |\n|---|---|\n| {long_word} | x |"),
        ))
        .await
        .map_err(unsized_error)?;
    assert!(outcome.error.is_none(), "{outcome:?}");
    let mut tx = web.store().begin().await?;
    tx.create_issue(NewIssue::new(
        project.id,
        root.id,
        // No closing U+202C: unisolated, the override would reverse the rest of the title.
        "Invoice \u{202E}fdp.exe attached",
        "",
    ))
    .await?;
    tx.commit().await?;

    client.set_window_size(400, 900).await?;
    client.goto(&format!("{base}/login")).await?;
    labelled(client, "main", "login").await?;
    fill(client, "#username", "root").await?;
    fill(client, "#password", PASSWORD).await?;
    click(client, "#sign-in").await?;

    let pages = [
        ("home", "/".to_owned()),
        ("project", format!("/projects/{}", project.id)),
        ("issue", format!("/projects/{}/issues/1", project.id)),
        ("rtl-issue", format!("/projects/{}/issues/2", project.id)),
        ("new-issue", format!("/projects/{}/issues/new", project.id)),
        ("settings", format!("/projects/{}/settings", project.id)),
        ("profile", "/profile".to_owned()),
        ("not-found", "/projects/abc".to_owned()),
        ("mail-desk", "/admin/mail".to_owned()),
        ("outbox", "/admin/mail/outbox".to_owned()),
        ("users", "/admin/users".to_owned()),
        // The first (and only) message of this fresh store, the long-word issue's mail.
        ("message", "/admin/mail/messages/1".to_owned()),
        ("tokens", "/profile/tokens".to_owned()),
        ("admin-projects", "/admin/projects".to_owned()),
        ("admin-project", format!("/admin/projects/{}", project.id)),
        ("explore", "/explore".to_owned()),
    ];
    // Every page's fields are labelled, the comment box, settings and the mail desk included.
    for (name, path) in pages {
        client.goto(&format!("{base}{path}")).await?;
        find(client, "main").await?;
        let measured = client.execute(OVERFLOW, Vec::new()).await?;
        let overflow = measured[0].as_i64().ok_or("no width")?;
        let width = measured[1].as_i64().ok_or("no width")?;
        assert!(width <= 420, "{name}: the window is {width} px wide");
        snap(client, &format!("narrow-{name}")).await?;
        assert!(
            overflow <= 0,
            "{name}: the page is {overflow} px wider than the window"
        );
        labelled(client, "main", name).await?;
        if name == "rtl-issue" {
            // The override is shown as a mark and reverses nothing: each word of the title
            // reads left to right, as written.
            let order = client.execute(READING_ORDER, Vec::new()).await?;
            assert_eq!(
                order,
                serde_json::json!([true, true]),
                "the title's words are shown reversed"
            );
            find(client, "h1 bdi.bidi-control[title^=\"RLO\"]").await?;
        }
    }
    Ok(())
}

/// For the words `fdp.exe` and `attached` of the page's `<h1>`: whether the first letter is
/// shown left of the last, i.e. the word reads in its written order.
const READING_ORDER: &str = r#"
const heading = document.querySelector("h1");
const result = [];
for (const word of ["fdp.exe", "attached"]) {
  const walker = document.createTreeWalker(heading, NodeFilter.SHOW_TEXT);
  let node, found = null;
  while ((node = walker.nextNode())) {
    if (node.data.includes(word)) { found = node; break; }
  }
  if (!found) { result.push("missing " + word); continue; }
  const start = found.data.indexOf(word);
  const box = (at) => {
    const range = document.createRange();
    range.setStart(found, at);
    range.setEnd(found, at + 1);
    return range.getBoundingClientRect();
  };
  result.push(box(start).left < box(start + word.length - 1).left);
}
return result;
"#;

/// Fails with the unlabelled fields inside `scope` of the current page.
async fn labelled(client: &Client, scope: &str, name: &str) -> Result<(), Error> {
    let missing = client
        .execute(UNLABELLED, vec![serde_json::Value::from(scope)])
        .await?;
    let missing = missing.as_array().cloned().unwrap_or_default();
    assert!(
        missing.is_empty(),
        "{name}: fields without a label: {missing:?}"
    );
    Ok(())
}
