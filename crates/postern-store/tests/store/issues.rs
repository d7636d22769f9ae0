//! Issues, tickets, iids, participants, issue emails and merge requests.

use postern_store::{
    Commit, IssueFilter, IssueState, IssueType, IssueUpdate, MergeRequestState, NewIssue,
    NewMergeRequest, StoreError,
};

use crate::support::{TestDb, both, project, user};

both!(iids_are_per_project_and_per_kind, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let a = project(&mut tx, "a").await?;
    let b = project(&mut tx, "b").await?;
    let a1 = tx
        .create_issue(NewIssue::new(a.id, author.id, "one", ""))
        .await?;
    let a2 = tx
        .create_issue(NewIssue::new(a.id, author.id, "two", ""))
        .await?;
    let b1 = tx
        .create_issue(NewIssue::new(b.id, author.id, "other", ""))
        .await?;
    let mut ticket = NewIssue::new(a.id, author.id, "ticket", "");
    ticket.issue_type = IssueType::Ticket;
    let a3 = tx.create_issue(ticket).await?;
    assert_eq!(
        (a1.iid, a2.iid, b1.iid, a3.iid),
        (1, 2, 1, 3),
        "tickets share the sequence"
    );

    let mr = tx
        .create_merge_request(new_mr(a.id, author.id, "feature"))
        .await?;
    assert_eq!(mr.iid, 1, "merge requests have their own sequence");
    assert_eq!(tx.issue_by_iid(a.id, 2).await?.map(|i| i.id), Some(a2.id));
    assert_eq!(tx.issue_by_iid(b.id, 2).await?, None);
    tx.commit().await
});

both!(issue_fields_round_trip_and_update, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let helper = user(&mut tx, "helper").await?;
    let p = project(&mut tx, "p").await?;
    let mut new = NewIssue::new(p.id, author.id, "Title", "Body");
    new.labels = vec!["bug".to_owned(), "api".to_owned(), "bug".to_owned()];
    new.assignee_ids = vec![helper.id];
    new.confidential = true;
    new.due_date = Some("2026-12-01".to_owned());
    let issue = tx.create_issue(new).await?;
    assert_eq!(issue.labels, vec!["api", "bug"]);
    assert_eq!(issue.assignee_ids, vec![helper.id]);
    assert!(issue.confidential);
    assert_eq!(issue.state, IssueState::Opened);
    assert_eq!(issue.closed_at, None);
    assert_eq!(tx.issue_by_id(issue.id).await?.as_ref(), Some(&issue));

    let closed = tx
        .update_issue(
            issue.id,
            IssueUpdate {
                state: Some(IssueState::Closed),
                labels: Some(vec!["done".to_owned()]),
                assignee_ids: Some(vec![]),
                due_date: Some(None),
                ..IssueUpdate::default()
            },
        )
        .await?;
    assert_eq!(closed.state, IssueState::Closed);
    assert!(closed.closed_at.is_some());
    assert_eq!(closed.labels, vec!["done"]);
    assert!(closed.assignee_ids.is_empty());
    assert_eq!(closed.due_date, None);
    assert_eq!(closed.title, "Title", "untouched fields stay");

    let reopened = tx
        .update_issue(
            issue.id,
            IssueUpdate {
                state: Some(IssueState::Opened),
                title: Some("New title".to_owned()),
                ..IssueUpdate::default()
            },
        )
        .await?;
    assert_eq!(
        (reopened.state, reopened.closed_at),
        (IssueState::Opened, None)
    );
    assert_eq!(reopened.title, "New title");
    assert_eq!(reopened.labels, vec!["done"]);

    let missing = tx.update_issue(9999, IssueUpdate::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    tx.commit().await
});

both!(participants_and_issue_emails, |db| {
    let mut tx = db.tx().await;
    let bot = tx.ensure_support_bot().await?;
    let p = project(&mut tx, "desk").await?;
    let other = project(&mut tx, "other").await?;
    let mut new = NewIssue::new(p.id, bot.id, "Help", "please");
    new.issue_type = IssueType::Ticket;
    new.external_author = Some("customer@example.org".to_owned());
    let ticket = tx.create_issue(new).await?;

    assert!(
        tx.add_issue_participant(ticket.id, "customer@example.org")
            .await?
    );
    assert!(
        !tx.add_issue_participant(ticket.id, "Customer@Example.org")
            .await?
    );
    assert!(
        tx.add_issue_participant(ticket.id, "cc@example.org")
            .await?
    );
    let loaded = tx.issue_by_id(ticket.id).await?.expect("ticket exists");
    assert_eq!(
        loaded.email_participants,
        vec!["customer@example.org", "cc@example.org"]
    );
    assert!(
        tx.remove_issue_participant(ticket.id, "CC@example.org")
            .await?
    );

    tx.record_issue_email(ticket.id, "<first@example.org>")
        .await?;
    tx.record_issue_email(ticket.id, "<second@example.org>")
        .await?;
    let found = tx.ticket_by_message_id(p.id, "<first@example.org>").await?;
    assert_eq!(found.map(|i| i.id), Some(ticket.id));
    assert_eq!(
        tx.ticket_by_message_id(p.id, "<second@example.org>")
            .await?,
        None
    );
    assert_eq!(
        tx.ticket_by_message_id(other.id, "<first@example.org>")
            .await?,
        None
    );
    tx.commit().await
});

