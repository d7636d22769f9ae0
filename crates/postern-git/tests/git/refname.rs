//! `validate_branch_name` against the real `git check-ref-format --branch`: everything git
//! rejects, postern rejects; what postern rejects beyond that is GitLab's own rules.

use std::process::Command;

use postern_git::validate_branch_name;

fn git_accepts(name: &str) -> bool {
    Command::new("git")
        .args(["check-ref-format", "--branch", name])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", "/")
        .current_dir("/")
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn agrees_with_git_check_ref_format() {
    // Rejected by GitLab's extra rules although git would take them (or read them specially).
    let gitlab_only = ["-x", "refs/heads/x", "refs/remotes/origin/x", "HEAD", "@"];
    let names = [
        "main",
        "feature/x",
        "a-b_c.d",
        "v1.2.3",
        "ünïcode",
        "a@b",
        "a{b}",
        "a+b",
        "a#b",
        "a,b",
        "a;b",
        "a'b",
        "a\"b",
        "a..b",
        "with space",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "a@{1}",
        "/a",
        "a/",
        "a//b",
        ".a",
        "a/.b",
        "a.lock",
        "a.lock/b",
        "a.",
        "",
        "tab\tname",
        "del\x7f",
        "a/b.lock.c",
        "x.lockx",
        "@{-1}",
        "a@",
        "..",
        ".",
        "a/./b",
    ];
    for name in names.iter().chain(&gitlab_only) {
        let ours = validate_branch_name(name).is_ok();
        if gitlab_only.contains(name) {
            assert!(!ours, "{name:?} should be refused");
        } else {
            assert_eq!(
                ours,
                git_accepts(name),
                "{name:?}: postern {ours}, git differs"
            );
        }
    }
}
