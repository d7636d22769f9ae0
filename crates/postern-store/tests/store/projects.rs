//! Projects, Service Desk settings and members.

use postern_store::{
    CustomEmailVerificationState, ProjectUpdate, Role, ServiceDeskSettings, StoreError, Timestamp,
    Visibility, full_path_slug,
};

use crate::support::{both, project, user};

both!(create_and_find_project, |db| {
    let mut tx = db.tx().await;
    let p = tx
        .create_project(postern_store::NewProject {
            namespace_path: "GitLab-Org/".to_owned(),
            path: "GitLab_CE".to_owned(),
            name: "GitLab CE".to_owned(),
            visibility: Visibility::Internal,
            default_branch: "master".to_owned(),
        })
        .await?;
    assert_eq!(p.full_path, "GitLab-Org/GitLab_CE");
    assert_eq!(p.full_path_slug, "gitlab-org-gitlab-ce");
    assert_eq!(p.full_path_slug, full_path_slug(&p.full_path));
    assert_eq!(p.service_desk, ServiceDeskSettings::default());
    assert!(p.service_desk.tickets_confidential_by_default);

    let by_path = tx.project_by_full_path("gitlab-org/gitlab_ce").await?;
    assert_eq!(by_path.as_ref(), Some(&p));
    assert_eq!(tx.project_by_id(p.id).await?.as_ref(), Some(&p));
    assert_eq!(tx.project_by_full_path("gitlab-org").await?, None);

    let err = project(&mut tx, "x").await.and(project(&mut tx, "X").await);
    assert!(err.expect_err("same path twice").is_unique_violation());
    Ok(())
});

