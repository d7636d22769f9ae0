//! Conformance with the gem's own fixtures (`testdata/reply-trimmer`, copied from
//! discourse/email_reply_trimmer's `test/`), asserted the way the gem's
//! `test/test_email_reply_trimmer.rb` asserts them:
//!
//! * for every `emails/X.txt`: `trimmed/X.txt` == `trim(email)` and `elided/X.txt` ==
//!   `trim(email, true)[1]`;
//! * for every `embedded/X.txt` (the gem's `EMBEDDED_EMAILS` list): `extract_embedded_email`
//!   gives `embedded/X.txt` and `before/X.txt`. The gem asserts nothing about the other emails'
//!   extraction, and neither does this test.
//!
//! As in the gem's test, the input and every expected file are read with `File.read(…).strip`,
//! i.e. leading and trailing ASCII whitespace (and NUL) removed.

use postern_mail::trim::{extract_embedded_email, trim, trim_split};
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reply-trimmer")
}

/// Ruby's `String#strip`.
fn ruby_strip(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, '\0' | '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' '))
}

fn read(dir: &str, name: &str) -> Option<String> {
    let path = fixtures_dir().join(dir).join(name);
    fs::read_to_string(&path)
        .ok()
        .map(|s| ruby_strip(&s).to_owned())
}

fn email_names() -> Vec<String> {
    let dir = fixtures_dir().join("emails");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    names
}

/// A failure message that diffs well: the case, what was checked, then both values in full.
fn mismatch(kind: &str, name: &str, expected: &str, actual: &str) -> String {
    format!(
        "[{kind}] {name}\n--- expected ({} chars)\n{expected}\n--- actual ({} chars)\n{actual}\n---",
        expected.chars().count(),
        actual.chars().count()
    )
}

#[test]
fn every_email_has_trimmed_and_elided_expectations() {
    let names = email_names();
    assert!(
        !names.is_empty(),
        "no fixtures found in {}",
        fixtures_dir().display()
    );
    for dir in ["trimmed", "elided"] {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !fixtures_dir().join(dir).join(n).is_file())
            .collect();
        assert!(
            missing.is_empty(),
            "emails without {dir}/ expectation: {missing:?}"
        );
    }
}

#[test]
fn normalize_line_endings_fixture_has_windows_line_endings() {
    let raw = fs::read_to_string(fixtures_dir().join("emails/normalize_line_endings.txt"));
    assert!(raw.is_ok_and(|s| s.contains("\r\n")));
}

#[test]
fn trimmed_and_elided_match_the_gem() {
    let names = email_names();
    assert!(
        !names.is_empty(),
        "no fixtures found in {}",
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    let (mut trimmed_ok, mut elided_ok) = (0, 0);
    for name in &names {
        let Some(email) = read("emails", name) else {
            failures.push(format!("[READ] {name}: emails/{name} unreadable"));
            continue;
        };
        let (kept, cut) = trim_split(&email);
        let only_kept = trim(&email);
        if kept != only_kept {
            failures.push(mismatch("TRIM vs TRIM_SPLIT", name, &only_kept, &kept));
        }
        match read("trimmed", name) {
            Some(expected) if ruby_strip(&kept) == expected => trimmed_ok += 1,
            Some(expected) => {
                failures.push(mismatch("TRIMMED", name, &expected, ruby_strip(&kept)))
            }
            None => failures.push(format!("[TRIMMED] {name}: trimmed/{name} missing")),
        }
        match read("elided", name) {
            Some(expected) if ruby_strip(&cut) == expected => elided_ok += 1,
            Some(expected) => failures.push(mismatch("ELIDED", name, &expected, ruby_strip(&cut))),
            None => failures.push(format!("[ELIDED] {name}: elided/{name} missing")),
        }
    }
    eprintln!(
        "trimmed: {trimmed_ok}/{n} pass, elided: {elided_ok}/{n} pass",
        n = names.len()
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn embedded_and_before_match_the_gem() {
    let dir = fixtures_dir().join("embedded");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no embedded fixtures in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let (mut embedded_ok, mut before_ok) = (0, 0);
    for name in &names {
        let (Some(email), Some(want_embedded), Some(want_before)) = (
            read("emails", name),
            read("embedded", name),
            read("before", name),
        ) else {
            failures.push(format!(
                "[READ] {name}: emails/, embedded/ or before/ file missing"
            ));
            continue;
        };
        let Some((embedded, before)) = extract_embedded_email(&email) else {
            failures.push(format!(
                "[EMBEDDED] {name}: extract_embedded_email returned None"
            ));
            continue;
        };
        if ruby_strip(&embedded) == want_embedded {
            embedded_ok += 1;
        } else {
            failures.push(mismatch(
                "EMBEDDED",
                name,
                &want_embedded,
                ruby_strip(&embedded),
            ));
        }
        if ruby_strip(&before) == want_before {
            before_ok += 1;
        } else {
            failures.push(mismatch("BEFORE", name, &want_before, ruby_strip(&before)));
        }
    }
    eprintln!(
        "embedded: {embedded_ok}/{n} pass, before: {before_ok}/{n} pass",
        n = names.len()
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
