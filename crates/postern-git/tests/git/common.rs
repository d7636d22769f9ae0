//! Helpers shared by the integration tests: seeded repositories, the GitLab fixture patches,
//! and a snapshot of everything in a repository except its objects.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mail_parser::{MessageParser, MimeHeaders};
use postern_git::{Identity, Patch, Repositories, Repository};
use tempfile::TempDir;

/// The preimage of README that the fixture patches expect (blob 3742e48 in gitlab-test).
pub const README: &[u8] = b"Sample repo for testing gitlab features\n";

/// A repository root in a temporary directory, with GitLab's test branch names.
pub struct Fixture {
    /// Keeps the directory alive for the test.
    pub dir: TempDir,
    pub repositories: Repositories,
    pub repository: Repository,
}

pub fn author() -> Identity {
    Identity::new("Seed Author", "seed@example.com")
}

/// An empty repository whose default branch is `master`, like gitlab-test.
pub fn empty_repository() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repositories = Repositories::new(dir.path().join("repositories"))
        .with_committer(Identity::new("postern test", "postern@example.com"))
        .with_default_branch("master");
    let repository = repositories.repository(7).unwrap();
    Fixture {
        dir,
        repositories,
        repository,
    }
}

/// `master` with the README the fixture patches modify; `feature` adding a
/// `files/ruby/feature.rb` that conflicts with the fixture patch creating it; and
/// `with-codeowners` adding a CODEOWNERS file.
pub fn gitlab_test_repository() -> Fixture {
    let fixture = empty_repository();
    let repo = &fixture.repository;
    repo.commit_files("master", &[("README", README)], "Initial commit", &author())
        .unwrap();
    let master = repo.head_of("master").unwrap().unwrap();
    // `feature` and `with-codeowners` start at master's commit.
    git(repo.path(), &["update-ref", "refs/heads/feature", &master]);
    git(
        repo.path(),
        &["update-ref", "refs/heads/with-codeowners", &master],
    );
    let feature_rb = b"class Feature\n  def foo\n    puts 'bar'\n  end\nend\n";
    repo.commit_files(
        "feature",
        &[("files/ruby/feature.rb", feature_rb)],
        "Add feature",
        &author(),
    )
    .unwrap();
    repo.commit_files(
        "with-codeowners",
        &[("CODEOWNERS", b"* @admin\n")],
        "Add CODEOWNERS",
        &author(),
    )
    .unwrap();
    fixture
}

/// Runs the real git on a repository (test-side reads and set-up only), returning stdout.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The content of `path` at `rev`.
pub fn file_at(repo: &Path, rev: &str, path: &str) -> String {
    git(repo, &["show", &format!("{rev}:{path}")])
}

/// The `.patch` attachments of a GitLab fixture mail, decoded and sorted by file name, as
/// `CreateMergeRequestHandler#patch_attachments` picks them.
pub fn fixture_patches(name: &str) -> Vec<Patch> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/gitlab-emails")
        .join(name);
    let raw = std::fs::read(&path).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let mut patches: Vec<Patch> = message
        .attachments()
        .filter_map(|part| {
            let filename = part.attachment_name()?;
            filename.ends_with(".patch").then(|| Patch {
                filename: filename.to_owned(),
                content: undecoded_workaround(part.contents()),
            })
        })
        .collect();
    patches.sort_by(|a, b| a.filename.cmp(&b.filename));
    patches
}

/// mail-parser 0.11.9 leaves the quoted-printable encoding of the last part in place when the
/// multipart lacks its closing boundary (as in `merge_request_with_patch_and_target_branch.eml`);
/// Ruby's `mail` gem, which GitLab uses, decodes it. A patch still starting with `=46rom` (the
/// encoded `From `) is decoded here so the test sees what GitLab sees.
fn undecoded_workaround(content: &[u8]) -> Vec<u8> {
    if !content.starts_with(b"=46rom ") {
        return content.to_vec();
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        match (content[i], content.get(i + 1), content.get(i + 2)) {
            (b'=', Some(b'\n'), _) => i += 2,
            (b'=', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(hex(h).unwrap() * 16 + hex(l).unwrap());
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Everything observable about a repository except its object store: every ref with its
/// value, the worktree list, and every file path under the repository directory outside
/// `objects/` with its content.
pub fn snapshot(repo: &Path) -> String {
    let mut out = git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    out.push_str(&git(repo, &["worktree", "list", "--porcelain"]));
    let mut files = Vec::new();
    list_files(repo, repo, &mut files);
    files.sort();
    for (path, content) in files {
        out.push_str(&format!("{path}: {content:?}\n"));
    }
    out
}

fn list_files(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative == "objects" {
            continue;
        }
        if path.is_dir() {
            files.push((format!("{relative}/"), Vec::new()));
            list_files(root, &path, files);
        } else {
            files.push((relative, std::fs::read(&path).unwrap()));
        }
    }
}

/// Writes `text` to `path` as an executable script without this process ever opening `path`.
///
/// The tests share one process whose threads fork git all the time. A child forked while this
/// process held `path` open for writing keeps that descriptor until it execs, and executing
/// `path` meanwhile fails with "text file busy" (ETXTBSY). Letting `sh` write the file leaves
/// the only writable descriptor in a process nobody else forks, closed before this returns.
pub fn write_script(path: &Path, text: &str) {
    let mut writer = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(
        writer.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
}
