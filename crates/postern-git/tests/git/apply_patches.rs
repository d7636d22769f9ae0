//! `Repository::apply_patches` on the real patches of GitLab's incoming-email fixtures, applied
//! with the real git onto a repository seeded with the preimages the patches expect.

use postern_git::{MAX_PATCHES_SIZE, Patch, PatchError, could_not_apply_patches};

use crate::common::{README, file_at, fixture_patches, git, gitlab_test_repository, snapshot};

const APPLIED_README: &str =
    "Sample repo for testing gitlab features\n\nThis was applied in a patch!\n";
const FEATURE_RB: &str = "class Feature\n  def bar\n    puts 'foo'\n  end\nend\n";

#[test]
fn valid_patch_creates_the_branch_from_the_target() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let patches = fixture_patches("valid_merge_request_with_patch.eml");
    assert_eq!(patches.len(), 1, "the .png attachment is not a patch");
    let master = repo.head_of("master").unwrap().unwrap();

    let commits = repo
        .apply_patches("new-branch-with-a-patch", "master", &patches)
        .unwrap();

    assert_eq!(commits.len(), 1);
    let commit = &commits[0];
    assert_eq!(commit.title, "A commit from a patch");
    assert_eq!(commit.message, "A commit from a patch\n");
    assert_eq!(commit.author_name, "Patch user");
    assert_eq!(commit.author_email, "patchuser@gitlab.org");
    // Date: Thu, 18 Oct 2018 13:40:35 +0200
    assert_eq!(commit.authored_at, 1_539_862_835);
    assert_eq!(
        repo.head_of("new-branch-with-a-patch").unwrap().as_deref(),
        Some(commit.sha.as_str())
    );
    assert_eq!(
        git(repo.path(), &["rev-parse", &format!("{}^", commit.sha)]).trim(),
        master
    );
    assert_eq!(
        git(
            repo.path(),
            &[
                "log",
                "-1",
                "--format=%cn <%ce>|%ad",
                "--date=raw",
                &commit.sha
            ]
        )
        .trim(),
        "postern test <postern@example.com>|1539862835 +0200"
    );
    assert_eq!(
        file_at(repo.path(), "new-branch-with-a-patch", "README"),
        APPLIED_README
    );
    assert_eq!(
        repo.commits_between("master", "new-branch-with-a-patch")
            .unwrap(),
        commits
    );
    assert!(
        repo.diff("master", "new-branch-with-a-patch")
            .unwrap()
            .contains("\n+This was applied in a patch!\n")
    );
    assert_eq!(
        repo.head_of("master").unwrap().as_deref(),
        Some(master.as_str()),
        "target untouched"
    );
}

#[test]
fn multiple_patches_are_applied_in_file_name_order() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let patches = fixture_patches("merge_request_multiple_patches.eml");
    let names: Vec<&str> = patches.iter().map(|p| p.filename.as_str()).collect();
    assert_eq!(
        names,
        [
            "0001-A-commit-from-a-patch.patch",
            "0002-This-does-not-apply-to-the-feature-branch.patch"
        ]
    );

    let commits = repo
        .apply_patches("new-branch-with-a-patch", "master", &patches)
        .unwrap();

    let titles: Vec<&str> = commits.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "A commit from a patch",
            "This does not apply to the `feature` branch"
        ]
    );
    assert_eq!(commits[1].authored_at, 1_540_199_148); // Mon, 22 Oct 2018 11:05:48 +0200
    assert_eq!(
        file_at(
            repo.path(),
            "new-branch-with-a-patch",
            "files/ruby/feature.rb"
        ),
        FEATURE_RB
    );
    assert_eq!(
        file_at(repo.path(), "new-branch-with-a-patch", "README"),
        APPLIED_README
    );
}

#[test]
fn patches_go_on_top_of_an_existing_source_branch() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let first = repo
        .apply_patches(
            "topic",
            "master",
            &fixture_patches("valid_merge_request_with_patch.eml"),
        )
        .unwrap();
    let second_patch: Vec<Patch> = fixture_patches("merge_request_multiple_patches.eml")
        .into_iter()
        .filter(|p| p.filename.starts_with("0002"))
        .collect();

    // The target is ignored once the source branch exists (`with-codeowners` would not matter).
    let second = repo
        .apply_patches("topic", "with-codeowners", &second_patch)
        .unwrap();

    assert_eq!(second.len(), 1);
    assert_eq!(
        git(repo.path(), &["rev-parse", &format!("{}^", second[0].sha)]).trim(),
        first[0].sha
    );
    assert_eq!(repo.commits_between("master", "topic").unwrap().len(), 2);
}

