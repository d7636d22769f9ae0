//! `Tx::search_issues`: full-text search with the same answers on both stores, filters, what a
//! viewer may read, order, pages, hostile search text, the index kept in sync by every write,
//! and migration 0016 indexing the issues that existed before it.

use postern_store::{
    IssueQuery, IssueSort, IssueState, IssueType, IssueUpdate, IssueVisibility, MAX_PER_PAGE,
    NewIssue, NewNote, Noteable, Page, SearchText, Store, StoreError, Tx,
};
use sqlx::Connection as _;

use crate::support::{TestDb, both, project, user};

/// One statement outside the store (what no store function does: delete a note or an issue,
/// set a time), on either backend.
async fn raw(db: &TestDb, sql: &'static str) {
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url)
            .await
            .expect("sqlite");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url)
            .await
            .expect("postgres");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
}

fn iids(page: &Page<postern_store::Issue>) -> Vec<i64> {
    page.items.iter().map(|i| i.iid).collect()
}

/// The iids of `project_id` matching `text`, everything visible, newest first.
async fn find(tx: &mut Tx, project_id: i64, text: &str) -> Result<Vec<i64>, StoreError> {
    let mut query = IssueQuery::new(project_id, IssueVisibility::All);
    query.text = SearchText::parse(text);
    query.per_page = MAX_PER_PAGE;
    Ok(iids(&tx.search_issues(&query).await?))
}

/// The iids of `base` changed by `change`.
async fn filtered(
    tx: &mut Tx,
    base: &IssueQuery,
    change: &dyn Fn(&mut IssueQuery),
) -> Result<Vec<i64>, StoreError> {
    let mut query = base.clone();
    change(&mut query);
    Ok(iids(&tx.search_issues(&query).await?))
}

struct World {
    project: i64,
    author: i64,
    helper: i64,
    other: i64,
}

/// Five issues of one project:
/// 1. "Printer offline", open;
/// 2. "Paper jam in tray 2", labelled `bug`, assigned to `helper`, closed;
/// 3. "Toner low", confidential, by `author`;
/// 4. a ticket about an invoice from alice@example.com;
/// 5. "Unrelated", whose public comment names the printer, with an internal and a system note.
async fn world(tx: &mut Tx) -> Result<World, StoreError> {
    let author = user(tx, "author").await?;
    let helper = user(tx, "helper").await?;
    let other = user(tx, "other").await?;
    let p = project(tx, "search").await?;
    tx.create_issue(NewIssue::new(
        p.id,
        author.id,
        "Printer offline",
        "The office printer is offline since Monday.",
    ))
    .await?;
    let mut jam = NewIssue::new(
        p.id,
        other.id,
        "Paper jam in tray 2",
        "The Printer reports a paper jam.",
    );
    jam.labels = vec!["bug".to_owned()];
    jam.assignee_ids = vec![helper.id];
    let jam = tx.create_issue(jam).await?;
    tx.update_issue(
        jam.id,
        IssueUpdate {
            state: Some(IssueState::Closed),
            ..IssueUpdate::default()
        },
    )
    .await?;
    let mut toner = NewIssue::new(p.id, author.id, "Toner low", "Order toner for the printer.");
    toner.confidential = true;
    tx.create_issue(toner).await?;
    let mut ticket = NewIssue::new(
        p.id,
        author.id,
        "Invoice question",
        "From alice@example.com: invoice 42 is wrong.",
    );
    ticket.issue_type = IssueType::Ticket;
    tx.create_issue(ticket).await?;
    let unrelated = tx
        .create_issue(NewIssue::new(
            p.id,
            other.id,
            "Unrelated",
            "Nothing to see here.",
        ))
        .await?;
    let on = Noteable::Issue(unrelated.id);
    tx.create_note(NewNote::new(on, other.id, "The printer again!"))
        .await?;
    let mut internal = NewNote::new(on, other.id, "classified whisper");
    internal.internal = true;
    tx.create_note(internal).await?;
    let mut system = NewNote::new(on, other.id, "changed the frobnication");
    system.system = true;
    tx.create_note(system).await?;
    Ok(World {
        project: p.id,
        author: author.id,
        helper: helper.id,
        other: other.id,
    })
}

