//! Patches built to make `git am` write or allocate far more than they weigh are refused
//! permanently, with a text naming the limit, the refs unchanged and in bounded time: by the
//! check of what the patch text declares before git runs, and, for what slips past a
//! declaration, by the operating-system limits git runs under.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use postern_git::{
    MAX_BINARY_HUNK_BYTES, MAX_PATCH_FILES, MAX_PATCH_LINES, MAX_PATCHES_SIZE, Patch, PatchError,
    PatchLimit, PatchLimits, Repositories, could_not_apply_patches,
};

use crate::common;
use crate::common::{gitlab_test_repository, snapshot};

/// Generous: the checks take milliseconds; refusing must not take git's timeout.
const BOUND: Duration = Duration::from_secs(5);

/// A `git format-patch` mail adding `path` with the given diff body (everything after the
/// `diff --git` line's header block).
fn format_patch(subject: &str, diffs: &str) -> Patch {
    let content = format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: Bomb <bomb@example.com>\n\
         Date: Thu, 18 Oct 2018 13:40:35 +0200\n\
         Subject: [PATCH] {subject}\n\
         \n\
         ---\n\
         {diffs}\
         --\n\
         2.47.0\n\
         \n"
    );
    Patch {
        filename: format!("0001-{subject}.patch"),
        content: content.into_bytes(),
    }
}

/// A new binary file whose forward hunk header is `header` (e.g. `literal 1073741824`).
fn binary_file(path: &str, header: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\n\
         new file mode 100644\n\
         index 0000000000000000000000000000000000000000..1111111111111111111111111111111111111111\n\
         GIT binary patch\n\
         {header}\n\
         zcmeIuAr62b5Cp*e\n\
         \n\
         literal 0\n\
         HcmV?d00001\n\
         \n"
    )
}

/// Applies `patches` to a new branch from `master` and checks the common outcome of a refused
/// bomb: a permanent error, nothing changed, quickly. Returns the error.
fn refused(patches: &[Patch], limits: PatchLimits) -> PatchError {
    let fixture = gitlab_test_repository();
    let repo = Repositories::new(fixture.dir.path().join("repositories"))
        .with_patch_limits(limits)
        .repository(7)
        .unwrap();
    let before = snapshot(repo.path());
    let started = Instant::now();
    let error = repo.apply_patches("bomb", "master", patches).unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "took {elapsed:?}");
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(
        snapshot(repo.path()),
        before,
        "refs and worktrees unchanged"
    );
    assert!(!repo.path().join("postern-worktrees").exists());
    error
}

fn limit_of(error: &PatchError) -> PatchLimit {
    match error {
        PatchError::LimitExceeded { limit, .. } => *limit,
        other => panic!("not a limit: {other:?}"),
    }
}

#[test]
fn binary_literal_declaring_a_gibibyte_is_refused_before_git() {
    let patch = format_patch("Bomb", &binary_file("bomb.bin", "literal 1073741824"));
    assert!(patch.content.len() < 1024);
    let error = refused(&[patch], PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::BinaryHunk);
    assert_eq!(
        could_not_apply_patches("bomb", &error),
        format!(
            "Could not apply patches to bomb:\nThe patches are over a limit of postern: at most \
             {MAX_BINARY_HUNK_BYTES} bytes declared by one binary patch"
        )
    );
}

#[test]
fn every_spelling_git_reads_as_a_size_is_checked() {
    // git reads the size with strtoul: blanks, a sign, trailing garbage, overflow, negatives.
    for header in [
        "literal  1073741824",
        "literal +1073741824",
        "literal 1073741824xyz",
        "literal -1",
        "literal 99999999999999999999999999999",
        "delta 1073741824",
    ] {
        let patch = format_patch("Bomb", &binary_file("bomb.bin", header));
        let error = refused(&[patch], PatchLimits::default());
        assert_eq!(limit_of(&error), PatchLimit::BinaryHunk, "{header}");
    }
    // With CRLF line ends, which `git mailsplit` strips.
    let mut crlf = format_patch("Bomb", &binary_file("bomb.bin", "literal 1073741824"));
    crlf.content = String::from_utf8(crlf.content)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    assert_eq!(
        limit_of(&refused(&[crlf], PatchLimits::default())),
        PatchLimit::BinaryHunk
    );
}

#[test]
fn the_reverse_hunk_is_checked_too() {
    let diff = "diff --git a/bomb.bin b/bomb.bin\n\
         index 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222\n\
         GIT binary patch\n\
         literal 10\n\
         RcmZQzU|?ooU|?cz1ONfV01E&B\n\
         \n\
         delta 1073741824\n\
         zcmeIuAr62b5Cp*e\n\
         \n";
    let error = refused(&[format_patch("Reverse", diff)], PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::BinaryHunk);
}

#[test]
fn declared_binary_sizes_add_up_across_files_and_patches() {
    let thirty = 30 * 1024 * 1024;
    let patches: Vec<Patch> = (0..3)
        .map(|i| {
            let mut patch = format_patch(
                &format!("Part{i}"),
                &binary_file(&format!("part{i}.bin"), &format!("literal {thirty}")),
            );
            patch.filename = format!("000{i}-part.patch");
            patch
        })
        .collect();
    let error = refused(&patches, PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::BinaryTotal);
}