#[test]
fn target_branch_from_quick_action_is_the_base() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let patches = fixture_patches("merge_request_with_patch_and_target_branch.eml");
    let base = repo.head_of("with-codeowners").unwrap().unwrap();

    let commits = repo
        .apply_patches("new-branch-with-a-patch", "with-codeowners", &patches)
        .unwrap();

    assert_eq!(commits.len(), 1);
    assert_eq!(
        git(repo.path(), &["rev-parse", &format!("{}^", commits[0].sha)]).trim(),
        base
    );
    assert_eq!(
        file_at(repo.path(), "new-branch-with-a-patch", "CODEOWNERS"),
        "* @admin\n"
    );
}

#[test]
fn conflicting_patch_fails_and_changes_nothing() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let patches = fixture_patches("merge_request_with_conflicting_patch.eml");
    let before = snapshot(repo.path());

    let error = repo
        .apply_patches("feature", "master", &patches)
        .unwrap_err();

    let subject = "Patch failed at 0001 This does not apply to the `feature` branch";
    assert!(
        matches!(error, PatchError::DoesNotApply { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), subject);
    assert_eq!(
        could_not_apply_patches("feature", &error),
        format!("Could not apply patches to feature:\n9:{subject}\n.")
    );
    assert_eq!(snapshot(repo.path()), before);
    assert!(!repo.path().join("postern-worktrees").exists());
}

#[test]
fn conflict_on_a_new_branch_creates_no_branch() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let before = snapshot(repo.path());

    // The first patch applies to `feature`, the second does not: all or nothing.
    let patches = fixture_patches("merge_request_multiple_patches.eml");
    let error = repo
        .apply_patches("new-branch-with-a-patch", "feature", &patches)
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "Patch failed at 0002 This does not apply to the `feature` branch"
    );
    assert!(!repo.branch_exists("new-branch-with-a-patch").unwrap());
    assert_eq!(snapshot(repo.path()), before);
}

#[test]
fn too_big_patch_sets_are_refused_before_anything_else() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let before = snapshot(repo.path());
    let half = |name: &str| Patch {
        filename: name.into(),
        content: vec![b'x'; MAX_PATCHES_SIZE / 2],
    };

    let error = repo
        .apply_patches("bad name", "missing", &[half("1.patch"), half("2.patch")])
        .unwrap_err();

    assert!(
        matches!(error, PatchError::TooBig { size } if size == MAX_PATCHES_SIZE),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "Patches are too big");
    assert_eq!(
        could_not_apply_patches("b", &error),
        "Could not apply patches to b:\nPatches are too big"
    );
    assert_eq!(snapshot(repo.path()), before);
}

#[test]
fn just_under_the_limit_reaches_git_am() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let before = snapshot(repo.path());
    let garbage = Patch {
        filename: "0001-x.patch".into(),
        content: vec![b'x'; MAX_PATCHES_SIZE - 1],
    };

    let error = repo
        .apply_patches("new-branch", "master", &[garbage])
        .unwrap_err();

    assert!(matches!(error, PatchError::AmFailed { .. }), "{error:?}");
    assert!(
        error
            .gitlab_message()
            .starts_with("13:apply patch: exit status 128, stderr: \""),
        "{error}"
    );
    assert_eq!(snapshot(repo.path()), before);
}

#[test]
fn invalid_source_branch_names_are_refused() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let patches = fixture_patches("valid_merge_request_with_patch.eml");
    for name in ["a..b", "two words", "", "HEAD", "-x", "refs/heads/x"] {
        let error = repo.apply_patches(name, "master", &patches).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "Something went wrong when we tried to create '{name}' for you: Branch name is invalid"
            )
        );
    }
    assert_eq!(
        repo.branches().unwrap(),
        ["feature", "master", "with-codeowners"]
    );
}

#[test]
fn missing_target_branch_is_gitlabs_create_branch_error() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    let before = snapshot(repo.path());
    let patches = fixture_patches("valid_merge_request_with_patch.eml");
    for target in ["does-not-exist", "bad..name"] {
        let error = repo
            .apply_patches("new-branch", target, &patches)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("Failed to create branch 'new-branch': invalid reference name '{target}'")
        );
    }
    assert_eq!(snapshot(repo.path()), before);
}

#[test]
fn no_patches_change_nothing() {
    let fixture = gitlab_test_repository();
    let repo = &fixture.repository;
    assert_eq!(repo.apply_patches("new-branch", "master", &[]).unwrap(), []);
    assert!(!repo.branch_exists("new-branch").unwrap());
}

#[test]
fn seed_readme_is_gitlab_tests_blob() {
    // The patches' `index 3742e48..` lines name this blob; --3way relies on it.
    let fixture = gitlab_test_repository();
    let blob = git(fixture.repository.path(), &["rev-parse", "master:README"]);
    assert!(blob.starts_with("3742e48"), "{blob}");
    assert_eq!(README.len(), 40);
}
