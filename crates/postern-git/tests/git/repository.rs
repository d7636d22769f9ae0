//! Creating repositories, seeding them with `commit_files`, and reading branches, commits and
//! diffs back, against the real git.

use std::os::unix::fs::PermissionsExt;

use postern_git::{GitError, Identity, Repositories};

use crate::common;
use crate::common::{author, empty_repository, file_at, git, snapshot};

#[test]
fn repository_is_created_bare_with_the_default_branch() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    assert_eq!(repo.path(), fixture.dir.path().join("repositories/7.git"));
    assert_eq!(
        git(repo.path(), &["rev-parse", "--is-bare-repository"]).trim(),
        "true"
    );
    assert_eq!(
        git(repo.path(), &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/master"
    );
    assert_eq!(repo.branches().unwrap(), Vec::<String>::new());
    assert_eq!(repo.head_of("master").unwrap(), None);

    // Asking again opens the same repository; nothing else is left in the root.
    let again = fixture.repositories.repository(7).unwrap();
    assert_eq!(again.path(), repo.path());
    let entries: Vec<_> = std::fs::read_dir(fixture.dir.path().join("repositories"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, ["7.git"]);
}

#[test]
fn project_ids_must_be_positive() {
    let fixture = empty_repository();
    for id in [0, -1] {
        assert!(
            matches!(fixture.repositories.repository(id), Err(GitError::InvalidProjectId(i)) if i == id)
        );
    }
}

#[test]
fn concurrent_creation_yields_one_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repositories = Repositories::new(dir.path().join("repositories"));
    let paths: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| repositories.repository(3).unwrap()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().path().to_owned())
            .collect()
    });
    assert!(paths.iter().all(|p| p == &paths[0]));
    let entries = std::fs::read_dir(dir.path().join("repositories"))
        .unwrap()
        .count();
    assert_eq!(entries, 1, "no staging directory left behind");
    assert_eq!(
        git(&paths[0], &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
}

#[test]
fn commit_files_creates_and_extends_branches() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    let first = repo
        .commit_files(
            "master",
            &[("README", b"one\n".as_slice())],
            "First\n\nBody.",
            &author(),
        )
        .unwrap();
    let second = repo
        .commit_files(
            "master",
            &[
                ("docs/guide.md", b"guide\n".as_slice()),
                ("README", b"two\n".as_slice()),
            ],
            "Second",
            &Identity::new("Other Author", "other@example.com"),
        )
        .unwrap();

    assert_eq!(
        repo.head_of("master").unwrap().as_deref(),
        Some(second.as_str())
    );
    assert_eq!(git(repo.path(), &["rev-parse", "master^"]).trim(), first);
    assert_eq!(file_at(repo.path(), "master", "README"), "two\n");
    assert_eq!(file_at(repo.path(), "master", "docs/guide.md"), "guide\n");
    assert_eq!(file_at(repo.path(), "master^", "README"), "one\n");
    assert_eq!(
        git(
            repo.path(),
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>", "master"]
        )
        .trim(),
        "Other Author <other@example.com>|postern test <postern@example.com>"
    );

    let commits = repo.commits_between(&first, "master").unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].sha, second);
    assert_eq!(commits[0].title, "Second");
    let all = repo
        .commits_between(&format!("{first}~0"), "master")
        .unwrap();
    assert_eq!(all, commits);

    let root = git(repo.path(), &["log", "--format=%B", "-1", &first]);
    assert_eq!(root, "First\n\nBody.\n\n");
    assert!(repo.branch_exists("master").unwrap());
    assert!(!repo.branch_exists("other").unwrap());
}

#[test]
fn branches_are_listed_sorted() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    for branch in ["zeta", "alpha", "feature/nested"] {
        repo.commit_files(branch, &[("f", b"x".as_slice())], "c", &author())
            .unwrap();
    }
    assert_eq!(
        repo.branches().unwrap(),
        ["alpha", "feature/nested", "zeta"]
    );
}

#[test]
fn bad_inputs_are_refused_without_changes() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    repo.commit_files("master", &[("README", b"x".as_slice())], "c", &author())
        .unwrap();
    let before = snapshot(repo.path());

    for branch in ["a..b", "with space", ""] {
        let result = repo.commit_files(branch, &[("f", b"x".as_slice())], "c", &author());
        assert!(
            matches!(result, Err(GitError::InvalidBranchName { .. })),
            "{branch:?}: {result:?}"
        );
        assert!(matches!(
            repo.head_of(branch),
            Err(GitError::InvalidBranchName { .. })
        ));
    }
    for path in [
        "/abs",
        "",
        "../up",
        "a/../../up",
        ".git/config",
        "a/.GIT/x",
        "a//b",
        "a/",
        "./a",
        "nul\0",
    ] {
        let result = repo.commit_files("master", &[(path, b"x".as_slice())], "c", &author());
        assert!(
            matches!(result, Err(GitError::InvalidPath { .. })),
            "{path:?}: {result:?}"
        );
    }
    for revision in ["--output=/tmp/x", "", "a..b"] {
        assert!(matches!(
            repo.commits_between(revision, "master"),
            Err(GitError::InvalidRevision { .. })
        ));
        assert!(matches!(
            repo.diff("master", revision),
            Err(GitError::InvalidRevision { .. })
        ));
    }
    assert_eq!(snapshot(repo.path()), before);
}