both!(bad_project_path_is_invalid, |db| {
    let mut tx = db.tx().await;
    for bad in ["", "a/b"] {
        let err = project(&mut tx, bad).await.expect_err("invalid path");
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    Ok(())
});

both!(update_project_fields, |db| {
    let mut tx = db.tx().await;
    let p = project(&mut tx, "proj").await?;
    let updated = tx
        .update_project(
            p.id,
            ProjectUpdate {
                archived: Some(true),
                visibility: Some(Visibility::Public),
                ..ProjectUpdate::default()
            },
        )
        .await?;
    assert!(updated.archived);
    assert_eq!(updated.visibility, Visibility::Public);
    assert_eq!(updated.name, "proj");
    let err = tx.update_project(9999, ProjectUpdate::default()).await;
    assert!(matches!(err, Err(StoreError::NotFound(_))));
    assert_eq!(tx.list_projects().await?.len(), 1);
    tx.commit().await
});

both!(service_desk_lookups, |db| {
    let mut tx = db.tx().await;
    let admin = user(&mut tx, "admin").await?;
    let p = project(&mut tx, "desk").await?;
    let settings = ServiceDeskSettings {
        enabled: true,
        project_key: Some("support_1".to_owned()),
        custom_email: Some("Support@Acme.com".to_owned()),
        custom_email_verification_state: Some(CustomEmailVerificationState::Started),
        custom_email_verification_token: Some("abcdefghijkl".to_owned()),
        custom_email_verification_triggered_at: Some(Timestamp(1_700_000_000)),
        custom_email_verification_triggerer_id: Some(admin.id),
        tickets_confidential_by_default: false,
        reopen_issue_on_external_participant_note: true,
        add_external_participants_from_cc: true,
        issue_template_key: Some("bug".to_owned()),
        issue_template_content: Some("## Steps".to_owned()),
        ..ServiceDeskSettings::default()
    };
    let updated = tx.update_service_desk(p.id, &settings).await?;
    assert_eq!(updated.service_desk, settings);

    let found = tx
        .project_by_service_desk_key("group-desk", "support_1")
        .await?;
    assert_eq!(found.map(|p| p.id), Some(p.id));
    assert_eq!(
        tx.project_by_service_desk_key("other", "support_1").await?,
        None
    );
    assert_eq!(
        tx.project_by_service_desk_key("group-desk", "support")
            .await?,
        None
    );

    let by_email = tx.projects_by_custom_email("support@acme.COM").await?;
    assert_eq!(
        by_email.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p.id]
    );
    assert!(
        tx.projects_by_custom_email("support+x@acme.com")
            .await?
            .is_empty()
    );

    // Another slug may reuse the key (same-slug reuse: `project_key_unique_per_slug`).
    let other = project(&mut tx, "other").await?;
    let key_only = ServiceDeskSettings {
        project_key: Some("support_1".to_owned()),
        ..ServiceDeskSettings::default()
    };
    tx.update_service_desk(other.id, &key_only).await?;

    for bad in ["Support", "a-b", ""] {
        let s = ServiceDeskSettings {
            project_key: Some(bad.to_owned()),
            ..ServiceDeskSettings::default()
        };
        let err = tx.update_service_desk(p.id, &s).await.expect_err("bad key");
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    tx.commit().await
});

both!(project_key_unique_per_slug, |db| {
    let mut tx = db.tx().await;
    // `group/a-b` and `group/a_b` share the slug `group-a-b`.
    let one = project(&mut tx, "a-b").await?;
    let two = project(&mut tx, "a_b").await?;
    assert_eq!(one.full_path_slug, two.full_path_slug);
    let key = ServiceDeskSettings {
        project_key: Some("help".to_owned()),
        ..ServiceDeskSettings::default()
    };
    tx.update_service_desk(one.id, &key).await?;
    let err = tx
        .update_service_desk(two.id, &key)
        .await
        .expect_err("same slug and key");
    assert!(err.is_unique_violation(), "{err:?}");
    Ok(())
});

both!(members_and_roles, |db| {
    let mut tx = db.tx().await;
    let p = project(&mut tx, "team").await?;
    let a = user(&mut tx, "anna").await?;
    let b = user(&mut tx, "ben").await?;
    assert_eq!(tx.member_role(p.id, a.id).await?, None);
    tx.add_member(p.id, a.id, Role::Guest).await?;
    tx.add_member(p.id, b.id, Role::Developer).await?;
    tx.add_member(p.id, a.id, Role::Maintainer).await?;
    assert_eq!(tx.member_role(p.id, a.id).await?, Some(Role::Maintainer));
    assert!(tx.member_role(p.id, b.id).await? >= Some(Role::Reporter));

    let members = tx.list_members(p.id).await?;
    let names: Vec<_> = members
        .iter()
        .map(|m| (m.username.as_str(), m.role))
        .collect();
    assert_eq!(
        names,
        vec![("anna", Role::Maintainer), ("ben", Role::Developer)]
    );

    assert!(tx.remove_member(p.id, b.id).await?);
    assert!(!tx.remove_member(p.id, b.id).await?);
    assert_eq!(tx.member_role(p.id, b.id).await?, None);
    tx.commit().await
});

both!(custom_email_belongs_to_one_project, |db| {
    let mut tx = db.tx().await;
    let acme = project(&mut tx, "acme").await?;
    let evil = project(&mut tx, "evil").await?;
    let with = |address: &str| ServiceDeskSettings {
        custom_email: Some(address.to_owned()),
        ..ServiceDeskSettings::default()
    };
    tx.update_service_desk(acme.id, &with("support@acme.com"))
        .await?;
    // Compared case-folded: another spelling is the same address.
    let err = tx
        .update_service_desk(evil.id, &with("Support@ACME.com"))
        .await
        .expect_err("taken");
    assert!(err.is_unique_violation(), "{err:?}");
    Ok(())
});

both!(default_branch_starts_protected, |db| {
    let mut tx = db.tx().await;
    let p = project(&mut tx, "branches").await?;
    assert_eq!(tx.protected_branches(p.id).await?, vec!["main".to_owned()]);
    assert!(tx.is_protected_branch(p.id, "main").await?);
    assert!(tx.protect_branch(p.id, "release").await?);
    assert!(
        !tx.protect_branch(p.id, "release").await?,
        "already protected"
    );
    assert!(tx.unprotect_branch(p.id, "main").await?);
    assert!(
        !tx.unprotect_branch(p.id, "main").await?,
        "no longer protected"
    );
    assert_eq!(
        tx.protected_branches(p.id).await?,
        vec!["release".to_owned()]
    );
    assert!(!tx.is_protected_branch(p.id, "main").await?);
    tx.commit().await
});