both!(list_issues_filters, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let a = project(&mut tx, "a").await?;
    let b = project(&mut tx, "b").await?;
    tx.create_issue(NewIssue::new(a.id, author.id, "a1", ""))
        .await?;
    let mut t = NewIssue::new(a.id, author.id, "a2", "");
    t.issue_type = IssueType::Ticket;
    let a2 = tx.create_issue(t).await?;
    tx.create_issue(NewIssue::new(b.id, author.id, "b1", ""))
        .await?;
    tx.update_issue(
        a2.id,
        IssueUpdate {
            state: Some(IssueState::Closed),
            ..IssueUpdate::default()
        },
    )
    .await?;

    let titles = |v: Vec<postern_store::Issue>| v.into_iter().map(|i| i.title).collect::<Vec<_>>();
    assert_eq!(
        titles(tx.list_issues(&IssueFilter::default()).await?),
        ["a1", "a2", "b1"]
    );
    let only_a = IssueFilter {
        project_id: Some(a.id),
        ..IssueFilter::default()
    };
    assert_eq!(titles(tx.list_issues(&only_a).await?), ["a1", "a2"]);
    let open_issues = IssueFilter {
        state: Some(IssueState::Opened),
        issue_type: Some(IssueType::Issue),
        ..IssueFilter::default()
    };
    assert_eq!(titles(tx.list_issues(&open_issues).await?), ["a1", "b1"]);
    tx.commit().await
});

fn new_mr(project_id: i64, author_id: i64, branch: &str) -> NewMergeRequest {
    NewMergeRequest {
        project_id,
        title: format!("Add {branch}"),
        description: String::new(),
        source_branch: branch.to_owned(),
        target_branch: "main".to_owned(),
        author_id,
        commits: vec![
            Commit {
                sha: "a".repeat(40),
                title: "first".to_owned(),
                message: "first\n\nbody".to_owned(),
                author_name: "A".to_owned(),
                author_email: "a@example.com".to_owned(),
            },
            Commit {
                sha: "b".repeat(40),
                title: "second".to_owned(),
                message: "second".to_owned(),
                author_name: "B".to_owned(),
                author_email: "b@example.com".to_owned(),
            },
        ],
    }
}

both!(merge_requests_round_trip, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let p = project(&mut tx, "p").await?;
    let mr = tx
        .create_merge_request(new_mr(p.id, author.id, "feature"))
        .await?;
    assert_eq!(mr.commits.len(), 2);
    assert_eq!(mr.commits[0].title, "first");
    assert_eq!(mr.state, MergeRequestState::Opened);
    assert_eq!(tx.merge_request_by_iid(p.id, 1).await?.as_ref(), Some(&mr));
    assert_eq!(tx.merge_request_by_id(mr.id).await?.as_ref(), Some(&mr));

    tx.replace_commits(mr.id, &mr.commits[1..]).await?;
    assert!(
        tx.set_merge_request_state(mr.id, MergeRequestState::Merged)
            .await?
    );
    let again = tx.merge_request_by_id(mr.id).await?.expect("exists");
    assert_eq!(again.commits.len(), 1);
    assert_eq!(again.state, MergeRequestState::Merged);

    tx.create_merge_request(new_mr(p.id, author.id, "second"))
        .await?;
    assert_eq!(tx.list_merge_requests(Some(p.id)).await?.len(), 2);
    assert_eq!(tx.list_merge_requests(None).await?.len(), 2);
    assert!(tx.list_merge_requests(Some(p.id + 1)).await?.is_empty());
    tx.commit().await
});

/// Writers racing for iids of one project, some rolling back: the committed iids must be
/// exactly 1..=n with no gaps and no repeats.
async fn concurrent_iids(db: TestDb) -> Result<(), StoreError> {
    const WRITERS: i64 = 12;
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let p = project(&mut tx, "race").await?;
    tx.commit().await?;

    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await?;
            let issue = tx
                .create_issue(NewIssue::new(p.id, author.id, &format!("w{i}"), ""))
                .await?;
            // Yield so that, on PostgreSQL, other writers queue up behind our row lock.
            tokio::task::yield_now().await;
            if i % 3 == 0 {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok::<_, StoreError>(issue.iid)
        }));
    }
    for t in tasks {
        t.await.expect("writer task panicked")?;
    }

    let mut tx = db.tx().await;
    let mut iids: Vec<i64> = tx
        .list_issues(&IssueFilter::default())
        .await?
        .into_iter()
        .map(|i| i.iid)
        .collect();
    iids.sort_unstable();
    let committed = WRITERS - (WRITERS + 2) / 3;
    assert_eq!(iids, (1..=committed).collect::<Vec<_>>());
    // The next one continues the sequence: rolled-back numbers were handed out again.
    let next = tx
        .create_issue(NewIssue::new(p.id, author.id, "next", ""))
        .await?;
    assert_eq!(next.iid, committed + 1);
    Ok(())
}

both!(iid_allocation_is_gapless_under_concurrency, |db| {
    concurrent_iids(db).await
});