#[test]
fn too_many_files_are_refused_before_git() {
    let mut diffs = String::new();
    for i in 0..=MAX_PATCH_FILES {
        diffs.push_str(&format!(
            "diff --git a/f{i} b/f{i}\nnew file mode 100644\nindex 0000000..1111111\n\
             --- /dev/null\n+++ b/f{i}\n@@ -0,0 +1 @@\n+x\n"
        ));
    }
    let patch = format_patch("Files", &diffs);
    assert!(patch.content.len() < MAX_PATCHES_SIZE);
    let error = refused(&[patch], PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::Files);
    assert_eq!(
        error.to_string(),
        format!(
            "The patches are over a limit of postern: at most {MAX_PATCH_FILES} files changed by \
             the patches"
        )
    );
}

#[test]
fn too_many_lines_are_refused_before_git() {
    let mut diff = format!(
        "diff --git a/many b/many\nnew file mode 100644\nindex 0000000..1111111\n\
         --- /dev/null\n+++ b/many\n@@ -0,0 +1,{MAX_PATCH_LINES} @@\n"
    );
    diff.push_str(&"+\n".repeat(MAX_PATCH_LINES));
    let patch = format_patch("Lines", &diff);
    assert!(patch.content.len() < MAX_PATCHES_SIZE);
    let error = refused(&[patch], PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::Lines);
}

#[test]
fn ordinary_patches_are_far_from_every_limit() {
    let fixture = gitlab_test_repository();
    let patches = common::fixture_patches("merge_request_multiple_patches.eml");
    let limits = PatchLimits {
        max_lines: 200,
        max_files: 4,
        ..PatchLimits::default()
    };
    let repo = Repositories::new(fixture.dir.path().join("repositories"))
        .with_patch_limits(limits)
        .repository(7)
        .unwrap();
    let commits = repo.apply_patches("ordinary", "master", &patches).unwrap();
    assert_eq!(commits.len(), 2);
}

/// A real binary patch adding `path` with `size` zero bytes, made by git itself.
fn real_binary_patch(scratch: &Path, path: &str, size: usize) -> Patch {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(scratch)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Bomb")
            .env("GIT_AUTHOR_EMAIL", "bomb@example.com")
            .env("GIT_COMMITTER_NAME", "Bomb")
            .env("GIT_COMMITTER_EMAIL", "bomb@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    git(&["init", "--quiet", "."]);
    std::fs::write(scratch.join(path), vec![0u8; size]).unwrap();
    git(&["add", path]);
    git(&["commit", "--quiet", "-m", "Add zeros"]);
    let content = git(&["format-patch", "--binary", "--stdout", "-1"]);
    Patch {
        filename: "0001-Add-zeros.patch".into(),
        content,
    }
}

#[test]
fn git_am_cannot_write_a_file_beyond_its_limit() {
    // The declared size passes the check (raised here); the file git writes does not fit.
    let scratch = tempfile::tempdir().unwrap();
    let size = 4 * 1024 * 1024;
    let patch = real_binary_patch(scratch.path(), "zeros.bin", size);
    assert!(patch.content.len() < 64 * 1024, "{}", patch.content.len());
    let limits = PatchLimits {
        max_written_file_bytes: 1024 * 1024,
        ..PatchLimits::default()
    };
    let error = refused(std::slice::from_ref(&patch), limits);
    assert_eq!(limit_of(&error), PatchLimit::WrittenFile);
    assert!(
        error
            .to_string()
            .ends_with("at most 1048576 bytes in one file written while applying the patches")
    );

    // The same patch under the default limits applies: the limit made the difference.
    let fixture = gitlab_test_repository();
    let commits = fixture
        .repository
        .apply_patches("zeros", "master", &[patch])
        .unwrap();
    assert_eq!(commits.len(), 1);
}

#[test]
fn git_am_cannot_allocate_beyond_its_limit() {
    // A real hunk whose header is raised to 1 GiB: git allocates the declared size before it
    // inflates. With the check lifted, only the memory limit stops it.
    let scratch = tempfile::tempdir().unwrap();
    let patch = real_binary_patch(scratch.path(), "zeros.bin", 1024);
    let text = String::from_utf8(patch.content).unwrap();
    assert!(text.contains("\nliteral 1024\n"), "{text}");
    let bomb = Patch {
        filename: patch.filename,
        content: text
            .replace("\nliteral 1024\n", "\nliteral 1073741824\n")
            .into_bytes(),
    };
    let limits = PatchLimits {
        max_binary_bytes: u64::MAX,
        max_total_binary_bytes: u64::MAX,
        max_memory_bytes: 256 * 1024 * 1024,
        ..PatchLimits::default()
    };
    let error = refused(&[bomb], limits);
    assert_eq!(limit_of(&error), PatchLimit::Memory);
}

/// git's base85, as in binary hunks: one line per 52 bytes, a length character first.
fn base85_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 85] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    let mut out = String::new();
    for chunk in bytes.chunks(52) {
        let len = chunk.len();
        out.push(if len <= 26 {
            char::from(b'A' + len as u8 - 1)
        } else {
            char::from(b'a' + len as u8 - 27)
        });
        for group in chunk.chunks(4) {
            let mut word = [0u8; 4];
            word[..group.len()].copy_from_slice(group);
            let mut value = u32::from_be_bytes(word);
            let mut digits = [0u8; 5];
            for digit in digits.iter_mut().rev() {
                *digit = ALPHABET[(value % 85) as usize];
                value /= 85;
            }
            out.push_str(std::str::from_utf8(&digits).unwrap());
        }
        out.push('\n');
    }
    out
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn delta_whose_result_is_a_gibibyte_is_refused_before_git() {
    use std::io::Write as _;
    // A tiny delta: source 10 bytes, result 1 GiB, then one copy instruction.
    let mut delta = Vec::new();
    varint(10, &mut delta);
    varint(1 << 30, &mut delta);
    delta.extend_from_slice(&[0x90, 0x0a]);
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&delta).unwrap();
    let compressed = encoder.finish().unwrap();
    let diff = format!(
        "diff --git a/bomb.bin b/bomb.bin\n\
         index 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222\n\
         GIT binary patch\n\
         delta {}\n{}\n\
         literal 0\nHcmV?d00001\n\n",
        delta.len(),
        base85_lines(&compressed)
    );
    let error = refused(&[format_patch("Delta", &diff)], PatchLimits::default());
    assert_eq!(limit_of(&error), PatchLimit::BinaryHunk);
}