both!(search_reads_titles_descriptions_and_public_comments, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let p = w.project;
    assert_eq!(find(&mut tx, p, "printer").await?, [5, 3, 2, 1]);
    assert_eq!(find(&mut tx, p, "PRINTER").await?, [5, 3, 2, 1]);
    assert_eq!(find(&mut tx, p, "toner").await?, [3]);
    assert_eq!(find(&mut tx, p, "monday").await?, [1], "description");
    assert_eq!(find(&mut tx, p, "again").await?, [5], "public comment");
    assert_eq!(
        find(&mut tx, p, "whisper").await?,
        [0i64; 0],
        "internal note"
    );
    assert_eq!(find(&mut tx, p, "frobnication").await?, [0i64; 0], "system");
    assert_eq!(find(&mut tx, p, "").await?, [5, 4, 3, 2, 1], "no text");
    tx.commit().await
});

both!(search_language_is_the_same_on_both_stores, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let p = w.project;
    let cases: &[(&str, &[i64])] = &[
        ("printer offline", &[1]),
        ("\"paper jam\"", &[2]),
        ("\"jam paper\"", &[]),
        ("printer -toner", &[5, 2, 1]),
        ("printer -\"paper jam\"", &[5, 3, 1]),
        ("-printer", &[4]),
        ("print*", &[5, 3, 2, 1]),
        ("prin", &[]),
        ("\"offline since\"*", &[1]),
        ("alice@example.com", &[4]),
        ("example", &[4]),
        ("invoice 42", &[4]),
        ("tray-2", &[2]),
        ("nowhere", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(&find(&mut tx, p, text).await?, expected, "{text:?}");
    }
    tx.commit().await
});

both!(hostile_search_text_is_never_syntax, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let p = w.project;
    let long = "printer ".repeat(10_000);
    let hostile = [
        "\" OR 1=1 --",
        "printer\"",
        "\"printer",
        "title:secret",
        "NEAR(printer toner)",
        "printer) OR (toner",
        "printer AND OR NOT",
        "'); DROP TABLE issues; --",
        "printer & !toner | jam <-> paper:*",
        "\\' \\\" \\\\",
        "\0printer\0",
        "*",
        "-",
        "- -- ---",
        "\"\"",
        "^printer +toner {x} [y]",
        "printer:* ::",
        long.as_str(),
    ];
    for text in hostile {
        find(&mut tx, p, text).await?;
    }
    // Operators are words, punctuation separates: the answers are ordinary ones.
    assert_eq!(find(&mut tx, p, "title:toner").await?, [0i64; 0]);
    assert_eq!(find(&mut tx, p, "toner:low").await?, [3]);
    assert_eq!(find(&mut tx, p, "\0toner\0").await?, [3]);
    assert_eq!(find(&mut tx, p, "(toner)").await?, [3]);
    assert_eq!(find(&mut tx, p, "toner OR jam").await?, [0i64; 0]);
    assert_eq!(find(&mut tx, p, &long).await?, [5, 3, 2, 1]);
    tx.commit().await
});

both!(filters_narrow_the_list, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let base = IssueQuery::new(w.project, IssueVisibility::All);
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.state = Some(IssueState::Closed)).await?,
        [2]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.state = Some(IssueState::Opened)).await?,
        [5, 4, 3, 1]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.issue_type = Some(IssueType::Ticket)).await?,
        [4]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.issue_type = Some(IssueType::Issue)).await?,
        [5, 3, 2, 1]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.confidential = Some(true)).await?,
        [3]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.label = Some("bug".to_owned())).await?,
        [2]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.label = Some("nope".to_owned())).await?,
        [0i64; 0]
    );
    let helper = w.helper;
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.assignee_id = Some(helper)).await?,
        [2]
    );
    let author = w.author;
    assert_eq!(
        filtered(&mut tx, &base, &|q| q.author_id = Some(author)).await?,
        [4, 3, 1]
    );
    assert_eq!(
        filtered(&mut tx, &base, &|q| {
            q.author_id = Some(author);
            q.text = SearchText::parse("printer");
        })
        .await?,
        [3, 1]
    );
    tx.commit().await
});

