//! Replies that trackers are known to mangle (users of GitLab, Discourse, Zammad and others
//! report each in their issue lists): bottom posting, inline answers, Markdown headings, a
//! person's own quotes, and lone list markers. postern keeps the person's words in each.

use postern_mail::trim::{trim, trim_split};
use postern_mail::{AnalysisOptions, analyse};

#[test]
fn bottom_posted_reply_keeps_the_text_under_the_quote() {
    let text = "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n\
                > Can you check the build?\n> It fails on main.\n\n\
                Yes, it fails because of the lockfile. I pushed a fix.\n";
    let (kept, elided) = trim_split(text);
    assert_eq!(
        kept,
        "Yes, it fails because of the lockfile. I pushed a fix."
    );
    assert!(elided.contains("> Can you check the build?"), "{elided}");
}

#[test]
fn inline_answers_keep_questions_and_answers() {
    let text = "> Does it fail on main?\nYes, since Monday.\n\n\
                > Which test?\nThe store tests, only on PostgreSQL.\n\nThanks\n";
    assert_eq!(
        trim(text),
        "> Does it fail on main?\nYes, since Monday.\n\n> Which test?\n\
         The store tests, only on PostgreSQL.\n\nThanks"
    );
}

#[test]
fn markdown_headings_are_text() {
    let text = "# Steps\n\n1. Open the page\n2. Click save\n\n# Result\n\nIt crashes.\n\n\
                ### Expected\nIt saves.\n";
    assert_eq!(trim(text), text.trim_end());
}

#[test]
fn a_quote_written_by_the_author_in_the_middle_stays() {
    let text = "The error says:\n\n> Error: connection refused\n\nAny idea what that means?\n";
    assert_eq!(trim(text), text.trim_end());
}

#[test]
fn lone_list_markers_and_hashes_do_not_cut_the_text() {
    let text = "Here is my list:\n\n-\nfirst\n*\nsecond\n#\nthird\n";
    assert_eq!(trim(text), text.trim_end());
    // Real separators still cut.
    assert_eq!(trim("Reply\n\n--\nJake\n"), "Reply");
}

#[test]
fn html_blockquote_by_the_author_is_kept_as_text() {
    let raw = b"From: a@example.com\r\nTo: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\
                Content-Type: text/html; charset=utf-8\r\n\r\n\
                <p>The log shows:</p><blockquote>timeout after 30s</blockquote><p>Is that expected?</p>";
    let analysis = analyse(raw, &AnalysisOptions::default());
    assert!(
        analysis.body.contains("timeout after 30s"),
        "{}",
        analysis.body
    );
    assert!(
        analysis.body.contains("Is that expected?"),
        "{}",
        analysis.body
    );
}
