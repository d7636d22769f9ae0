//! Conventions as tests: every Rust file opens with a `//!` doc, library and binary sources stay
//! under 600 lines, no trailing white space, no panic-expecting test attribute (a test states the behaviour it
//! expects instead).

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
