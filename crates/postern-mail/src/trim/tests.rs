//! Unit and property tests of the trimmer. Expected values marked "gem" were produced by running
//! the Ruby gem (0.2.0 + the lone-bullet rule) on the same input.

use super::*;
use proptest::prelude::*;

#[test]
fn all_regexes_compile() {
    for re in [
        &*CODE_BLOCK,
        &*P_DELIMITER,
        &*P_REPLY_AT_END,
        &*P_REPLY_START,
        &*P_EMBEDDED_NO_QUOTE,
        &*P_EMBEDDED_HUGE_QUOTE,
        &*P_QUOTE_THEN_TEXT,
        &*P_QUOTE_AT_END,
        &*P_HEADER_SPAN,
        &*P_HEADERS,
        &*P_TRAILING_QUOTES,
        &*EX_HEADERS,
        &*EX_FORWARDED,
        &*EX_BEFORE,
    ] {
        assert!(!re.as_str().is_empty());
    }
    // (each submodule's `statics_compile` test covers its own regexes)
    // Every `LazyLock<Regex>` panics on first use if its pattern is wrong; touch them all.
    let samples = [
        "",
        "text",
        "> quote",
        "On Mon, Bob wrote:\n> q",
        "```\ncode\n```",
        "Am 1 schrieb x <a@b.c>:\nOp 1 schreef x:\nDnia 1 napisał(a):\nLe 1 a écrit :",
        "2015 x <img> <a@b.c>\nBob wrote on Monday:\nUnsubscribe: a@b.c",
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nx\n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----",
        ">>> a >>>\nx\n<<< a <<<\n>>>>\ny\n<<<<\n>>>>> \"a\" == b writes:",
        "From: a\nTo: b\nSubject: c\nSent from my iPhone\n[x](y)",
    ];
    for s in samples {
        let _ = trim_split(s);
        let _ = extract_embedded_email(s);
    }
}

// --- GitLab's lone-bullet rule -------------------------------------------------------------

#[test]
fn lone_bullet_lines_do_not_cut_the_reply() {
    // A list whose items are marked by a lone `-` / `*` line (indented, as some clients render
    // plain-text bullets): everything after the markers is kept.
    let input = "Here is my list:\n\n   -\nFirst item.\n   *\nSecond item.\n\nThanks";
    assert_eq!(trim(input), input);
    assert_eq!(trim_split(input).1, "");
    // Unindented, tab-indented and NBSP-indented markers too.
    for marker in ["-", "*", "\t-", "\u{a0}*", "  -  "] {
        let input = format!("Reply\n{marker}\nitem one\n{marker}\nitem two");
        assert_eq!(trim(&input), input, "marker {marker:?}");
    }
}

#[test]
fn real_delimiters_still_cut() {
    // gem: the list survives, `--` starts the signature.
    let input = "Here is my list:\n\n   -\nFirst item.\n   *\nSecond item.\n\n--\nJohn\nCEO";
    assert_eq!(
        trim_split(input),
        (
            "Here is my list:\n\n   -\nFirst item.\n   *\nSecond item.".to_owned(),
            "--\nJohn\nCEO".to_owned()
        )
    );
    for delimiter in ["--", "-- ", "---", "___", "**", "  --  ", "==", "—"] {
        let input = format!("Reply\n\n{delimiter}\nsignature");
        // (the elided part is stripped, like the gem's)
        let elided = format!("{}\nsignature", delimiter.trim_start());
        assert_eq!(trim_split(&input), ("Reply".to_owned(), elided));
    }
}

#[test]
fn the_gems_lone_bullet_fixture() {
    // discourse/email_reply_trimmer test/emails/lone_bullet_vs_separator.txt
    let input = "Here is my reply with a bullet list:\n\n-\nFirst item.\n*\nSecond item.\n\n--\nSignature line that should be trimmed.\n";
    assert_eq!(
        trim(input),
        "Here is my reply with a bullet list:\n\n-\nFirst item.\n*\nSecond item."
    );
}

// --- Line endings, empty and degenerate input ------------------------------------------------

#[test]
fn crlf_is_normalised() {
    let crlf = "Hello\r\n\r\nOn Mon, Bob wrote:\r\n> hi\r\n";
    let lf = "Hello\n\nOn Mon, Bob wrote:\n> hi\n";
    assert_eq!(trim_split(crlf), trim_split(lf));
    assert_eq!(
        trim_split(crlf),
        ("Hello".to_owned(), "On Mon, Bob wrote:\n> hi".to_owned())
    );
    assert_eq!(
        extract_embedded_email(crlf),
        Some(("hi".to_owned(), "Hello".to_owned()))
    );
    // A lone CR is not a line break (the gem only rewrites "\r\n").
    assert_eq!(trim("a\rb"), "a\rb");
}

