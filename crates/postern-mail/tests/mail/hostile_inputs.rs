//! Hostile messages through `analyse`: each one just past a cap of `postern_mail::limits` comes
//! out cut or counted, with the outcome saying so, instead of being processed in full. (Time and
//! memory per pass are in `benches/hostile.rs`; nothing here is timed.)

use postern_mail::html::cut_notice;
use postern_mail::limits::{
    MAX_ATTACHMENT_NAME_BYTES, MAX_ATTACHMENTS_LISTED, MAX_BOUNDARY_LINES, MAX_HEADER_BYTES,
    MAX_HTML_BYTES, MAX_QUICK_ACTIONS, MAX_TRIM_BYTES,
};
use postern_mail::reply::trim_cut_notice;
use postern_mail::{AddressTemplate, Analysis, AnalysisOptions, analyse};

const HEADERS: &str = "From: jake@example.com\r\n\
    To: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@example.com\r\n\
    Subject: hostile\r\n\
    Message-ID: <hostile@example.com>\r\n";

fn inspect(raw: &[u8]) -> Analysis {
    let options = AnalysisOptions {
        incoming_address: Some(AddressTemplate::new("incoming+%{key}@example.com")),
        ..AnalysisOptions::default()
    };
    analyse(raw, &options)
}

fn plain(body: &str) -> Vec<u8> {
    format!("{HEADERS}Content-Type: text/plain\r\n\r\n{body}").into_bytes()
}

#[test]
fn a_quick_action_flood_lists_the_cap_and_counts_the_rest() {
    let lines = MAX_QUICK_ACTIONS * 3;
    let analysis = inspect(&plain(&"/label ~a\n".repeat(lines)));
    assert_eq!(analysis.quick_actions.len(), MAX_QUICK_ACTIONS);
    assert_eq!(analysis.quick_actions_total, lines);
    assert_eq!(analysis.quick_actions[0], "/label ~a");
}

#[test]
fn a_body_past_the_trim_cap_is_cut_with_a_notice() {
    let line = "my own words, no quote anywhere\n";
    let analysis = inspect(&plain(&line.repeat(MAX_TRIM_BYTES / line.len() + 50)));
    assert!(
        analysis.body.ends_with(&trim_cut_notice()),
        "{}",
        analysis.body.len()
    );
    assert!(analysis.body.len() <= MAX_TRIM_BYTES + trim_cut_notice().len() + 2);
}

#[test]
fn html_past_the_cap_is_cut_with_a_notice() {
    let unit = "<p>a paragraph of the reply</p>";
    let html = unit.repeat(MAX_HTML_BYTES / unit.len() + 50);
    let raw = format!("{HEADERS}Content-Type: text/html\r\n\r\n{html}");
    let analysis = inspect(raw.as_bytes());
    assert!(analysis.body.ends_with(&cut_notice()));
    assert!(analysis.body.starts_with("a paragraph of the reply"));
}

#[test]
fn a_header_flood_keeps_the_first_headers_and_the_body() {
    let mut raw = HEADERS.as_bytes().to_vec();
    while raw.len() <= MAX_HEADER_BYTES {
        raw.extend_from_slice(b"Received: from a by b for <x@y>\r\n");
    }
    raw.extend_from_slice(b"Auto-Submitted: auto-replied\r\n\r\nthe reply\r\n");
    let analysis = inspect(&raw);
    assert_eq!(analysis.subject.as_deref(), Some("hostile"));
    assert_eq!(analysis.body, "the reply");
    // The header past the cap is not read.
    assert!(!analysis.auto_generated);
}

#[test]
fn an_attachment_flood_lists_the_cap_with_short_names() {
    let count = MAX_ATTACHMENTS_LISTED + 20;
    let long = "n".repeat(300);
    let mut raw = format!(
        "{HEADERS}Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    );
    for i in 0..count {
        raw.push_str(&format!(
            "--b\r\nContent-Type: image/png\r\n\
             Content-Disposition: attachment; filename=\"{long}{i}.png\"\r\n\r\nx\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    let analysis = inspect(raw.as_bytes());
    assert_eq!(analysis.attachments_total, count);
    assert_eq!(analysis.attachments.len(), MAX_ATTACHMENTS_LISTED);
    for attachment in &analysis.attachments {
        assert!(attachment.filename.len() <= MAX_ATTACHMENT_NAME_BYTES);
        assert!(attachment.filename.ends_with(".png"));
    }
}

#[test]
fn a_mime_part_flood_ends_at_the_boundary_cap() {
    let mut raw =
        format!("{HEADERS}Content-Type: multipart/mixed; boundary=b\r\n\r\n").into_bytes();
    for i in 0..MAX_BOUNDARY_LINES + 500 {
        raw.extend_from_slice(
            format!("--b\r\nContent-Disposition: attachment; filename=\"{i}.txt\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    let analysis = inspect(&raw);
    assert_eq!(analysis.attachments_total, MAX_BOUNDARY_LINES);
}

#[test]
fn deep_nesting_is_read_without_recursion() {
    let mut raw = HEADERS.as_bytes().to_vec();
    for depth in 0..5_000 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
    let analysis = inspect(&raw);
    // Deeper than the walk goes: nothing is found, and nothing overflows.
    assert_eq!(analysis.attachments_total, 0);
}

/// A Message-ID is written back into a composed header (In-Reply-To, References of a reject
/// notice or a thank-you) only when it cannot fold, inject a header or overflow the line.
#[test]
fn only_plain_message_ids_are_written_back_into_headers() {
    use postern_mail::header_message_id;
    assert_eq!(
        header_message_id("CADkmRc+rNGA=otpp@mail.gmail.com"),
        Some("CADkmRc+rNGA=otpp@mail.gmail.com")
    );
    for hostile in [
        "a@b\r\nBcc: victim@example.com",
        "a@b\r\n continued",
        "a\r@b",
        "a b@c",
        "a>@b",
        "",
        "\u{e9}t\u{e9}@example.com",
    ] {
        assert_eq!(header_message_id(hostile), None, "{hostile:?}");
    }
    let long = format!("{}@example.com", "x".repeat(300));
    assert_eq!(header_message_id(&long), None);
}
