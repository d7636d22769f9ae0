//! The reply-complaints corpus (`testdata/reply-complaints/`) in both trimming modes, with a
//! score table per class. The postern mode must get at least 95 % of it; the GitLab mode's
//! score is printed, not asserted (it reproduces GitLab, complaints included).
//!
//! `cargo test -p postern-mail --test mail reply_complaints -- --nocapture` shows the table and
//! each case the postern mode gets wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;

use postern_mail::trim::{TrimMode, trim_reply};

/// The share of the corpus the postern mode must get right.
const POSTERN_TARGET_PERCENT: usize = 95;
/// The corpus must keep at least this many cases, so that the share above means something.
const MIN_CASES: usize = 80;

struct Case {
    id: String,
    class: String,
    input: String,
    expected: String,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reply-complaints")
}

fn load() -> Vec<Case> {
    let dir = corpus_dir();
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv is readable");
    let mut cases = Vec::new();
    for row in index.lines().skip(1) {
        let fields: Vec<&str> = row.split('\t').collect();
        assert_eq!(fields.len(), 4, "index row {row:?} has four fields");
        assert!(
            fields[3].starts_with("https://"),
            "row {row:?} names its report"
        );
        let read = |suffix: &str| {
            let path = dir.join("cases").join(format!("{}{suffix}", fields[0]));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let expected = read(".expected.txt");
        cases.push(Case {
            id: fields[0].to_owned(),
            class: fields[1].to_owned(),
            input: read(".txt"),
            // The file's final newline is not part of the kept text.
            expected: expected.strip_suffix('\n').unwrap_or(&expected).to_owned(),
        });
    }
    cases
}

/// (class → (cases, postern right, gitlab right)), and the failures of each mode.
fn score(cases: &[Case]) -> (BTreeMap<String, [usize; 3]>, Vec<String>, usize) {
    let mut table: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let mut postern_failures = Vec::new();
    let mut gitlab_right = 0;
    for case in cases {
        let row = table.entry(case.class.clone()).or_default();
        row[0] += 1;
        let postern = trim_reply(&case.input, TrimMode::Postern);
        if postern == case.expected {
            row[1] += 1;
        } else {
            postern_failures.push(format!(
                "--- {} ({})\nexpected:\n{}\n\npostern kept:\n{}\n",
                case.id, case.class, case.expected, postern
            ));
        }
        if trim_reply(&case.input, TrimMode::Gitlab) == case.expected {
            row[2] += 1;
            gitlab_right += 1;
        }
    }
    (table, postern_failures, gitlab_right)
}

#[test]
fn corpus_scores_per_class() {
    let cases = load();
    assert!(cases.len() >= MIN_CASES, "{} cases", cases.len());
    let (table, failures, gitlab_right) = score(&cases);

    println!(
        "{:<20} {:>5} {:>9} {:>9}",
        "class", "cases", "postern", "gitlab"
    );
    for (class, [n, postern, gitlab]) in &table {
        println!("{class:<20} {n:>5} {postern:>9} {gitlab:>9}");
    }
    let total = cases.len();
    let postern_right = total - failures.len();
    println!(
        "{:<20} {total:>5} {:>9} {:>9}",
        "total", postern_right, gitlab_right
    );
    println!(
        "postern mode {:.1} %, gitlab mode {:.1} %",
        100.0 * postern_right as f64 / total as f64,
        100.0 * gitlab_right as f64 / total as f64
    );
    for failure in &failures {
        println!("{failure}");
    }
    assert!(
        postern_right * 100 >= total * POSTERN_TARGET_PERCENT,
        "postern mode gets {postern_right} of {total}, under {POSTERN_TARGET_PERCENT} %"
    );
}

#[test]
fn every_case_is_written_byte_for_byte_from_its_input() {
    // The principle: nothing re-flowed. Every kept line is a line of the input, in order,
    // except that a forward or reply may lose lines; never gain or change one.
    for case in load() {
        let mut input_lines = case.input.lines();
        for line in case.expected.lines() {
            assert!(
                input_lines.any(|l| l == line),
                "{}: expected line {line:?} is not an input line in order",
                case.id
            );
        }
    }
}

#[test]
fn the_gitlab_mode_is_the_default_trimmer() {
    for case in load() {
        assert_eq!(
            trim_reply(&case.input, TrimMode::Gitlab),
            postern_mail::trim::trim(&case.input),
            "{}",
            case.id
        );
    }
}

#[test]
fn agreement_with_the_gems_own_fixtures_is_printed() {
    // Not asserted: the postern mode keeps forwards and some quotes the gem drops by design.
    // Printed so a change in agreement shows in the test output.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reply-trimmer");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("emails"))
        .expect("fixtures are readable")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut same = 0;
    let mut differ = Vec::new();
    for name in &names {
        let read =
            |sub: &str| std::fs::read_to_string(dir.join(sub).join(name)).unwrap_or_default();
        let expected = read("trimmed");
        let expected = expected.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
        if trim_reply(&read("emails"), TrimMode::Postern) == expected {
            same += 1;
        } else {
            differ.push(name.as_str());
        }
    }
    println!(
        "postern mode agrees with email_reply_trimmer's fixtures on {same} of {}; differs on {differ:?}",
        names.len()
    );
}

mod nothing_reflowed {
    use postern_mail::trim::{TrimMode, trim_reply_split};
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    /// Lines that exercise every rule of the postern mode.
    fn reply_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("--".to_owned()),
            Just("-- ".to_owned()),
            Just("---".to_owned()),
            Just("===".to_owned()),
            Just("________________".to_owned()),
            Just("```".to_owned()),
            Just("@@ -1,3 +1,3 @@".to_owned()),
            Just("$ cat <<EOF".to_owned()),
            Just("Sent from my iPhone".to_owned()),
            Just("---------- Forwarded message ---------".to_owned()),
            Just("-----Original Message-----".to_owned()),
            "(From|Sent|To|Subject|Von|Od|Temat|发件人): [ -~]{0,30}",
            "On [ -~]{0,20} 2024 [ -~]{0,10} wrote:",
            "> [ -~]{0,30}",
            "    [ -~]{0,30}",
            "[ -~]{0,60}",
        ]
    }

    proptest! {
        // Past failures are replayed from `reply_complaints.proptest-regressions` beside this
        // file; proptest's default place would be `tests/proptest-regressions/`, beside the
        // folder that holds `main.rs`.
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
                "proptest-regressions"
            ))),
            ..ProptestConfig::with_cases(512)
        })]

        /// Kept and cut lines are the input's lines, each once, in order: the postern mode
        /// selects lines and never rewrites one.
        #[test]
        fn kept_lines_are_input_lines_in_order(lines in proptest::collection::vec(reply_line(), 0..60)) {
            let text = lines.join("\n");
            let (kept, cut) = trim_reply_split(&text, TrimMode::Postern);
            for part in [&kept, &cut] {
                let mut input = text.lines();
                for line in part.lines() {
                    // (Only the whitespace that ends the whole result may go.)
                    prop_assert!(
                        input.any(|l| l == line || l.trim_end() == line),
                        "{line:?} of {part:?} from {text:?}"
                    );
                }
            }
        }
    }
}
