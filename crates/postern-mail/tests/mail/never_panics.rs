//! Property tests: arbitrary bytes, and arbitrary header-like text, never make the library panic.

use postern_mail::{AnalysisOptions, ReplyOptions, analyse};
use proptest::prelude::*;

fn all_modes() -> [ReplyOptions; 4] {
    [
        ReplyOptions::default(),
        ReplyOptions {
            append_reply: true,
            trim_mode: postern_mail::trim::TrimMode::Postern,
            ..ReplyOptions::default()
        },
        ReplyOptions {
            append_reply: true,
            ..ReplyOptions::default()
        },
        ReplyOptions {
            trim_reply: false,
            append_reply: false,
            allow_only_quotes: true,
            ..ReplyOptions::default()
        },
    ]
}

fn analyse_all_modes(raw: &[u8]) {
    for reply in all_modes() {
        let options = AnalysisOptions {
            reply,
            ..AnalysisOptions::default()
        };
        let _ = analyse(raw, &options);
    }
}

/// Lines that look like mail: headers the receiver reads, MIME boundaries, quotes, HTML.
fn mail_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "(To|Cc|From|Reply-To|References|Delivered-To|Received|Envelope-To|Auto-Submitted|Precedence|Content-Type|Content-Transfer-Encoding|Content-Disposition): [ -~]{0,60}",
        Just("Content-Type: multipart/mixed; boundary=b".to_owned()),
        Just("Content-Type: text/html; charset=iso-8859-2".to_owned()),
        Just("--b".to_owned()),
        Just("--b--".to_owned()),
        Just(String::new()),
        "> [ -~]{0,40}",
        "On [ -~]{0,30} wrote:",
        "<(div|a|table|td|blockquote|br|p)[ -~]{0,20}>[ -~]{0,20}",
        "=\\?[a-zA-Z0-9-]{1,12}\\?[BQbq]\\?[ -~]{0,20}\\?=",
        "[ -~]{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        analyse_all_modes(&raw);
    }

    #[test]
    fn mail_like_text_never_panics(lines in proptest::collection::vec(mail_like_line(), 0..40), crlf in any::<bool>()) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let raw = lines.join(newline);
        analyse_all_modes(raw.as_bytes());
    }
}
