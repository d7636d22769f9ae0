//! The one-pass scanner against GitLab's cases and against the regex oracle.

use proptest::prelude::*;

use super::*;

#[test]
fn finds_commands_at_line_start_only() {
    let actions = find_quick_actions("Cool!\n/close\n/label ~bug ~\"x y\"\nnot /close\n/unknown\n");
    let lines: Vec<_> = actions.iter().map(|a| a.line.as_str()).collect();
    assert_eq!(lines, ["/close", "/label ~bug ~\"x y\""]);
    assert_eq!(actions[1].argument.as_deref(), Some("~bug ~\"x y\""));
}

#[test]
fn ignores_commands_in_fenced_code() {
    let actions = find_quick_actions("```\n/close\n```\n/reopen");
    let names: Vec<_> = actions.iter().map(|a| a.command.as_str()).collect();
    assert_eq!(names, ["reopen"]);
}

#[test]
fn redaction_matches_gitlab_service_desk_output() {
    let body = "Service desk stuff!\n\n```\na = b\n```\n\n/label ~label1\n/assign @user1\n/close\n";
    assert_eq!(
        redact_quick_actions(body),
        "Service desk stuff!\n\n```\na = b\n```\n\n`/label ~label1`\n`/assign @user1`\n`/close`"
    );
}

#[test]
fn extraction_removes_command_lines() {
    let (text, actions) = extract_quick_actions("Cool!\n\n/close\n/todo\n");
    assert_eq!(text, "Cool!");
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].command, "close");
}

/// Pieces that exercise every branch of the pattern and its edges: fences, backticks at line
/// ends, HTML openings and closings split over lines, quotes, commands with and without
/// arguments, Unicode white space and the two non-ASCII letters that fold to `k` and `s`.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "\n",
        "\n",
        "\n",
        "```",
        "```\n",
        "`",
        "`\n",
        " `x` ",
        ">>>",
        ">>>\n",
        "<",
        ">",
        "<div>\n",
        "</div>",
        "</",
        "/",
        "/close",
        "/label",
        "/labels",
        "/lock",
        "/LOCK",
        "/\u{212A}",
        "/ſ",
        "/shrug",
        " ",
        "  ",
        "\t",
        "\u{a0}",
        "\u{2003}",
        "~a",
        "x",
        "é",
        "\r",
        "/remove_parent",
        "/remove_parent_epic",
        "_",
        "s",
        "k",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn one_pass_scanner_matches_the_pattern(pieces in prop::collection::vec(piece(), 0..40)) {
        let text: String = pieces.concat();
        prop_assert_eq!(find_quick_actions(&text), oracle::find_quick_actions(&text));
        prop_assert_eq!(extract_quick_actions(&text), oracle::extract_quick_actions(&text));
        prop_assert_eq!(redact_quick_actions(&text), oracle::redact_quick_actions(&text));
    }
}

#[test]
fn longest_name_is_the_run_limit() {
    let longest = COMMAND_NAMES.iter().map(|name| name.len()).max();
    assert!(longest <= Some(LONGEST_NAME));
}

#[test]
fn the_cap_keeps_the_first_actions_and_counts_all() {
    let text = "/label ~a\n".repeat(MAX_QUICK_ACTIONS + 5);
    let scan = scan_quick_actions(&text);
    assert_eq!(scan.total, MAX_QUICK_ACTIONS + 5);
    assert_eq!(scan.actions.len(), MAX_QUICK_ACTIONS);
    let (rest, scan) = extract_quick_actions_capped(&text, 3);
    assert_eq!(scan.total, MAX_QUICK_ACTIONS + 5);
    assert_eq!(scan.actions.len(), 3);
    assert_eq!(rest, "/label ~a\n".repeat(MAX_QUICK_ACTIONS + 2).trim_end());
}

#[test]
fn a_flood_of_commands_is_one_pass() {
    // 40 000 lines took 17.5 s with the pattern; linear, it is milliseconds. Counting, not
    // timing: the result must have every line.
    let text = "/label ~a\n".repeat(40_000);
    assert_eq!(find_quick_actions(&text).len(), 40_000);
    let with_code = format!("`x`\n{text}`y`");
    assert_eq!(find_quick_actions(&with_code).len(), 0);
}

#[test]
fn command_names_are_case_insensitive() {
    let actions = find_quick_actions("/Close");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].command, "close");
}