#[test]
fn empty_and_blank_input() {
    // The gem returns nil here.
    for input in ["", " ", "\n\n", "\r\n", "\t \u{a0}\u{3000}\n"] {
        assert_eq!(trim(input), "", "{input:?}");
        assert_eq!(
            trim_split(input),
            (String::new(), String::new()),
            "{input:?}"
        );
        assert_eq!(extract_embedded_email(input), None, "{input:?}");
    }
}

#[test]
fn input_of_only_quotes() {
    // gem: with no text line, "t?e*[qbe]+$" matches at the first line and keeps just that line;
    // the final "remove trailing quotes" step needs a text line, so it does not apply.
    assert_eq!(
        trim_split("> a\n> b\n> c"),
        ("> a".to_owned(), "> b\n> c".to_owned())
    );
    assert_eq!(
        trim_split("> a\n\n> b"),
        ("> a".to_owned(), "> b".to_owned())
    );
    assert_eq!(extract_embedded_email("> a\n> b"), None);
}

#[test]
fn only_a_signature_or_delimiter() {
    assert_eq!(trim("Sent from my iPhone"), "");
    assert_eq!(trim("--\nsig"), "");
}

// --- Embedded mails --------------------------------------------------------------------------

#[test]
fn reply_below_the_quote() {
    // gem: "when the reply is at the end of the email".
    let input = "On Mon, Bob wrote:\n> q1\n> q2\n\nMy answer at the end";
    assert_eq!(
        trim_split(input),
        (
            "My answer at the end".to_owned(),
            "On Mon, Bob wrote:\n> q1\n> q2".to_owned()
        )
    );
    assert_eq!(
        extract_embedded_email(input),
        Some(("q1\nq2\n\nMy answer at the end".to_owned(), String::new()))
    );
}

#[test]
fn forwarded_message_with_headers() {
    let input = "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, 1 May 2017\nSubject: Hi\nTo: Al <al@example.com>\n\nOriginal body";
    let headers = "From: Bob <bob@example.com>\nDate: Mon, 1 May 2017\nSubject: Hi\nTo: Al <al@example.com>\n\nOriginal body";
    assert_eq!(trim(input), "FYI");
    assert_eq!(
        extract_embedded_email(input),
        Some((headers.to_owned(), "FYI".to_owned()))
    );
}

#[test]
fn underscore_separator_before_outlook_headers() {
    // gem 0.2.0: a line of underscores followed by an embedded-mail marker is not a cut point
    // by itself; the header block below it is.
    let input = "Reply\n\n________________________________\nFrom: Bob\nSent: Monday, 1 May 2017\nTo: Al\nSubject: x\n\nold";
    assert_eq!(trim(input), "Reply");
    assert_eq!(
        extract_embedded_email(input),
        Some((
            "From: Bob\nSent: Monday, 1 May 2017\nTo: Al\nSubject: x\n\nold".to_owned(),
            "Reply".to_owned()
        ))
    );
}

#[test]
fn marker_split_over_two_lines() {
    // preprocess joins "On …\n… wrote:" before classifying.
    assert_eq!(
        trim("Sure.\n\nOn Mon, 1 May 2017, Bob\n<bob@example.com> wrote:\n> old"),
        "Sure."
    );
}

// --- Code blocks (the two deliberate differences) --------------------------------------------

#[test]
fn code_blocks_are_never_trimmed() {
    let input = "Look:\n\n```\n# not a delimiter\n--\n> not a quote\n```\n\nEnd.";
    assert_eq!(trim(input), input);
}

#[test]
fn code_blocks_come_back_byte_for_byte() {
    // The gem's `gsub!(token, block)` would turn `\\` into `\` and `\0` into the token.
    let input = "Look:\n\n```\nC:\\\\dir \\0 \\1\n```\n\n-- \nsig";
    assert_eq!(
        trim_split(input),
        (
            "Look:\n\n```\nC:\\\\dir \\0 \\1\n```".to_owned(),
            "-- \nsig".to_owned()
        )
    );
}

#[test]
fn elided_code_blocks_are_restored() {
    // The gem leaves its random token in the elided part; here the block comes back.
    assert_eq!(
        trim_split("Reply\n\n-- \n```\ncode\n```"),
        ("Reply".to_owned(), "-- \n```\ncode\n```".to_owned())
    );
}

// --- Properties ------------------------------------------------------------------------------

/// The gem is *not* idempotent, so no idempotence property is asserted. Two examples (checked
/// against the gem): a trailing-whitespace-only remainder, and an "Unsubscribe" footer that only
/// becomes the last line after the first pass.
#[test]
fn trim_is_not_idempotent_like_the_gem() {
    let once = trim("\u{3000}\nSent from my iPhone");
    assert_eq!(once, "\u{3000}");
    assert_eq!(trim(&once), "");
    let once = trim("Unsubscribe: a@b.c\n-- \nx");
    assert_eq!(once, "Unsubscribe: a@b.c");
    assert_eq!(trim(&once), "");
}