both!(visibility_hides_what_the_viewer_may_not_read, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let mut query = IssueQuery::new(w.project, IssueVisibility::Member { user_id: w.other });
    assert_eq!(iids(&tx.search_issues(&query).await?), [5, 4, 2, 1]);
    query.text = SearchText::parse("toner");
    assert_eq!(iids(&tx.search_issues(&query).await?), [0i64; 0]);
    query.visibility = IssueVisibility::Member { user_id: w.author };
    assert_eq!(iids(&tx.search_issues(&query).await?), [3], "own issue");
    // Assigned to a confidential issue: readable.
    let toner = tx
        .issue_by_iid(w.project, 3)
        .await?
        .ok_or(StoreError::NotFound("issue"))?;
    tx.update_issue(
        toner.id,
        IssueUpdate {
            assignee_ids: Some(vec![w.helper]),
            ..IssueUpdate::default()
        },
    )
    .await?;
    query.visibility = IssueVisibility::Member { user_id: w.helper };
    assert_eq!(iids(&tx.search_issues(&query).await?), [3], "assignee");
    query.visibility = IssueVisibility::Public;
    query.text = SearchText::default();
    assert_eq!(
        iids(&tx.search_issues(&query).await?),
        [5, 2, 1],
        "signed out: no confidential issue, no ticket"
    );
    tx.commit().await
});

both!(order_and_pages, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    tx.commit().await?;
    let mut tx = db.tx().await;
    let mut query = IssueQuery::new(w.project, IssueVisibility::All);
    query.per_page = 2;
    let first = tx.search_issues(&query).await?;
    assert_eq!((iids(&first), first.has_next), (vec![5, 4], true));
    query.page = 2;
    let second = tx.search_issues(&query).await?;
    assert_eq!((iids(&second), second.has_next), (vec![3, 2], true));
    query.page = 3;
    let third = tx.search_issues(&query).await?;
    assert_eq!((iids(&third), third.has_next), (vec![1], false));
    query.page = 4;
    assert!(tx.search_issues(&query).await?.items.is_empty());
    query.page = 0;
    assert_eq!(tx.search_issues(&query).await?.page, 1, "pages start at 1");
    query.page = u32::MAX;
    assert_eq!(
        tx.search_issues(&query).await?.page,
        postern_store::MAX_PAGE
    );
    query.page = 1;
    query.per_page = u32::MAX;
    let capped = tx.search_issues(&query).await?;
    assert_eq!(capped.per_page, MAX_PER_PAGE);
    query.per_page = 0;
    assert_eq!(tx.search_issues(&query).await?.per_page, 1);

    query.per_page = 10;
    query.sort = IssueSort::Oldest;
    assert_eq!(iids(&tx.search_issues(&query).await?), [1, 2, 3, 4, 5]);
    tx.commit().await?;
    raw(&db, "UPDATE issues SET updated_at = 100 + iid").await;
    raw(&db, "UPDATE issues SET updated_at = 1000 WHERE iid = 2").await;
    let mut tx = db.tx().await;
    query.sort = IssueSort::Updated;
    assert_eq!(iids(&tx.search_issues(&query).await?), [2, 5, 4, 3, 1]);
    query.sort = IssueSort::UpdatedAsc;
    assert_eq!(iids(&tx.search_issues(&query).await?), [1, 3, 4, 5, 2]);
    tx.commit().await
});

