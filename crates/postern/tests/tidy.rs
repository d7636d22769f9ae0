//! Conventions as tests: every Rust file opens with a `//!` doc, library and binary sources stay
//! under 600 lines, no trailing white space, no panic-expecting test attribute (a test states the behaviour it
//! expects instead). Comments cite nothing outside the repository, the repository paths they
//! name exist, no code is kept alive by allowing the unused-code lint, and the store's
//! rule-bearing tracker writes are called from postern-core only.

use std::path::{Path, PathBuf};

const MAX_SOURCE_LINES: usize = 600;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn sources_follow_the_conventions() {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 10, "found only {} Rust files", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("Rust sources are UTF-8");
        let name = path.display();
        if !text.starts_with("//!") {
            problems.push(format!("{name}: does not open with a `//!` doc comment"));
        }
        let in_src = path.components().any(|c| c.as_os_str() == "src");
        let lines = text.lines().count();
        if in_src && lines > MAX_SOURCE_LINES {
            problems.push(format!(
                "{name}: {lines} lines (split it below {MAX_SOURCE_LINES})"
            ));
        }
        for (number, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!("{name}:{}: trailing white space", number + 1));
            }
        }
        if text.contains(concat!("#[should", "_panic")) {
            problems.push(format!("{name}: uses should_panic"));
        }
    }
    assert!(
        problems.is_empty(),
        "convention problems:\n{}",
        problems.join("\n")
    );
}

/// The repository root: two levels above this crate.
fn repository_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// Every file of the repository whose comments or prose these checks read: Rust sources,
/// manifests, shell scripts, configuration examples, Markdown and the CI entry point. Build
/// output, git's own files and mail fixtures (outside text, quoted as received) are left out.
fn documented_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | "seeds") {
                    walk(&path, found);
                }
            } else if name == "run"
                || ["rs", "toml", "md", "sh", "yml", "service"]
                    .iter()
                    .any(|ext| name.ends_with(&format!(".{ext}")))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repository_root(), &mut found);
    found
}

/// The comment lines of `text` (for Markdown: every line), with their line numbers. A Rust
/// line comment or doc comment counts from its `//`; in manifests, scripts and YAML a line
/// whose first non-blank character is `#`.
fn comment_lines<'t>(path: &Path, text: &'t str) -> Vec<(usize, &'t str)> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let comment = match extension {
                "md" => Some(line),
                "rs" => line.find("//").map(|at| &line[at..]),
                _ => line.trim_start().starts_with('#').then_some(line),
            };
            comment.map(|comment| (index + 1, comment))
        })
        .collect()
}

/// Documents that lived beside the repository while postern was written and are not part of
/// it. A comment that cites one points nowhere for every reader of the repository: it should
/// state the reasoning, or link the public upstream source. (Written in halves so that this
/// list does not cite them itself.)
const OUTSIDE_DOCUMENTS: &[&str] = &[
    concat!("spec ", "§"),
    concat!("gitlab-", "behaviour"),
    concat!("DESIGN", ".md"),
    concat!("HELPERS", ".md"),
    concat!("STYLE", ".md"),
    concat!("crates", ".md"),
    concat!("mail_room", ".md"),
    concat!("mail_room", "-baseline"),
    concat!("peers", ".md"),
    concat!("../", "shared"),
    concat!("shared/", "spec"),
    concat!("shared/", "reference"),
    concat!("/work/", "shared"),
];

/// A section sign is only a citation of something outside when it does not follow a public
/// standard's name: `RFC 5321 §4.1.1.4` is fine, a section sign after anything else is not.
fn bare_section_signs(comment: &str) -> usize {
    comment
        .match_indices('§')
        .filter(|(at, _)| {
            let before = comment[..*at].trim_end();
            let number = before.trim_end_matches(|c: char| c.is_ascii_digit());
            !(number.len() < before.len() && number.ends_with("RFC "))
        })
        .count()
}

