//! New merge request by email, with real git (spec §6.4).

use postern_git::Identity;
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World, renamed};

const README: &[u8] = b"Sample repo for testing gitlab features\n";

/// The branches GitLab's fixtures expect: `master` with the README the patches change,
/// `feature` (one commit "Feature added", adding the file the conflicting patch creates), and
/// `with-codeowners`.
fn seed(world: &World) -> Result<postern_git::Repository, BoxError> {
    let repository = world.repositories().repository(world.project.id)?;
    let author = Identity::new("Dmitriy Zaporozhets", "dmitriy.zaporozhets@gmail.com");
    repository.commit_files("master", &[("README", README)], "Initial commit", &author)?;
    let master = repository.head_of("master")?.ok_or("master exists")?;
    repository.reset_branch("feature", Some(&master))?;
    repository.reset_branch("with-codeowners", Some(&master))?;
    repository.commit_files(
        "feature",
        &[("files/ruby/feature.rb", b"class Feature\nend\n")],
        "Feature added\n\nSigned-off-by: Dmitriy Zaporozhets <dmitriy.zaporozhets@gmail.com>\n",
        &author,
    )?;
    repository.commit_files(
        "with-codeowners",
        &[("CODEOWNERS", b"* @admin\n")],
        "Add CODEOWNERS",
        &author,
    )?;
    Ok(repository)
}

async fn merge_request(world: &World, iid: i64) -> Result<postern_store::MergeRequest, BoxError> {
    let mut tx = world.store().begin().await?;
    let mr = tx
        .merge_request_by_iid(world.project.id, iid)
        .await?
        .ok_or("merge request exists")?;
    tx.commit().await?;
    Ok(mr)
}

both!(existing_branch_becomes_a_merge_request, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(INCOMING, &world.fixture("valid_new_merge_request.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, "processed", "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.source_branch, "feature");
    assert_eq!(mr.target_branch, "master");
    assert_eq!(mr.title, "Feature added");
    assert_eq!(mr.description, "Merge request description");
    assert_eq!(mr.author_id, world.jake.id);
    assert_eq!(mr.commits.len(), 1);

    let legacy_raw = renamed(
        &world.fixture("valid_new_merge_request_legacy.eml", 0),
        "legacy",
    );
    let legacy = world.receive(INCOMING, &legacy_raw).await?;
    assert_eq!(legacy.outcome, "processed", "{legacy:?}");
    Ok(())
});

both!(description_falls_back_to_the_commit_body, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_new_merge_request_no_description.eml", 0),
        )
        .await?;
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(
        mr.description,
        "Signed-off-by: Dmitriy Zaporozhets <dmitriy.zaporozhets@gmail.com>"
    );
    Ok(())
});

both!(blank_subject_is_an_invalid_merge_request, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_new_merge_request_no_subject.eml", 0),
        )
        .await?;
    assert_eq!(outcome.error.as_deref(), Some("invalid_merge_request"));
    Ok(())
});

both!(one_patch_creates_the_branch_and_its_commit, |db| {
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_merge_request_with_patch.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, "processed", "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.source_branch, "new-branch-with-a-patch");
    assert_eq!(mr.commits.len(), 1);
    assert_eq!(mr.commits[0].title, "A commit from a patch");
    assert!(!mr.description.contains("0001-A-commit-from-a-patch.patch"));
    let tip = repository
        .head_of("new-branch-with-a-patch")?
        .ok_or("branch")?;
    assert_eq!(tip, mr.commits[0].sha);
    Ok(())
});

both!(several_patches_apply_in_file_name_order, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("merge_request_multiple_patches.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, "processed", "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    let titles: Vec<_> = mr.commits.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "A commit from a patch",
            "This does not apply to the `feature` branch"
        ]
    );
    Ok(())
});

both!(
    conflicting_patch_is_refused_and_leaves_the_repository_alone,
    |db| {
        let world = World::new(db).await?;
        let repository = seed(&world)?;
        let before = repository.branches()?;
        let feature_before = repository.head_of("feature")?;
        let outcome = world
            .receive(
                INCOMING,
                &world.fixture("merge_request_with_conflicting_patch.eml", 0),
            )
            .await?;
        assert_eq!(outcome.error.as_deref(), Some("invalid_attachment"));
        let reason = outcome.reason.unwrap_or_default();
        assert!(
            reason.starts_with("Could not apply patches to feature:\n"),
            "{reason}"
        );
        assert_eq!(repository.branches()?, before);
        assert_eq!(repository.head_of("feature")?, feature_before);
        Ok(())
    }
);

both!(target_branch_quick_action_sets_the_target, |db| {
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("merge_request_with_patch_and_target_branch.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, "processed", "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.target_branch, "with-codeowners");
    assert!(
        !mr.description.contains("/target_branch"),
        "{}",
        mr.description
    );
    // The new branch starts from the target branch.
    let base = repository.head_of("with-codeowners")?.ok_or("target")?;
    let commits = repository.commits_between(&base, "new-branch-with-a-patch")?;
    assert_eq!(commits.len(), 1);
    Ok(())
});
