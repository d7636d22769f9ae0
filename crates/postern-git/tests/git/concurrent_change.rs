//! A branch changed by someone else while patches are being applied is not overwritten.
//!
//! The "someone else" is a wrapper around the real git that creates the branch just before
//! postern's `update-ref` runs.

use postern_git::{PatchError, Repositories};

use crate::common::{fixture_patches, git, gitlab_test_repository, write_script};

#[test]
fn concurrent_branch_creation_is_not_overwritten() {
    let fixture = gitlab_test_repository();
    let repo_path = fixture.repository.path();
    let feature = fixture.repository.head_of("feature").unwrap().unwrap();
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = fixture.dir.path().join("racing-git");
    let script = format!(
        "#!/bin/sh\n\
         case \" $* \" in *\" update-ref refs/heads/new-branch-with-a-patch \"*)\n\
         \x20 {git} --git-dir '{repo}' update-ref refs/heads/new-branch-with-a-patch {feature} ;;\n\
         esac\n\
         exec {git} \"$@\"\n",
        git = real_git.trim(),
        repo = repo_path.display(),
    );
    write_script(&wrapper, &script);
    let racing = Repositories::new(fixture.dir.path().join("repositories"))
        .with_default_branch("master")
        .with_git_binary(&wrapper)
        .repository(7)
        .unwrap();

    let patches = fixture_patches("valid_merge_request_with_patch.eml");
    let error = racing
        .apply_patches("new-branch-with-a-patch", "master", &patches)
        .unwrap_err();

    assert!(matches!(error, PatchError::BranchMoved { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Could not update refs/heads/new-branch-with-a-patch. Please refresh and try again."
    );
    let tip = racing.head_of("new-branch-with-a-patch").unwrap();
    assert_eq!(
        tip.as_deref(),
        Some(feature.as_str()),
        "the other writer's value stays"
    );
    let worktrees = git(repo_path, &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
}
