//! The merge request page: comment, close and reopen through the core action (the same
//! notifications as a mail reply), and who may do which.

use axum::http::{Method, StatusCode};
use postern_store::{
    MergeRequest, MergeRequestState, NewMergeRequest, OutboxFilter, Project, Role, User, Visibility,
};
use postern_testkit::{BoxError, both};

use crate::support::Web;

pub async fn merge_request(
    web: &Web,
    project: &Project,
    author: &User,
) -> Result<MergeRequest, BoxError> {
    let mut tx = web.store().begin().await?;
    let mr = tx
        .create_merge_request(NewMergeRequest {
            project_id: project.id,
            title: "Speed up intake".into(),
            description: "Please review".into(),
            source_branch: "fast".into(),
            target_branch: "main".into(),
            author_id: author.id,
            commits: Vec::new(),
        })
        .await?;
    tx.commit().await?;
    Ok(mr)
}

async fn state_of(web: &Web, mr: &MergeRequest) -> Result<MergeRequestState, BoxError> {
    let mut tx = web.store().begin_read_only().await?;
    let state = tx.merge_request_by_id(mr.id).await?.ok_or("no mr")?.state;
    tx.rollback().await?;
    Ok(state)
}

both!(
    merge_request_comment_from_the_page_notifies_the_author,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let bob = web.user("bob", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &bob, Role::Developer).await?;
        let mr = merge_request(&web, &project, &bob).await?;

        let session = web.login("alice").await?;
        let path = format!("/projects/{}/merge_requests/{}", project.id, mr.iid);
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains("id=\"comment-body\""), "{}", page.body);
        assert!(page.body.contains("id=\"toggle-state\""));
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[("body", "Looks **good**")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains("Looks <strong>good</strong>"));

        let mut tx = web.store().begin().await?;
        let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
        let to_bob: Vec<_> = outbox
            .iter()
            .filter(|m| m.recipients.contains(&"bob@example.com".to_owned()))
            .collect();
        assert_eq!(to_bob.len(), 1, "{outbox:?}");
        let raw = tx.outbox_raw(to_bob[0].id).await?.ok_or("no raw mail")?;
        tx.rollback().await?;
        // A reply key, so Bob can answer the merge request by mail.
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.contains("incoming+"), "{raw}");

        let forged = web
            .send(
                Method::POST,
                &format!("{path}/notes"),
                session.cookie(),
                Some(&[("csrf", "wrong"), ("body", "x")]),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let signed_out = web
            .send(
                Method::POST,
                &format!("{path}/notes"),
                None,
                Some(&[("body", "x")]),
            )
            .await;
        assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
        assert_eq!(signed_out.header("location"), "/login");
        Ok(())
    }
);

both!(merge_request_close_and_reopen_need_the_update_right, |db| {
    let web = Web::new(db).await?;
    let author = web.user("author", false).await?;
    let dev = web.user("dev", false).await?;
    let reporter = web.user("reporter", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &author, Role::Reporter).await?;
    web.member(&project, &dev, Role::Developer).await?;
    web.member(&project, &reporter, Role::Reporter).await?;
    let mr = merge_request(&web, &project, &author).await?;
    let path = format!("/projects/{}/merge_requests/{}", project.id, mr.iid);

    let reporter_s = web.login("reporter").await?;
    let page = web.get(&path, reporter_s.cookie()).await;
    assert!(page.body.contains("id=\"comment-body\""));
    assert!(!page.body.contains("id=\"toggle-state\""));
    let refused = web
        .post_form(&format!("{path}/close"), &reporter_s, &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // By comment the command is skipped, as mail skips it.
    web.post_form(&format!("{path}/notes"), &reporter_s, &[("body", "/close")])
        .await;
    assert_eq!(state_of(&web, &mr).await?, MergeRequestState::Opened);

    let dev_s = web.login("dev").await?;
    let closed = web.post_form(&format!("{path}/close"), &dev_s, &[]).await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    assert_eq!(state_of(&web, &mr).await?, MergeRequestState::Closed);
    let page = web.get(&path, dev_s.cookie()).await;
    assert!(page.body.contains("<span id=\"mr-state\">closed</span>"));

    // The author (a reporter) may reopen their own merge request.
    let author_s = web.login("author").await?;
    let reopened = web
        .post_form(&format!("{path}/reopen"), &author_s, &[])
        .await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER, "{}", reopened.body);
    assert_eq!(state_of(&web, &mr).await?, MergeRequestState::Opened);

    // A merged merge request stays merged.
    let mut tx = web.store().begin().await?;
    tx.set_merge_request_state(mr.id, MergeRequestState::Merged)
        .await?;
    tx.commit().await?;
    web.post_form(&format!("{path}/close"), &dev_s, &[]).await;
    assert_eq!(state_of(&web, &mr).await?, MergeRequestState::Merged);

    let outsider = web.user("eve", false).await?;
    let _ = outsider;
    let eve = web.login("eve").await?;
    let hidden = web
        .post_form(&format!("{path}/notes"), &eve, &[("body", "hi")])
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    Ok(())
});

both!(large_diff_is_cut_with_a_notice, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("big", Visibility::Public).await?;
    web.member(&project, &alice, Role::Developer).await?;
    let repository = web.processor.repositories().repository(project.id)?;
    let author = postern_git::Identity::new("Alice", "alice@example.com");
    repository.commit_files("main", &[("README", b"hello\n")], "Initial", &author)?;
    let main = repository.head_of("main")?.ok_or("main exists")?;
    repository.reset_branch("fast", Some(&main))?;
    // 16 MiB of added lines: sixteen times what the page shows.
    let line = "a line of generated data, long enough to add up quickly\n";
    let big = line.repeat(16 * 1024 * 1024 / line.len());
    repository.commit_files("fast", &[("data.txt", big.as_bytes())], "Add data", &author)?;
    let mr = merge_request(&web, &project, &alice).await?;

    // Anonymous: the page is public.
    let page = web
        .get(
            &format!("/projects/{}/merge_requests/{}", project.id, mr.iid),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(
            "id=\"diff-notice\">The diff is too large to show in full: showing the first 1024 KiB."
        ),
        "{}",
        &page.body[..page.body.len().min(2000)]
    );
    assert!(page.body.contains("+a line of generated data"));
    // The diff part is at most the cap; the rest of the page is small.
    assert!(
        page.body.len() < 1024 * 1024 + 64 * 1024,
        "{}",
        page.body.len()
    );

    // A small diff has no notice.
    repository.reset_branch("fast", Some(&main))?;
    repository.commit_files("fast", &[("small.txt", b"small\n")], "Small", &author)?;
    let page = web
        .get(
            &format!("/projects/{}/merge_requests/{}", project.id, mr.iid),
            None,
        )
        .await;
    assert!(page.body.contains("+small"), "{}", page.body);
    assert!(!page.body.contains("diff-notice"));
    Ok(())
});
