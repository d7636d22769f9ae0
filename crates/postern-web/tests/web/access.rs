//! A comment from the page follows the same read rule as one by mail: only people who may read
//! the issue now are notified, and `/assign` names no one outside a private project.

use axum::http::StatusCode;
use postern_core::Outcome;
use postern_store::{OutboxFilter, Role, UserState, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(
    a_comment_from_the_page_notifies_only_who_may_read_the_issue_now,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let bob = web.user("bob", false).await?;
        let carol = web.user("carol", false).await?;
        let dave = web.user("dave", false).await?;
        let mallory = web.user("mallory", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        for user in [&alice, &bob, &carol, &dave] {
            web.member(&project, user, Role::Developer).await?;
        }
        // Bob opens the issue by mail and assigns carol and dave: all three take part.
        let outcome = web
            .receive(&web.new_issue_mail(
                &project,
                &bob,
                "By mail",
                "hello\r\n\r\n/assign @carol @dave",
            ))
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        // Mallory follows it without being a member; bob leaves the project; carol is blocked.
        let mut tx = web.store().begin().await?;
        let issue = tx.issue_by_iid(project.id, 1).await?.ok_or("issue")?;
        assert_eq!(issue.assignee_ids.len(), 2);
        tx.set_subscription(mallory.id, postern_store::Noteable::Issue(issue.id), true)
            .await?;
        tx.remove_member(project.id, bob.id).await?;
        tx.set_user_state(carol.id, UserState::Blocked).await?;
        let before: Vec<i64> = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .iter()
            .map(|m| m.id)
            .collect();
        tx.commit().await?;

        let session = web.login("alice").await?;
        let path = format!("/projects/{}/issues/1", project.id);
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[("body", "Looking into it.\n\n/assign @mallory")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);

        let mut tx = web.store().begin().await?;
        let issue = tx.issue_by_iid(project.id, 1).await?.ok_or("issue")?;
        let new: Vec<Vec<String>> = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .into_iter()
            .filter(|m| !before.contains(&m.id))
            .map(|m| m.recipients)
            .collect();
        tx.rollback().await?;
        assert!(!issue.assignee_ids.contains(&mallory.id), "{issue:?}");
        assert_eq!(new, [["dave@example.com"]], "only dave may read it now");
        Ok(())
    }
);