#[test]
fn real_delta_patches_still_apply() {
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Delta")
            .env("GIT_AUTHOR_EMAIL", "delta@example.com")
            .env("GIT_COMMITTER_NAME", "Delta")
            .env("GIT_COMMITTER_EMAIL", "delta@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    git(&work, &["init", "--quiet", "--initial-branch=main", "."]);
    // Binary (NUL bytes), varied enough not to compress away, and changed in one place.
    let mut content: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    content[0] = 0;
    std::fs::write(work.join("data.bin"), &content).unwrap();
    git(&work, &["add", "data.bin"]);
    git(&work, &["commit", "--quiet", "-m", "Add data"]);
    content[100_000] ^= 0xff;
    std::fs::write(work.join("data.bin"), &content).unwrap();
    git(&work, &["commit", "--quiet", "-am", "Change a byte"]);
    let patch = git(&work, &["format-patch", "--binary", "--stdout", "-1"]);
    let text = String::from_utf8_lossy(&patch);
    assert!(text.contains("\ndelta "), "git chose a delta: {text}");

    let root = scratch.path().join("repositories");
    std::fs::create_dir(&root).unwrap();
    git(
        scratch.path(),
        &["clone", "--quiet", "--bare", "work", "repositories/7.git"],
    );
    let repo = Repositories::new(&root).repository(7).unwrap();
    let base = git(&work, &["rev-parse", "HEAD~1"]);
    let base = String::from_utf8(base).unwrap();
    repo.reset_branch("base", Some(base.trim())).unwrap();
    let commits = repo
        .apply_patches(
            "changed",
            "base",
            &[Patch {
                filename: "0001-Change-a-byte.patch".into(),
                content: patch,
            }],
        )
        .unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        common::git(repo.path(), &["rev-parse", "changed^{tree}"]),
        String::from_utf8(git(&work, &["rev-parse", "HEAD^{tree}"])).unwrap()
    );
}

#[test]
fn the_check_is_linear_on_its_worst_inputs() {
    // Just under the encoded limit, each built to make one part of the check work hardest.
    let fill = |unit: &str| {
        let mut text = String::with_capacity(MAX_PATCHES_SIZE);
        while text.len() + unit.len() < MAX_PATCHES_SIZE - 1 {
            text.push_str(unit);
        }
        Patch {
            filename: "0001-worst.patch".into(),
            content: text.into_bytes(),
        }
    };
    let cases = [
        // A delta probe for every hunk, were hunks not capped by the files.
        (
            "delta hunks",
            fill("GIT binary patch\ndelta 1\nA00000\n\n"),
            Some(PatchLimit::Files),
        ),
        // A file header on every line.
        (
            "file headers",
            fill("diff --git a/x b/x\n"),
            Some(PatchLimit::Files),
        ),
        // Only line ends.
        ("empty lines", fill("\n"), Some(PatchLimit::Lines)),
        // One line of 2 MiB.
        ("one long line", fill("x"), None),
    ];
    for (name, patch, expected) in cases {
        let started = Instant::now();
        let result = postern_git::check_patches(&[patch], &PatchLimits::default());
        let elapsed = started.elapsed();
        // Generous: at most 16 ms measured in a debug build.
        assert!(elapsed < Duration::from_secs(2), "{name}: {elapsed:?}");
        match (result, expected) {
            (Ok(()), None) => {}
            (Err(error), Some(limit)) => assert_eq!(limit_of(&error), limit, "{name}"),
            (other, _) => panic!("{name}: {other:?}"),
        }
    }
}
