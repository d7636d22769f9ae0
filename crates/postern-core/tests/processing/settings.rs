//! The changes people make to projects and accounts (`projects`, `members`, `service_desk`,
//! `users`): the one place their rules live, whichever of the web UI, the API or the command
//! line asks.

use postern_core::ChangeError;
use postern_core::members::{self, Manager, MemberRefusal};
use postern_core::projects::{self, ProjectRefusal, ProjectRequest};
use postern_core::service_desk::{self, ServiceDeskChange, ServiceDeskRefusal};
use postern_store::{CustomEmailVerificationState, OutboxFilter, Role, Visibility};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World};

/// The refusal inside `result`, or a failure of the test.
fn refusal<T: std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<T, ChangeError<R>>,
) -> Result<R, BoxError> {
    match result {
        Err(ChangeError::Refused(refusal)) => Ok(refusal),
        other => Err(format!("expected a refusal, got {other:?}").into()),
    }
}

both!(members_keep_an_owner_and_never_the_support_bot, |db| {
    let world = World::new(db).await?;
    let owner = world.member("owner", "owner@example.com", None).await?;
    let finn = world.member("finn", "finn@example.com", None).await?;
    let project = &world.project;
    let mut tx = world.store().begin().await?;
    let bot = tx.ensure_support_bot().await?;
    let mut admin = finn.clone();
    admin.admin = true;

    assert_eq!(Manager::of(&world.jake, Some(Role::Developer)), None);
    assert_eq!(Manager::of(&finn, None), None);
    assert_eq!(
        Manager::of(&finn, Some(Role::Maintainer)),
        Some(Manager::Member(Role::Maintainer))
    );
    assert_eq!(Manager::of(&admin, None), Some(Manager::Administrator));

    members::set(
        &mut tx,
        project,
        Manager::Administrator,
        &owner,
        Role::Owner,
    )
    .await?;
    let maintainer = Manager::Member(Role::Maintainer);
    members::set(&mut tx, project, maintainer, &finn, Role::Developer).await?;
    for refused in [
        members::set(&mut tx, project, maintainer, &finn, Role::Owner).await,
        members::set(&mut tx, project, maintainer, &owner, Role::Developer).await,
        members::remove(&mut tx, project, maintainer, owner.id).await,
    ] {
        assert_eq!(refusal(refused)?, MemberRefusal::OwnerRightsNeeded);
    }
    let as_owner = Manager::Member(Role::Owner);
    let demoted = members::set(&mut tx, project, as_owner, &owner, Role::Maintainer).await;
    assert_eq!(refusal(demoted)?, MemberRefusal::LastOwner);
    let removed = members::remove(&mut tx, project, Manager::Administrator, owner.id).await;
    assert_eq!(refusal(removed)?, MemberRefusal::LastOwner);
    let bot_added = members::set(&mut tx, project, Manager::Administrator, &bot, Role::Guest).await;
    assert_eq!(refusal(bot_added)?, MemberRefusal::SupportBot);
    let not_member = members::remove(&mut tx, project, as_owner, bot.id).await;
    assert_eq!(refusal(not_member)?, MemberRefusal::NotMember);

    // A second owner lets the first one go.
    members::set(&mut tx, project, as_owner, &finn, Role::Owner).await?;
    members::remove(&mut tx, project, as_owner, owner.id).await?;
    let roles: Vec<(String, Role)> = tx
        .list_members(project.id)
        .await?
        .into_iter()
        .map(|m| (m.username, m.role))
        .collect();
    tx.commit().await?;
    assert_eq!(
        roles,
        [
            ("finn".to_owned(), Role::Owner),
            ("jake".to_owned(), Role::Developer)
        ]
    );
    Ok(())
});

both!(a_project_is_created_whole_or_not_at_all, |db| {
    let world = World::new(db).await?;
    let repositories = world.repositories();
    let request = |namespace, path, owner| ProjectRequest {
        namespace,
        path,
        name: "",
        visibility: Visibility::Internal,
        default_branch: "",
        owner,
    };
    let mut tx = world.store().begin().await?;
    let created = projects::create(
        &mut tx,
        &repositories,
        request("team", "desk", Some(&world.jake)),
    )
    .await?;
    let project = &created.project;
    assert_eq!(
        (project.full_path.as_str(), project.name.as_str()),
        ("team/desk", "desk")
    );
    assert_eq!(project.default_branch, "main");
    assert!(created.repository.join("HEAD").is_file(), "{created:?}");
    assert_eq!(
        created.repository,
        repositories.repository(project.id)?.path()
    );
    assert_eq!(
        tx.member_role(project.id, world.jake.id).await?,
        Some(Role::Owner)
    );
    assert_eq!(tx.protected_branches(project.id).await?, ["main"]);
    tx.commit().await?;

    let mut tx = world.store().begin().await?;
    let bot = tx.ensure_support_bot().await?;
    let cases = [
        (request("", "alone", None), "InvalidPath"),
        (request("team", ".desk", None), "InvalidPath"),
        (request("TEAM", "Desk", None), "Taken"),
        (request("team", "bot", Some(&bot)), "SupportBotOwner"),
    ];
    for (asked, expected) in cases {
        let refused = refusal(projects::create(&mut tx, &repositories, asked).await)?;
        assert!(format!("{refused:?}").starts_with(expected), "{refused:?}");
    }
    let branch = ProjectRequest {
        default_branch: "a..b",
        ..request("team", "other", None)
    };
    let refused = refusal(projects::create(&mut tx, &repositories, branch).await)?;
    assert_eq!(refused, ProjectRefusal::InvalidBranch("a..b".to_owned()));
    tx.rollback().await?;
    Ok(())
});

