//! New issue by email.

use postern_core::{ErrorKind, HandlerKind, Outcome};
use postern_store::{IssueType, Role};
use postern_testkit::both;

use crate::support::{INCOMING, World};

both!(new_issue_is_created_with_subject_and_untrimmed_body, |db| {
    let world = World::new(db).await?;
    let outcome = world
        .receive(INCOMING, &world.fixture("valid_new_issue.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(outcome.handler, Some(HandlerKind::CreateIssue));
    let created = outcome.created.expect("an issue");
    assert_eq!(created.kind, "issue");
    assert_eq!(created.project, "gitlabhq/gitlabhq");
    let issue = world.issue_by_iid(created.iid.expect("iid")).await?;
    assert_eq!(issue.title, "New Issue by email");
    assert_eq!(issue.author_id, world.jake.id);
    assert_eq!(issue.issue_type, IssueType::Issue);
    assert!(
        issue.description.contains("reply by email"),
        "{}",
        issue.description
    );
    Ok(())
});

both!(empty_new_issue_has_empty_description, |db| {
    let world = World::new(db).await?;
    let outcome = world
        .receive(INCOMING, &world.fixture("valid_new_issue_empty.eml", 0))
        .await?;
    let issue = world
        .issue_by_iid(outcome.created.and_then(|c| c.iid).expect("issue"))
        .await?;
    assert_eq!(issue.title, "New Issue by email");
    assert_eq!(issue.description, "");
    Ok(())
});

both!(new_issue_keeps_quotes, |db| {
    let world = World::new(db).await?;
    for (name, expected) in [
        ("valid_new_issue_with_quote.eml", "> this is a quote"),
        (
            "valid_new_issue_with_only_quotes.eml",
            "This email has been forwarded without new content.",
        ),
    ] {
        let outcome = world.receive(INCOMING, &world.fixture(name, 0)).await?;
        let issue = world
            .issue_by_iid(outcome.created.and_then(|c| c.iid).expect("issue"))
            .await?;
        assert!(
            issue.description.contains(expected),
            "{name}: {}",
            issue.description
        );
    }
    Ok(())
});

both!(wrong_token_is_user_not_found_with_notice, |db| {
    let world = World::new(db).await?;
    for name in [
        "wrong_issue_incoming_email_token.eml",
        "wrong_authentication_token.eml",
    ] {
        let outcome = world.receive(INCOMING, &world.fixture(name, 0)).await?;
        assert_eq!(outcome.outcome, Outcome::Rejected, "{name}");
        assert_eq!(outcome.error, Some(ErrorKind::UserNotFound), "{name}");
        assert_eq!(
            outcome.reason.as_deref(),
            Some(
                "We couldn't figure out what user corresponds to the email. Please create your comment through the web interface."
            )
        );
    }
    Ok(())
});

both!(
    slug_mismatch_and_private_project_are_project_not_found,
    |db| {
        let world = World::new(db).await?;
        let raw = String::from_utf8(world.fixture("valid_new_issue.eml", 0))?;
        let wrong_slug = raw.replace("gitlabhq-gitlabhq-", "other-project-");
        let outcome = world.receive(INCOMING, wrong_slug.as_bytes()).await?;
        assert_eq!(outcome.error, Some(ErrorKind::ProjectNotFound));

        // An outsider's token on a private project: the project is not revealed.
        let outsider = world.member("finn", "finn@adventuretime.ooo", None).await?;
        let as_outsider = raw.replace(
            &world.jake.incoming_email_token,
            &outsider.incoming_email_token,
        );
        let outcome = world.receive(INCOMING, as_outsider.as_bytes()).await?;
        assert_eq!(outcome.error, Some(ErrorKind::ProjectNotFound));
        Ok(())
    }
);

both!(blocked_author_is_refused, |db| {
    let world = World::new(db).await?;
    let mut tx = world.store().begin().await?;
    tx.set_user_state(world.jake.id, postern_store::UserState::Blocked)
        .await?;
    tx.commit().await?;
    let outcome = world
        .receive(INCOMING, &world.fixture("valid_new_issue.eml", 0))
        .await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserBlocked));
    Ok(())
});

both!(guest_can_open_issues_but_not_merge_requests, |db| {
    let world = World::new(db).await?;
    let guest = world
        .member("bmo", "bmo@adventuretime.ooo", Some(Role::Guest))
        .await?;
    let raw = String::from_utf8(world.fixture("valid_new_merge_request.eml", 0))?.replace(
        &world.jake.incoming_email_token,
        &guest.incoming_email_token,
    );
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserNotAuthorized));
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "You are not allowed to perform this action. If you believe this is in error, contact a staff member."
        )
    );
    // The token acts only for its owner's `From`.
    let issue = String::from_utf8(world.fixture("valid_new_issue.eml", 0))?.replace(
        &world.jake.incoming_email_token,
        &guest.incoming_email_token,
    );
    let outcome = world.receive(INCOMING, issue.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserNotFound), "{outcome:?}");
    let issue = issue
        .replace("<jake@adventuretime.ooo>", "<bmo@adventuretime.ooo>")
        .replace("Message-ID: <", "Message-ID: <bmo-");
    let outcome = world.receive(INCOMING, issue.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    Ok(())
});

both!(blank_subject_is_an_invalid_issue, |db| {
    let world = World::new(db).await?;
    let raw = String::from_utf8(world.fixture("valid_new_issue.eml", 0))?
        .replace("Subject: New Issue by email", "Subject: ");
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::InvalidIssue));
    assert_eq!(
        outcome.reason.as_deref(),
        Some("The issue could not be created for the following reasons:\n\n- Title can't be blank")
    );
    assert!(outcome.reject_notice_queued);
    Ok(())
});