#[test]
fn diff_is_against_the_merge_base() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    let base = repo
        .commit_files(
            "master",
            &[("README", b"base\n".as_slice())],
            "base",
            &author(),
        )
        .unwrap();
    git(repo.path(), &["update-ref", "refs/heads/topic", &base]);
    repo.commit_files(
        "topic",
        &[("README", b"topic\n".as_slice())],
        "topic",
        &author(),
    )
    .unwrap();
    // master moves on; its change must not show up in the topic's diff.
    repo.commit_files(
        "master",
        &[("OTHER", b"other\n".as_slice())],
        "other",
        &author(),
    )
    .unwrap();

    let diff = repo.diff("master", "topic").unwrap();
    assert!(diff.starts_with("diff --git a/README b/README\n"), "{diff}");
    assert!(diff.contains("\n-base\n+topic\n"), "{diff}");
    assert!(!diff.contains("OTHER"), "{diff}");
}

#[test]
fn repository_hooks_never_run() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    let marker = fixture.dir.path().join("hook-ran");
    // Hooks that would refuse every ref update and every patch, and leave a trace.
    for hook in [
        "reference-transaction",
        "pre-applypatch",
        "applypatch-msg",
        "post-checkout",
    ] {
        let path = repo.path().join("hooks").join(hook);
        std::fs::write(
            &path,
            format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    repo.commit_files("master", &[("README", common::README)], "seed", &author())
        .unwrap();
    let patches = common::fixture_patches("valid_merge_request_with_patch.eml");
    repo.apply_patches("topic", "master", &patches).unwrap();

    assert!(!marker.exists(), "a repository hook ran");
}

#[test]
fn capped_diff_stops_git_and_keeps_whole_lines() {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    repo.commit_files(
        "master",
        &[("README", b"base\n".as_slice())],
        "base",
        &author(),
    )
    .unwrap();
    let base = repo.head_of("master").unwrap().unwrap();
    git(repo.path(), &["update-ref", "refs/heads/topic", &base]);
    // 8 MiB of new lines: far more than the cap below, and than a page should carry.
    let line = "a line of a large file, long enough to count\n";
    let big = line.repeat(8 * 1024 * 1024 / line.len());
    repo.commit_files("topic", &[("BIG", big.as_bytes())], "big", &author())
        .unwrap();

    let cap = 64 * 1024;
    let diff = repo.diff_capped("master", "topic", cap).unwrap();
    assert!(diff.truncated);
    assert!(diff.text.len() <= cap, "{}", diff.text.len());
    assert!(
        diff.text.len() > cap - line.len() - 1,
        "{}",
        diff.text.len()
    );
    assert!(diff.text.starts_with("diff --git a/BIG b/BIG\n"));
    assert!(diff.text.ends_with(&format!("+{line}")), "whole lines only");

    let small = repo.diff_capped("master", "topic", big.len() * 2).unwrap();
    assert!(!small.truncated);
    assert_eq!(small.text, repo.diff("master", "topic").unwrap());
}

#[test]
fn prepared_patches_move_no_ref_until_published() {
    let fixture = common::gitlab_test_repository();
    let repo = &fixture.repository;
    let before = common::snapshot(repo.path());
    let patches = common::fixture_patches("valid_merge_request_with_patch.eml");

    let prepared = repo
        .prepare_patches("topic", "master", &patches)
        .unwrap()
        .unwrap();
    assert_eq!(
        common::snapshot(repo.path()),
        before,
        "nothing published yet"
    );
    assert_eq!(prepared.old_tip(), None);
    assert_eq!(prepared.commits().len(), 1);
    assert_eq!(prepared.commits()[0].sha, prepared.new_tip());

    repo.publish_patches(&prepared).unwrap();
    assert_eq!(
        repo.head_of("topic").unwrap().as_deref(),
        Some(prepared.new_tip())
    );
    // Publishing again: the branch is no longer where it was when prepared.
    let again = repo.publish_patches(&prepared).unwrap_err();
    assert!(
        matches!(again, postern_git::PatchError::BranchMoved { .. }),
        "{again:?}"
    );
    assert!(again.is_permanent());
}

#[test]
fn unpublishing_restores_the_branch_only_if_unchanged() {
    let fixture = common::gitlab_test_repository();
    let repo = &fixture.repository;
    let before = common::snapshot(repo.path());
    let patches = common::fixture_patches("valid_merge_request_with_patch.eml");
    let prepared = repo
        .prepare_patches("topic", "master", &patches)
        .unwrap()
        .unwrap();
    repo.publish_patches(&prepared).unwrap();
    repo.unpublish_patches(&prepared).unwrap();
    assert_eq!(
        common::snapshot(repo.path()),
        before,
        "new branch deleted again"
    );

    // Someone else moved the branch after publishing: unpublishing leaves their value.
    repo.publish_patches(&prepared).unwrap();
    let master = repo.head_of("master").unwrap().unwrap();
    repo.reset_branch("topic", Some(&master)).unwrap();
    assert!(repo.unpublish_patches(&prepared).is_err());
    assert_eq!(repo.head_of("topic").unwrap(), Some(master));
}
