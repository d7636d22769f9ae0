//! Branch-name validation, done in Rust so it needs no process and cannot fail for I/O reasons.

use crate::GitError;

/// Checks that `name` is acceptable as the name of a new branch, as GitLab decides it.
///
/// GitLab (`Gitlab::GitRefValidator.validate`) rejects an empty name, a name starting with `-`,
/// `refs/heads/` or `refs/remotes/`, and `HEAD`; everything else must form a valid ref as
/// `refs/heads/<name>` under git's rules (`git check-ref-format`): no `..`, no `@{`, no space,
/// control character or any of `~ ^ : ? * [ \`, no empty component (leading, trailing or double
/// `/`), no component starting with `.` or ending with `.lock`, and no trailing `.`. postern
/// also rejects `@` alone, which `git check-ref-format --branch` reads as `HEAD`, names over
/// [`MAX_BRANCH_NAME_BYTES`], and components over [`MAX_BRANCH_COMPONENT_BYTES`]: git stores a
/// branch as a file, and a longer name fails with `ENAMETOOLONG` every time it is tried.
///
/// ```
/// use postern_git::validate_branch_name;
///
/// assert!(validate_branch_name("feature/patches-by-mail").is_ok());
/// assert!(validate_branch_name("two words").is_err());
/// assert!(validate_branch_name("a..b").is_err());
/// ```
pub fn validate_branch_name(name: &str) -> Result<(), GitError> {
    if is_valid_branch_name(name) {
        Ok(())
    } else {
        Err(GitError::InvalidBranchName {
            name: name.to_owned(),
        })
    }
}

/// The longest branch name postern accepts, in bytes (a file name's limit, `NAME_MAX`).
pub const MAX_BRANCH_NAME_BYTES: usize = 255;

/// The longest `/`-separated component of a branch name, in bytes: `NAME_MAX` less the
/// `.lock` suffix of the lock file git writes next to the ref while it changes it.
pub const MAX_BRANCH_COMPONENT_BYTES: usize = 255 - ".lock".len();

fn is_valid_branch_name(name: &str) -> bool {
    const GITLAB_PREFIXES: [&str; 3] = ["refs/heads/", "refs/remotes/", "-"];
    if name.is_empty() || name == "HEAD" || name == "@" || name.len() > MAX_BRANCH_NAME_BYTES {
        return false;
    }
    if GITLAB_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        return false;
    }
    let forbidden_char = |c: char| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    };
    if name.contains(forbidden_char) || name.contains("..") || name.contains("@{") {
        return false;
    }
    if name.ends_with('.') {
        return false;
    }
    name.split('/').all(|component| {
        !component.is_empty()
            && component.len() <= MAX_BRANCH_COMPONENT_BYTES
            && !component.starts_with('.')
            && !component.ends_with(".lock")
    })
}

/// Checks a revision argument postern passes to git on a caller's behalf (a branch name or a
/// sha, possibly with `~`/`^` suffixes).
///
/// This is not a full revision grammar; it only keeps out what could change the meaning of the
/// command line: option-like or empty arguments, ranges (postern builds those itself), and
/// control characters.
pub(crate) fn check_revision(revision: &str) -> Result<(), GitError> {
    let bad = revision.is_empty()
        || revision.starts_with('-')
        || revision.contains("..")
        || revision.contains(|c: char| c.is_ascii_control() || c == ' ');
    if bad {
        Err(GitError::InvalidRevision {
            revision: revision.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "main",
            "feature/x",
            "new-branch-with-a-patch",
            "v1.2",
            "ünïcode",
            "a@b",
        ] {
            assert!(is_valid_branch_name(name), "{name}");
        }
    }

    #[test]
    fn rejects_what_gitlab_rejects() {
        for name in [
            "",
            "HEAD",
            "@",
            "-x",
            "refs/heads/x",
            "refs/remotes/origin/x",
            "a..b",
            "with space",
            "tab\tname",
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
            "nul\0byte",
            "del\x7f",
        ] {
            assert!(!is_valid_branch_name(name), "{name:?}");
        }
    }

    #[test]
    fn rejects_names_a_file_system_cannot_store() {
        let longest = "x".repeat(MAX_BRANCH_COMPONENT_BYTES);
        assert!(is_valid_branch_name(&longest));
        assert!(!is_valid_branch_name(&format!("{longest}x")));
        let two = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        assert_eq!(two.len(), MAX_BRANCH_NAME_BYTES);
        assert!(is_valid_branch_name(&two));
        assert!(!is_valid_branch_name(&format!("{two}c")));
        assert!(validate_branch_name(&format!("{two}c")).is_err_and(|e| e.is_permanent()));
    }

    #[test]
    fn revisions() {
        assert!(check_revision("main").is_ok());
        assert!(check_revision("0123abc~2").is_ok());
        for bad in ["", "--output=/tmp/x", "a..b", "a b", "a\nb"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
    }
}
