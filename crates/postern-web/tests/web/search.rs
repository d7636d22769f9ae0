//! Finding issues: the project page's list (newest first, pages, search, filters, sorting,
//! relative times, "New issue" at the top) and the API's, and that neither ever shows an issue
//! the viewer may not read.

use axum::http::StatusCode;
use postern_store::{IssueType, NewIssue, NewNote, Noteable, Project, Role, User, Visibility};
use postern_testkit::{BoxError, both};

use crate::api::{api, token_for};
use crate::support::Web;

/// `Item 01` … `Item <n>` by `author`; item 7 labelled `bug` and assigned to `assignee`, item 3
/// a ticket, item 12 commented with "kettle", item 2 closed.
async fn items(
    web: &Web,
    project: &Project,
    author: &User,
    assignee: &User,
    n: usize,
) -> Result<(), BoxError> {
    let mut tx = web.store().begin().await?;
    for i in 1..=n {
        let mut new = NewIssue::new(
            project.id,
            author.id,
            &format!("Item {i:02}"),
            &format!("Description of item number {i}."),
        );
        if i == 7 {
            new.labels = vec!["bug".to_owned()];
            new.assignee_ids = vec![assignee.id];
        }
        if i == 3 {
            new.issue_type = IssueType::Ticket;
        }
        let issue = tx.create_issue(new).await?;
        if i == 12 {
            tx.create_note(NewNote::new(
                Noteable::Issue(issue.id),
                author.id,
                "The kettle is on.",
            ))
            .await?;
        }
        if i == 2 {
            tx.update_issue(
                issue.id,
                postern_store::IssueUpdate {
                    state: Some(postern_store::IssueState::Closed),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The titles in the issue table of a project page, in order.
fn titles(body: &str) -> Vec<String> {
    let table = body
        .split("<table id=\"issues\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or("");
    table
        .split("dir=\"auto\">")
        .skip(1)
        .filter_map(|cell| cell.split("</a>").next())
        .map(str::to_owned)
        .collect()
}

both!(
    project_page_lists_newest_first_with_pages_search_and_filters,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let bob = web.user("bob", false).await?;
        let project = web.project("list", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &bob, Role::Developer).await?;
        items(&web, &project, &bob, &alice, 25).await?;
        let session = web.login("alice").await?;
        let id = project.id;
        let get = async |query: &str| {
            web.get(&format!("/projects/{id}{query}"), session.cookie())
                .await
        };

        let first = get("").await;
        assert_eq!(first.status, StatusCode::OK);
        let shown = titles(&first.body);
        let expected: Vec<String> = (6..=25).rev().map(|i| format!("Item {i:02}")).collect();
        assert_eq!(shown, expected, "newest first, 20 a page");
        assert!(
            first
                .body
                .contains(&format!("href=\"/projects/{id}?page=2\""))
        );
        assert!(!first.body.contains("rel=\"prev\""));
        // "New issue" comes before the list; the form it leads to is on the page.
        let new_link = first.body.find("id=\"new-issue-link\"").unwrap();
        assert!(new_link < first.body.find("<table id=\"issues\">").unwrap());
        assert!(first.body.contains("<h2 id=\"new-issue\">"));
        // Relative times (`relative_time`'s unit tests have the texts), the exact one in the title.
        let times = first.body.matches("<time datetime=\"").count();
        assert_eq!(times, 40, "created and updated of 20 rows");
        assert_eq!(first.body.matches(" UTC\">").count(), times);
        assert!(!first.body.contains("Z</td>"), "no raw timestamp");
        // Every field of the search form has its label.
        let form = first
            .body
            .split("id=\"issue-search\"")
            .nth(1)
            .and_then(|f| f.split("</form>").next())
            .unwrap();
        let fields = form.matches("<input").count() + form.matches("<select").count();
        assert_eq!(form.matches("<label>").count(), fields);

        let second = get("?page=2").await;
        let expected: Vec<String> = (1..=5).rev().map(|i| format!("Item {i:02}")).collect();
        assert_eq!(titles(&second.body), expected);
        assert!(
            second
                .body
                .contains(&format!("href=\"/projects/{id}?page=1\""))
        );
        assert!(!second.body.contains("rel=\"next\""));

        let cases: &[(&str, &[&str])] = &[
            ("?q=kettle", &["Item 12"]),
            ("?q=%22number+12%22", &["Item 12"]),
            ("?q=item+-number", &[]),
            ("?q=item+12+-kettle", &[]),
            ("?label=bug", &["Item 07"]),
            ("?assignee=alice", &["Item 07"]),
            ("?assignee=%40alice", &["Item 07"]),
            ("?mine=1", &["Item 07"]),
            ("?mine=1&assignee=bob", &[]),
            ("?author=alice", &[]),
            ("?assignee=nobody", &[]),
            ("?type=ticket", &["Item 03"]),
            ("?state=closed", &["Item 02"]),
            ("?state=closed&q=number", &["Item 02"]),
            ("?q=%28%22+OR+NEAR%28", &[]),
        ];
        for (query, expected) in cases {
            assert_eq!(&titles(&get(query).await.body), expected, "{query}");
        }
        let oldest = titles(&get("?sort=oldest&per_page=3").await.body);
        assert_eq!(oldest, ["Item 01", "Item 02", "Item 03"]);
        // Filters stay in the links between pages and in the form.
        let filtered = get("?q=item&type=issue&per_page=5").await;
        assert!(filtered.body.contains(&format!(
            "href=\"/projects/{id}?q=item&amp;type=issue&amp;per_page=5&amp;page=2\""
        )));
        assert!(filtered.body.contains("name=\"q\" value=\"item\""));
        assert!(filtered.body.contains("<option value=\"issue\" selected>"));
        for bad in ["?state=bogus", "?sort=bogus", "?type=bogus", "?page=x"] {
            assert_eq!(get(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        Ok(())
    }
);

both!(search_never_shows_an_issue_the_viewer_cannot_read, |db| {
    let web = Web::new(db).await?;
    let admin = web.user("root", true).await?;
    let carol = web.user("carol", false).await?;
    let dave = web.user("dave", false).await?;
    let rita = web.user("rita", false).await?;
    web.user("eve", false).await?;
    let project = web.project("open", Visibility::Public).await?;
    web.member(&project, &carol, Role::Guest).await?;
    web.member(&project, &dave, Role::Guest).await?;
    web.member(&project, &rita, Role::Reporter).await?;
    let mut tx = web.store().begin().await?;
    let open = tx
        .create_issue(NewIssue::new(project.id, admin.id, "Open common", ""))
        .await?;
    let mut internal = NewNote::new(Noteable::Issue(open.id), rita.id, "whisper common");
    internal.internal = true;
    tx.create_note(internal).await?;
    let mut secret = NewIssue::new(project.id, carol.id, "Secret common", "");
    secret.confidential = true;
    tx.create_issue(secret).await?;
    let mut assigned = NewIssue::new(project.id, admin.id, "Assigned common", "");
    assigned.confidential = true;
    assigned.assignee_ids = vec![dave.id];
    tx.create_issue(assigned).await?;
    let mut ticket = NewIssue::new(project.id, admin.id, "Ticket common", "");
    ticket.issue_type = IssueType::Ticket;
    tx.create_issue(ticket).await?;
    tx.commit().await?;

    let id = project.id;
    let everything = [
        "Ticket common",
        "Assigned common",
        "Secret common",
        "Open common",
    ];
    let viewers: &[(Option<&str>, &[&str])] = &[
        (None, &["Open common"]),
        (Some("eve"), &["Ticket common", "Open common"]),
        (
            Some("carol"),
            &["Ticket common", "Secret common", "Open common"],
        ),
        (
            Some("dave"),
            &["Ticket common", "Assigned common", "Open common"],
        ),
        (Some("rita"), &everything),
        (Some("root"), &everything),
    ];
    for (viewer, expected) in viewers {
        let session = match viewer {
            Some(name) => Some(web.login(name).await?),
            None => None,
        };
        let cookie = session.as_ref().and_then(|s| s.cookie());
        for query in [
            "",
            "?q=common",
            "?q=secret+OR+assigned",
            "?type=confidential",
        ] {
            let shown = titles(
                &web.get(&format!("/projects/{id}{query}"), cookie)
                    .await
                    .body,
            );
            for title in shown.iter() {
                assert!(
                    expected.contains(&title.as_str()),
                    "{viewer:?} {query}: {title}"
                );
            }
        }
        let shown = titles(
            &web.get(&format!("/projects/{id}?q=common"), cookie)
                .await
                .body,
        );
        assert_eq!(&shown, expected, "{viewer:?}");
        // Internal notes are not searched, whoever asks.
        let whisper = titles(
            &web.get(&format!("/projects/{id}?q=whisper"), cookie)
                .await
                .body,
        );
        assert!(whisper.is_empty(), "{viewer:?}");
        if let Some(name) = viewer {
            let token = token_for(&web, name).await?;
            let listed = api(
                &web,
                "GET",
                &format!("/projects/{id}/issues?q=common"),
                &token,
                None,
            )
            .await;
            let titles: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&listed.body)?
                .iter()
                .filter_map(|i| i["title"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(&titles, expected, "API, {name}");
        }
    }
    Ok(())
});

both!(api_issue_list_searches_filters_and_pages, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("api", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    items(&web, &project, &alice, &alice, 12).await?;
    let token = token_for(&web, "alice").await?;
    let id = project.id;
    let iids = |body: &str| -> Vec<i64> {
        serde_json::from_str::<Vec<serde_json::Value>>(body)
            .unwrap()
            .iter()
            .filter_map(|i| i["iid"].as_i64())
            .collect()
    };
    let get = async |query: &str| {
        api(
            &web,
            "GET",
            &format!("/projects/{id}/issues{query}"),
            &token,
            None,
        )
        .await
    };

    let first = get("?per_page=5").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(iids(&first.body), [12, 11, 10, 9, 8]);
    assert_eq!(
        (
            first.header("x-page"),
            first.header("x-per-page"),
            first.header("x-next-page")
        ),
        ("1", "5", "2")
    );
    let last = get("?per_page=5&page=3").await;
    assert_eq!(iids(&last.body), [2, 1]);
    assert_eq!(last.header("x-next-page"), "");
    assert_eq!(iids(&get("?q=kettle").await.body), [12]);
    assert_eq!(iids(&get("?q=number+-kettle&label=bug").await.body), [7]);
    assert_eq!(iids(&get("?mine=1").await.body), [7]);
    assert_eq!(iids(&get("?type=ticket").await.body), [3]);
    assert_eq!(iids(&get("?state=closed").await.body), [2]);
    assert_eq!(iids(&get("?sort=oldest&per_page=2").await.body), [1, 2]);
    assert_eq!(get("?per_page=1000").await.header("x-per-page"), "100");
    assert_eq!(get("?sort=sideways").await.status, StatusCode::BAD_REQUEST);
    Ok(())
});