#[test]
fn comments_cite_nothing_outside_the_repository() {
    let files = documented_files();
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for (number, comment) in comment_lines(path, &text) {
            let place = format!("{}:{number}", path.display());
            for cited in OUTSIDE_DOCUMENTS {
                if comment.contains(cited) {
                    problems.push(format!(
                        "{place}: cites `{cited}`, which is not in the repository"
                    ));
                }
            }
            if bare_section_signs(comment) > 0 {
                problems.push(format!(
                    "{place}: a section sign that names no public standard"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "write the reasoning, or link public upstream source:\n{}",
        problems.join("\n")
    );
}

/// The top-level directories of the repository. A comment token that starts with one of
/// these (at a word boundary) is taken as a path in the repository.
const REPOSITORY_DIRECTORIES: &[&str] = &[
    "crates/",
    "dist/",
    "scripts/",
    "testdata/",
    "bench/",
    "fuzz/",
    ".ci/",
];

/// The repository paths named in `comment`. Conservative on purpose: a token counts only when
/// it starts with a top-level directory right after white space, a backtick, a quote or an
/// opening bracket (so URLs and `../` paths in code are not taken), and it is cut at the
/// first character that cannot be part of a plain path. A token that then runs into a
/// placeholder (`<name>`, `{x}`, `*`, `…`) describes a family of paths, not one, and is skipped.
/// So is a token with one slash and no file extension (`bench/proj`, `fuzz/target`): that is as
/// likely a project path or a build directory as a repository path; a directory is named with
/// a trailing slash or deeper (`crates/postern-core/src`).
fn repository_paths(comment: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    for directory in REPOSITORY_DIRECTORIES {
        for (at, _) in comment.match_indices(directory) {
            let boundary = comment[..at]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || "`'\"([".contains(c));
            if !boundary {
                continue;
            }
            let rest = &comment[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_-./".contains(c)))
                .unwrap_or(rest.len());
            if rest[end..].starts_with(['<', '{', '*', '…', '$']) {
                continue;
            }
            let path = rest[..end].trim_end_matches(['.', ',']);
            let last = path.rsplit('/').next().unwrap_or(path);
            let plain = path.ends_with('/') || path.matches('/').count() > 1 || last.contains('.');
            if plain {
                paths.push(path);
            }
        }
    }
    paths
}

#[test]
fn paths_named_in_comments_exist() {
    let root = repository_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in documented_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // A crate's own `testdata/…` may be named relative to the crate.
        let crate_dir = path
            .ancestors()
            .find(|dir| dir.join("Cargo.toml").is_file())
            .unwrap_or(&root)
            .to_owned();
        for (number, comment) in comment_lines(&path, &text) {
            for named in repository_paths(comment) {
                checked += 1;
                if !root.join(named).exists() && !crate_dir.join(named).exists() {
                    problems.push(format!(
                        "{}:{number}: names `{named}`, which does not exist",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} paths found: is the matcher broken?"
    );
    assert!(
        problems.is_empty(),
        "dangling paths:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_path_matcher_takes_only_plain_repository_paths() {
    assert_eq!(
        repository_paths("see `crates/postern/src/main.rs`, and scripts/test.sh."),
        ["crates/postern/src/main.rs", "scripts/test.sh"]
    );
    assert!(repository_paths("https://example.com/dist/x and ../../dist/y").is_empty());
    assert!(repository_paths("crates/<name>/tests and crates/*/src and dist/{a}").is_empty());
    assert!(repository_paths("project `bench/proj`, build output in fuzz/target").is_empty());
}

#[test]
fn no_allowance_for_unused_code() {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    rust_files(&repository_root().join("fuzz"), &mut files);
    let lint = concat!("dead", "_code");
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(lint)))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "code nobody uses is deleted, not allowed (a helper shared by the modules of a test \
         binary lives in a module its main.rs declares `pub`):\n{}",
        offenders.join("\n")
    );
}

/// The store's writes that carry a tracker rule (who may be a member, what a custom email
/// resets, what a project needs when it is created, what a comment notifies …). Each runs only
/// behind `postern_core`'s function for it, so the web UI, the API, the command line and mail
/// apply the same rules; a new write with a rule belongs on this list.
const RULE_BEARING_WRITES: &[&str] = &[
    // Projects (`postern_core::projects`, `service_desk`, `authentication`, `branches`).
    "create_project",
    "update_project",
    "update_service_desk",
    "set_project_sender_policy",
    "protect_branch",
    "unprotect_branch",
    // Members (`postern_core::members`).
    "add_member",
    "remove_member",
    // Accounts (`postern_core::users`).
    "create_user",
    "add_user_email",
    "set_email_verified",
    "remove_user_email",
    "set_user_state",
    // Issues, notes, merge requests and what they notify (`postern_core::actions`, the
    // handlers, `notify`).
    "create_issue",
    "update_issue",
    "add_issue_participant",
    "remove_issue_participant",
    "record_issue_email",
    "create_note",
    "set_subscription",
    "create_merge_request",
    "replace_commits",
    "set_merge_request_state",
    "create_sent_notification",
    "create_upload",
];

/// Where the writes above may be called: core, the store that defines them, and test code
/// (integration tests, benchmarks and the test kit set up their fixtures directly).
fn may_call_rule_bearing_writes(path: &Path) -> bool {
    let crates = repository_root().join("crates");
    let in_crate = |name: &str| path.starts_with(crates.join(name));
    in_crate("postern-core")
        || in_crate("postern-store")
        || in_crate("postern-testkit")
        || path
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
}

/// The rule-bearing writes `line` calls (as a method, `.name(`, or as `Tx::name(`), its
/// comment left out.
fn rule_bearing_calls(line: &str) -> Vec<&'static str> {
    let code = line.find("//").map_or(line, |at| &line[..at]);
    RULE_BEARING_WRITES
        .iter()
        .filter(|name| {
            code.contains(&format!(".{name}(")) || code.contains(&format!("Tx::{name}("))
        })
        .copied()
        .collect()
}

#[test]
fn rule_bearing_writes_are_called_from_core_only() {
    let crates = repository_root().join("crates");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    let mut problems = Vec::new();
    let mut seen = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let allowed = may_call_rule_bearing_writes(path);
        for (number, line) in text.lines().enumerate() {
            for name in rule_bearing_calls(line) {
                seen += 1;
                if !allowed {
                    problems.push(format!(
                        "{}:{}: calls `Tx::{name}`, a write with a tracker rule: call the \
                         postern_core function that applies the rule instead",
                        path.strip_prefix(repository_root())
                            .unwrap_or(path)
                            .display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(seen > 20, "only {seen} calls found: is the matcher broken?");
    assert!(
        problems.is_empty(),
        "rule-bearing store writes outside postern-core:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_write_matcher_finds_calls_not_mentions() {
    assert_eq!(
        rule_bearing_calls("    tx.add_member(project.id, user.id, role).await?;"),
        ["add_member"]
    );
    assert_eq!(
        rule_bearing_calls("        .create_project(NewProject {"),
        ["create_project"]
    );
    assert_eq!(
        rule_bearing_calls("Tx::remove_member(&mut tx, 1, 2)"),
        ["remove_member"]
    );
    assert!(
        rule_bearing_calls("members::set(tx, &project, by, &user, role) // not tx.add_member(")
            .is_empty()
    );
    assert!(rule_bearing_calls(".route(\"/x\", post(create_note))").is_empty());
    let crates = repository_root().join("crates");
    assert!(may_call_rule_bearing_writes(
        &crates.join("postern-core/src/members.rs")
    ));
    assert!(may_call_rule_bearing_writes(
        &crates.join("postern-web/tests/web/settings.rs")
    ));
    assert!(!may_call_rule_bearing_writes(
        &crates.join("postern-web/src/project_settings.rs")
    ));
    assert!(!may_call_rule_bearing_writes(
        &crates.join("postern/src/cmd/admin/projects.rs")
    ));
}

/// Which of our crates each crate may depend on (normal dependencies; dev-dependencies are
/// free). The direction is one way, leaves first; `postern-vocab` is the shared vocabulary
/// every crate may use. A new edge is a design change: change ARCHITECTURE.md's "Dependency
/// direction" and this list together.
const CRATE_GRAPH: &[(&str, &[&str])] = &[
    ("postern-vocab", &[]),
    ("postern-mail", &[]),
    ("postern-git", &[]),
    ("postern-auth", &[]),
    ("postern-store", &[]),
    ("postern-work", &[]),
    ("postern-inbox", &["postern-mail"]),
    ("postern-outbox", &["postern-store", "postern-work"]),
    ("postern-gitlab", &["postern-store", "postern-work"]),
    (
        "postern-core",
        &[
            "postern-auth",
            "postern-git",
            "postern-mail",
            "postern-store",
            "postern-work",
        ],
    ),
    (
        "postern-web",
        &[
            "postern-core",
            "postern-git",
            "postern-inbox",
            "postern-mail",
            "postern-store",
        ],
    ),
    ("postern-testkit", &["postern-store"]),
    ("postern-bench", &["postern-testkit"]),
    (
        "postern",
        &[
            "postern-auth",
            "postern-core",
            "postern-git",
            "postern-gitlab",
            "postern-inbox",
            "postern-mail",
            "postern-outbox",
            "postern-store",
            "postern-testkit",
            "postern-web",
        ],
    ),
];

/// The `postern-*` names in the `[dependencies]` table of a Cargo.toml.
fn our_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && line.starts_with("postern-") {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn crates_depend_only_along_the_graph() {
    let crates = repository_root().join("crates");
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/").flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        seen += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, allowed)) = CRATE_GRAPH
            .iter()
            .find(|(crate_name, _)| *crate_name == name)
        else {
            problems.push(format!(
                "crates/{name}: not in CRATE_GRAPH (add it, with what it may depend on)"
            ));
            continue;
        };
        for dependency in our_dependencies(&text) {
            if dependency != "postern-vocab" && !allowed.contains(&dependency.as_str()) {
                problems.push(format!(
                    "crates/{name}/Cargo.toml: depends on {dependency}, which the crate graph \
                     does not allow"
                ));
            }
        }
    }
    assert_eq!(seen, CRATE_GRAPH.len(), "crates found vs crates listed");
    assert!(
        problems.is_empty(),
        "dependencies against the direction:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_dependency_reader_reads_only_the_dependencies_table() {
    let manifest = "[package]\nname = \"postern-x\"\n[dependencies]\npostern-store.workspace = true\n\
                    serde = \"1\"\npostern-vocab = { path = \"../v\" }\n[dev-dependencies]\n\
                    postern-testkit.workspace = true\n";
    assert_eq!(
        our_dependencies(manifest),
        vec!["postern-store".to_string(), "postern-vocab".to_string()]
    );
}