// PostgreSQL looks through the newest 2 000-odd issues first and asks the index only when they
// do not fill the page: a rare word older than them, a phrase whose words are everywhere but
// rarely side by side, and the page order across that boundary must not change with it.
both!(pages_are_exact_beyond_the_newest_issues, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let p = project(&mut tx, "many").await?;
    for n in 1..=2_300_i64 {
        let title = match n {
            3 | 2_250 => format!("needle {n}: paper jam"),
            _ if n % 3 == 0 => format!("common {n} jam and paper"),
            _ => format!("common {n}"),
        };
        tx.create_issue(NewIssue::new(p.id, author.id, &title, ""))
            .await?;
    }
    tx.commit().await?;
    let mut tx = db.tx().await;
    assert_eq!(find(&mut tx, p.id, "needle").await?, [2_250, 3]);
    assert_eq!(find(&mut tx, p.id, "\"paper jam\"").await?, [2_250, 3]);
    let newest_common: Vec<i64> = (1..=2_300_i64)
        .rev()
        .filter(|n| ![3, 2_250].contains(n))
        .take(100)
        .collect();
    assert_eq!(find(&mut tx, p.id, "common").await?, newest_common);
    let mut query = IssueQuery::new(p.id, IssueVisibility::All);
    query.text = SearchText::parse("common -paper");
    query.per_page = 100;
    query.page = 16;
    let deep = tx.search_issues(&query).await?;
    // 1 534 issues hold "common" without "paper"; page 16 holds the 1 501st to the 1 534th.
    let expected: Vec<i64> = (1..=2_300_i64)
        .rev()
        .filter(|n| n % 3 != 0 && ![3, 2_250].contains(n))
        .skip(1_500)
        .collect();
    assert_eq!((iids(&deep), deep.has_next), (expected, false));
    query.sort = IssueSort::Oldest;
    query.page = 1;
    query.per_page = 2;
    query.text = SearchText::parse("needle");
    assert_eq!(iids(&tx.search_issues(&query).await?), [3, 2_250]);
    tx.commit().await
});

both!(the_index_follows_every_write, |db| {
    let mut tx = db.tx().await;
    let w = world(&mut tx).await?;
    let p = w.project;
    let first = tx
        .issue_by_iid(p, 1)
        .await?
        .ok_or(StoreError::NotFound("issue"))?;
    tx.update_issue(
        first.id,
        IssueUpdate {
            title: Some("Scanner offline".to_owned()),
            ..IssueUpdate::default()
        },
    )
    .await?;
    assert_eq!(find(&mut tx, p, "scanner").await?, [1]);
    assert_eq!(
        find(&mut tx, p, "printer").await?,
        [5, 3, 2, 1],
        "description"
    );
    tx.update_issue(
        first.id,
        IssueUpdate {
            description: Some("Fixed by a restart.".to_owned()),
            ..IssueUpdate::default()
        },
    )
    .await?;
    assert_eq!(find(&mut tx, p, "printer").await?, [5, 3, 2]);
    assert_eq!(find(&mut tx, p, "restart").await?, [1]);
    // A state change keeps the document (and its comments).
    let unrelated = tx
        .issue_by_iid(p, 5)
        .await?
        .ok_or(StoreError::NotFound("issue"))?;
    tx.update_issue(
        unrelated.id,
        IssueUpdate {
            state: Some(IssueState::Closed),
            ..IssueUpdate::default()
        },
    )
    .await?;
    assert_eq!(find(&mut tx, p, "again").await?, [5]);
    tx.create_note(NewNote::new(
        Noteable::Issue(first.id),
        w.other,
        "Still broken: kerfuffle.",
    ))
    .await?;
    assert_eq!(find(&mut tx, p, "kerfuffle").await?, [1]);
    assert_eq!(find(&mut tx, p, "restart kerfuffle").await?, [1]);
    tx.commit().await?;

    raw(&db, "DELETE FROM notes WHERE body = 'The printer again!'").await;
    let mut tx = db.tx().await;
    assert_eq!(find(&mut tx, p, "again").await?, [0i64; 0], "note deleted");
    assert_eq!(find(&mut tx, p, "unrelated").await?, [5], "issue kept");
    tx.commit().await?;
    raw(&db, "DELETE FROM issues WHERE title = 'Toner low'").await;
    let mut tx = db.tx().await;
    assert_eq!(find(&mut tx, p, "toner").await?, [0i64; 0], "issue deleted");
    assert_eq!(find(&mut tx, p, "").await?, [5, 4, 2, 1]);
    tx.commit().await
});

