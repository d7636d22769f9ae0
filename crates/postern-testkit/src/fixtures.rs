//! The project's test data (`testdata/`): GitLab's receiver fixtures and friends, read from any
//! crate's tests, with GitLab's placeholder substitution.

use std::path::PathBuf;

/// The repository's `testdata/` folder.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The path of a GitLab fixture (`testdata/gitlab-emails/<name>`).
pub fn gitlab_email_path(name: &str) -> PathBuf {
    testdata().join("gitlab-emails").join(name)
}

/// The bytes of a GitLab fixture. Panics with the path when it is missing (tests only).
pub fn gitlab_email(name: &str) -> Vec<u8> {
    let path = gitlab_email_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `raw` with each placeholder replaced, in one left-to-right pass, as GitLab's specs do with
/// `fixture_file(…).gsub(…)` (`project_id`, `issue_iid`, `project_slug`, `auth_token` …). The
/// first matching placeholder at a position wins.
pub fn substitute(raw: &[u8], replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest: &[u8] = raw;
    'scan: while let Some(&first) = rest.first() {
        for (from, to) in replacements {
            if !from.is_empty() && rest.starts_with(from.as_bytes()) {
                out.extend_from_slice(to.as_bytes());
                rest = &rest[from.len()..];
                continue 'scan;
            }
        }
        out.push(first);
        rest = &rest[1..];
    }
    out
}

/// A GitLab fixture with its placeholders replaced.
pub fn gitlab_email_with(name: &str, replacements: &[(&str, &str)]) -> Vec<u8> {
    substitute(&gitlab_email(name), replacements)
}

/// `raw` with a tag put in front of its Message-ID: GitLab's fixtures share Message-IDs and
/// bodies, which postern rightly treats as one message delivered twice.
pub fn renamed(raw: &[u8], tag: &str) -> Vec<u8> {
    String::from_utf8_lossy(raw)
        .replacen("Message-ID: <", &format!("Message-ID: <{tag}-"), 1)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_is_one_pass() {
        let out = substitute(b"a project_id b project_idx", &[("project_id", "7")]);
        assert_eq!(out, b"a 7 b 7x");
        let no_recursion = substitute(b"xy", &[("x", "y"), ("y", "z")]);
        assert_eq!(no_recursion, b"yz");
    }
}