/// Output can be *longer* than the input in the gem: enclosed quotes (`>>> x >>>` … `<<< x <<<`)
/// are rewritten with a `> ` prefix per line.
#[test]
fn enclosed_quotes_can_lengthen_the_output() {
    let body: String = (0..20).map(|i| format!("l{i}\n")).collect();
    let input = format!("Text\n>>>x>>>\n{body}<<<x<<<\nMore text");
    let out = trim(&input);
    assert!(out.chars().count() > input.chars().count());
    assert!(out.contains("> l0\n> l1\n"));
}

/// Lines a real mail is made of, to steer proptest towards the interesting paths.
const LINES: &[&str] = &[
    "",
    " ",
    "Hello there",
    "On Mon, 12 May 2014, Bob <bob@example.com> wrote:",
    "On Mon,",
    "Bob wrote:",
    "> quoted",
    "> > nested",
    "--",
    "-- ",
    "-",
    "   *",
    "___",
    "Sent from my iPhone",
    "From: Bob",
    "Sent: Monday, 12 May 2014",
    "To: Al",
    "Subject: hi",
    "-----Original Message-----",
    "2015-10-18 0:17 GMT+03:00 Matt <a@b.co>:",
    "Am 18.09.2013 um 16:24 schrieb x <a@b.c>:",
    "Bob wrote on Monday:",
    "```",
    ">>> a >>>",
    "<<< a <<<",
    "Bob> hi",
    "| a | b |",
    "-----BEGIN PGP SIGNATURE-----",
    "Unsubscribe: a@b.c",
];

fn mail_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(LINES).prop_map(str::to_owned),
            "[ -~\u{a0}ßﬆ²\r\t]{0,20}",
        ],
        0..30,
    )
    .prop_map(|lines| lines.join("\n"))
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        mail_like(),
        "[On wrote:\n>*_<|@.2013 -]{0,200}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics(text in any_text()) {
        let (kept, elided) = trim_split(&text);
        prop_assert_eq!(&kept, &trim(&text));
        let _ = elided;
        let _ = extract_embedded_email(&text);
    }

    /// Without enclosed quotes (which need a `<<<` closing line, see
    /// `enclosed_quotes_can_lengthen_the_output`) every step only removes or replaces text by
    /// something no longer, so neither part can outgrow the input.
    #[test]
    fn output_never_longer_than_input(text in any_text()) {
        prop_assume!(!text.contains("<<<"));
        let input_len = text.replace("\r\n", "\n").chars().count();
        let (kept, elided) = trim_split(&text);
        prop_assert!(kept.chars().count() <= input_len, "kept {:?}", kept);
        prop_assert!(elided.chars().count() <= input_len, "elided {:?}", elided);
    }

    /// The kept reply is made of the input's own lines (after preprocessing), so a reply with no
    /// markup at all comes back unchanged.
    #[test]
    fn plain_text_is_kept(words in prop::collection::vec("[a-z]{1,8}( [a-z]{1,8}){0,6}", 1..20)) {
        let text = words.join("\n");
        prop_assert_eq!(trim(&text), text);
    }
}

// --- Performance shapes (timed by the benchmark, never here) ---------------------------------

#[test]
fn long_quote_chain_and_bq_tail_run() {
    // The benchmark's 20 000-line quote chain with nested "On … wrote:" blocks.
    let mut chain = String::from("My reply\r\n\r\n");
    for depth in 0..20_000 {
        let quote = ">".repeat(depth % 40 + 1);
        if depth % 50 == 0 {
            chain.push_str(&format!(
                "{quote} On Mon, 1 Jan 2024, person{depth} wrote:\r\n"
            ));
        } else {
            chain.push_str(&format!(
                "{quote} line {depth} of the quoted conversation\r\n"
            ));
        }
    }
    assert_eq!(trim(&chain), "My reply");

    // A reply ending in "bq" x 100, both as text and as the line pattern it names (an embedded
    // marker, then a quote, a hundred times).
    let text_tail = format!("My reply\r\n\r\n{}\r\n", "bq".repeat(100));
    assert_eq!(
        trim(&text_tail),
        format!("My reply\n\n{}", "bq".repeat(100))
    );
    let pattern_tail = format!(
        "My reply\n\n{}",
        "On Mon, Bob wrote:\n> quoted\n".repeat(100)
    );
    assert_eq!(trim(&pattern_tail), "My reply");
    assert!(extract_embedded_email(&pattern_tail).is_some());
}