both!(long_documents_are_indexed_up_to_their_cap, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let p = project(&mut tx, "long").await?;
    // 300 000 characters of distinct words: three times the indexed part, and past what one
    // PostgreSQL `tsvector` may hold.
    let mut text = String::from("beginning ");
    let mut n = 0;
    while text.len() < 300_000 {
        text.push_str(&format!("w{n} "));
        n += 1;
    }
    text.push_str("ending");
    tx.create_issue(NewIssue::new(p.id, author.id, "Long", &text))
        .await?;
    assert_eq!(find(&mut tx, p.id, "beginning").await?, [1]);
    assert_eq!(find(&mut tx, p.id, "w100").await?, [1]);
    assert_eq!(
        find(&mut tx, p.id, "ending").await?,
        [0i64; 0],
        "past the cap"
    );
    tx.commit().await
});

/// What an instance wrote before 0016: a user, a project, two issues and three notes.
const BEFORE_0016: &[&str] = &[
    "INSERT INTO users (username, username_lower, name, incoming_email_token_hash, created_at,
                        updated_at)
     VALUES ('u', 'u', 'u', 'token-1', 1, 1)",
    "INSERT INTO projects (namespace_path, path, full_path, full_path_lower, full_path_slug, name,
                           created_at, updated_at)
     VALUES ('acme', 'old', 'acme/old', 'acme/old', 'acme-old', 'old', 1, 1)",
    "INSERT INTO issues (project_id, iid, title, description, author_id, created_at, updated_at)
     VALUES (1, 1, 'Ancient printer', 'dusty', 1, 1, 1), (1, 2, 'Other', '', 1, 1, 1)",
    "INSERT INTO notes (project_id, noteable_type, noteable_id, author_id, body, discussion_id,
                        internal, system, created_at, updated_at)
     VALUES (1, 'issue', 2, 1, 'a venerable comment', 'd1', FALSE, FALSE, 1, 1),
            (1, 'issue', 2, 1, 'hushed', 'd2', TRUE, FALSE, 1, 1),
            (1, 'issue', 1, 1, 'another comment', 'd3', FALSE, FALSE, 1, 1)",
];

async fn check_0016(store: &Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    assert_eq!(find(&mut tx, 1, "printer").await?, [1]);
    assert_eq!(find(&mut tx, 1, "dusty").await?, [1]);
    assert_eq!(find(&mut tx, 1, "venerable").await?, [2]);
    assert_eq!(find(&mut tx, 1, "comment").await?, [2, 1]);
    assert_eq!(find(&mut tx, 1, "hushed").await?, [0i64; 0]);
    tx.commit().await
}

#[tokio::test]
async fn sqlite_issues_from_before_0016_are_indexed() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::migrate!("migrations/sqlite")
        .run_to(15, &pool)
        .await?;
    for statement in BEFORE_0016 {
        sqlx::query(*statement).execute(&pool).await?;
    }
    pool.close().await;
    check_0016(&Store::connect(&url).await?).await?;
    Ok(())
}

#[tokio::test]
async fn postgres_issues_from_before_0016_are_indexed() -> Result<(), Box<dyn std::error::Error>> {
    let admin = match postern_testkit::pg::shared_admin_url() {
        postern_testkit::pg::PgChoice::Skip => return Ok(()),
        postern_testkit::pg::PgChoice::Url(url) => url,
    };
    let url = postern_testkit::create_database(&admin).await;
    let pool = sqlx::PgPool::connect(&url).await?;
    sqlx::migrate!("migrations/postgres")
        .run_to(15, &pool)
        .await?;
    for statement in BEFORE_0016 {
        sqlx::query(*statement).execute(&pool).await?;
    }
    pool.close().await;
    check_0016(&Store::connect(&url).await?).await?;
    Ok(())
}
