//! The patch reader: `.patch` attachments of a merge request by email, as
//! `Repository::apply_patches` takes them (size check, then `git am` in a throw-away worktree),
//! on a real repository. It must return an error or commits, never panic, and leave no worktree
//! behind. Slow per input (it runs git); its value is in the checks before git and the handling
//! of whatever git answers.
//!
//! When postern-git gains a pure patch scanner (declared sizes of binary hunks, line counts),
//! call it here first: it runs on every input, git only on what it accepts.
#![no_main]

#[path = "common/patches.rs"]
mod patches;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use postern_git::{Identity, Repositories, Repository};

struct Fixture {
    repository: Repository,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    // libFuzzer leaves by `exit`, which drops no static: the repository goes under fuzz/target
    // (not kept), one per process, replaced at the next start, rather than leaking in /tmp.
    let dir = std::path::PathBuf::from(format!("target/patch-reader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let repositories = Repositories::new(dir.join("repositories"))
        .with_committer(Identity::new("postern fuzz", "fuzz@example.com"))
        .with_default_branch("master");
    let repository = repositories.repository(1).expect("a repository");
    repository
        .commit_files(
            "master",
            &[(
                "README",
                b"Sample repo for testing gitlab features\n".as_slice(),
            )],
            "Initial commit",
            &Identity::new("Seed Author", "seed@example.com"),
        )
        .expect("a first commit");
    Fixture { repository }
});

fuzz_target!(|data: &[u8]| {
    let repository = &FIXTURE.repository;
    let patches = patches::patches_of(data);
    if repository.apply_patches("fuzz", "master", &patches).is_ok() {
        // Every input starts from the same repository.
        repository
            .reset_branch("fuzz", None)
            .expect("the branch can be reset");
    }
});
