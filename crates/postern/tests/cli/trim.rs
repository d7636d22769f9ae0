//! `postern trim`: the reply trimmer alone, against discourse/email_reply_trimmer's fixtures.

use serde_json::Value;

use crate::support::{Sandbox, assert_keys, read_testdata, ruby_strip, str_field, testdata};

fn expected(dir: &str, name: &str) -> Option<String> {
    let path = testdata().join("reply-trimmer").join(dir).join(name);
    std::fs::read_to_string(path).ok()
}

fn trim_file(sandbox: &Sandbox, name: &str) -> Value {
    let path = testdata().join("reply-trimmer/emails").join(name);
    // GitLab's trimmer, pinned: these compare with the gem.
    let value = sandbox
        .run(&["trim", "--mode", "gitlab", &path.display().to_string()])
        .json();
    assert_keys(&value, &["trimmed", "elided", "embedded", "before"]);
    value
}

#[test]
fn forwarded_mails_match_the_gem() {
    let sandbox = Sandbox::new();
    for name in [
        "email_headers_2.txt",
        "embedded_email_10.txt",
        "forwarded_gmail.txt",
    ] {
        let value = trim_file(&sandbox, name);
        for field in ["trimmed", "elided", "embedded", "before"] {
            let want = expected(field, name)
                .unwrap_or_else(|| panic!("{field}/{name} exists in the fixtures"));
            assert_eq!(
                ruby_strip(str_field(&value, field)),
                ruby_strip(&want),
                "{field} of {name}"
            );
        }
    }
}

#[test]
fn plain_replies_match_the_gem_and_embed_nothing() {
    let sandbox = Sandbox::new();
    for name in ["signatures.txt", "text_only.txt", "quote_only.txt"] {
        let value = trim_file(&sandbox, name);
        for field in ["trimmed", "elided"] {
            let want = expected(field, name)
                .unwrap_or_else(|| panic!("{field}/{name} exists in the fixtures"));
            assert_eq!(
                ruby_strip(str_field(&value, field)),
                ruby_strip(&want),
                "{field} of {name}"
            );
        }
    }
    let text_only = trim_file(&sandbox, "text_only.txt");
    assert_eq!(text_only["embedded"], Value::Null);
    assert_eq!(text_only["before"], Value::Null);
}

#[test]
fn standard_input_and_odd_bytes() {
    let sandbox = Sandbox::new();
    let raw = read_testdata("reply-trimmer/emails/embedded_email_10.txt");
    let from_stdin = sandbox
        .run_with_stdin(&["trim", "--mode", "gitlab", "-"], &raw)
        .json();
    assert_eq!(from_stdin, trim_file(&sandbox, "embedded_email_10.txt"));
    let default = sandbox
        .run_with_stdin(&["trim", "--mode", "gitlab"], &raw)
        .json();
    assert_eq!(default, from_stdin);

    // Not UTF-8, empty: replaced or empty, never refused.
    let odd = sandbox
        .run_with_stdin(&["trim", "-"], b"Hello \xff\xfe world\n\n> quoted\n")
        .json();
    assert!(str_field(&odd, "trimmed").starts_with("Hello"), "{odd:#}");
    let empty = sandbox.run_with_stdin(&["trim", "-"], b"").json();
    assert_eq!(empty["trimmed"], "");
}

#[test]
fn missing_file_exits_66() {
    let sandbox = Sandbox::new();
    let line = sandbox
        .run(&["trim", "absent.txt"])
        .one_line_error(66)
        .to_owned();
    assert!(line.contains("absent.txt"), "{line}");
}

#[test]
fn the_postern_mode_is_the_default_and_keeps_a_forward() {
    let sandbox = Sandbox::new();
    let path = testdata().join("reply-trimmer/emails/forwarded_gmail.txt");
    let path = path.display().to_string();
    let postern = sandbox.run(&["trim", &path]).json();
    assert!(
        str_field(&postern, "trimmed").contains("---------- Forwarded message"),
        "{postern:#}"
    );
    assert_eq!(
        sandbox.run(&["trim", "--mode", "postern", &path]).json(),
        postern
    );
    let gitlab = sandbox.run(&["trim", "--mode", "gitlab", &path]).json();
    assert_eq!(
        ruby_strip(str_field(&gitlab, "trimmed")),
        "This email has been forwarded from Gmail."
    );
}