both!(
    a_new_custom_address_starts_its_verification_from_nothing,
    |db| {
        let world = World::new(db).await?;
        let config = world.config(INCOMING);
        let project = world
            .service_desk_project(Visibility::Private, |settings| {
                settings.custom_email = Some("support@acme.com".to_owned());
                settings.custom_email_enabled = true;
                settings.custom_email_verification_state =
                    Some(CustomEmailVerificationState::Finished);
            })
            .await?;
        let change = |address: &str| ServiceDeskChange {
            custom_email: Some(address.to_owned()),
            ..ServiceDeskChange::default()
        };

        let mut tx = world.store().begin().await?;
        // No one to mail the result to (the command line): reset, nothing sent.
        let quiet =
            service_desk::update(&mut tx, &config, &project, None, change("help@acme.com")).await?;
        let settings = &quiet.project.service_desk;
        assert_eq!(settings.custom_email.as_deref(), Some("help@acme.com"));
        assert!(!settings.custom_email_enabled);
        assert_eq!(settings.custom_email_verification_state, None);
        assert_eq!(quiet.verification_sent_to, None);
        let early = ServiceDeskChange {
            custom_email_enabled: Some(true),
            ..ServiceDeskChange::default()
        };
        let refused = service_desk::update(&mut tx, &config, &quiet.project, None, early).await;
        assert!(matches!(
            refusal(refused)?,
            ServiceDeskRefusal::CustomEmail(_)
        ));

        // A person asking: the verification starts at once.
        let asked = change("desk@acme.com");
        let started =
            service_desk::update(&mut tx, &config, &quiet.project, Some(&world.jake), asked)
                .await?;
        assert_eq!(
            started.verification_sent_to.as_deref(),
            Some("desk+verify@acme.com")
        );
        assert_eq!(
            started.project.service_desk.custom_email_verification_state,
            Some(CustomEmailVerificationState::Started)
        );
        let queued = tx.list_outbox(&OutboxFilter::default()).await?;
        assert!(
            queued
                .iter()
                .any(|m| m.recipients == ["desk+verify@acme.com"]),
            "{queued:?}"
        );

        let key = ServiceDeskChange {
            project_key: Some("Not A Key".to_owned()),
            ..ServiceDeskChange::default()
        };
        let refused = service_desk::update(&mut tx, &config, &started.project, None, key).await;
        assert!(matches!(refusal(refused)?, ServiceDeskRefusal::Invalid(_)));
        let nothing =
            service_desk::update(&mut tx, &config, &started.project, None, change("")).await?;
        let refused = service_desk::verify(&mut tx, &config, &nothing.project, &world.jake).await;
        assert_eq!(refusal(refused)?, ServiceDeskRefusal::NoCustomEmail);
        tx.rollback().await?;
        Ok(())
    }
);

both!(accounts_keep_their_rules_and_a_block_ends_sessions, |db| {
    use postern_core::users::{self, Account, UserRefusal};
    use postern_store::{Timestamp, UserState, WebSession};
    let world = World::new(db).await?;
    let account = |username, email| Account {
        username,
        name: "",
        email,
        email_verified: true,
        admin: false,
    };
    let mut tx = world.store().begin().await?;
    let finn = users::create(&mut tx, account(" finn ", "finn@example.com")).await?;
    assert_eq!(
        (finn.username.as_str(), finn.name.as_str()),
        ("finn", "finn")
    );
    let cases = [
        (
            account("support-bot", "bot@example.com"),
            UserRefusal::Reserved,
        ),
        (account("", "x@example.com"), UserRefusal::Missing),
        (account("x", "no-at"), UserRefusal::InvalidEmail),
    ];
    for (asked, expected) in cases {
        assert_eq!(refusal(users::create(&mut tx, asked).await)?, expected);
    }
    let refused = users::set_state(&mut tx, Some(&finn), finn.id, UserState::Blocked).await;
    assert_eq!(refusal(refused)?, UserRefusal::BlockingYourself);
    let refused = users::remove_email(&mut tx, finn.id, "finn@example.com").await;
    assert_eq!(refusal(refused)?, UserRefusal::NotRemovable);

    let now = Timestamp::now();
    let session = WebSession {
        id_hash: "ab".repeat(32),
        user_id: finn.id,
        csrf_token: "csrf".to_owned(),
        created_at: now,
        expires_at: Timestamp(now.0 + 3600),
    };
    tx.create_session(&session).await?;
    users::set_state(&mut tx, None, finn.id, UserState::Blocked).await?;
    assert_eq!(tx.session(&session.id_hash, now).await?, None);
    let blocked = tx.user_by_id(finn.id).await?.ok_or("no finn")?;
    assert!(blocked.is_blocked());
    let missing = users::set_state(&mut tx, None, 999_999, UserState::Active).await;
    assert_eq!(refusal(missing)?, UserRefusal::NotFound);
    tx.rollback().await?;
    Ok(())
});
