//! The MIME corpus (`testdata/mime`, from stalwartlabs/mail-parser, Apache-2.0 OR MIT): odd real
//! structures — digests, deep nesting, NUL bytes, 8-bit headers. Each must be read, analysed and
//! serialised without a panic, with LF and with CRLF line endings.

use std::path::PathBuf;

use postern_mail::{AnalysisOptions, ReplyOptions, analyse};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mime");
    let mut messages = Vec::new();
    for folder in ["rfc", "thirdparty"] {
        let dir = root.join(folder);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|ext| ext == "eml") {
                let raw = std::fs::read(&path).expect("readable fixture");
                messages.push((path.display().to_string(), raw));
            }
        }
    }
    messages.sort();
    messages
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (index, &byte) in raw.iter().enumerate() {
        if byte == b'\n' && (index == 0 || raw[index - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

#[test]
fn all_thirty_messages_are_read_with_lf_and_crlf() {
    let messages = corpus();
    assert_eq!(messages.len(), 30, "the corpus has 30 messages");
    for (name, raw) in messages {
        for variant in [raw.clone(), to_crlf(&raw)] {
            for reply in [
                ReplyOptions::default(),
                ReplyOptions {
                    trim_reply: false,
                    append_reply: false,
                    allow_only_quotes: true,
                    ..ReplyOptions::default()
                },
            ] {
                let options = AnalysisOptions {
                    reply,
                    ..AnalysisOptions::default()
                };
                let analysis = analyse(&variant, &options);
                let json = serde_json::to_string(&analysis)
                    .unwrap_or_else(|e| panic!("{name}: not serialisable: {e}"));
                assert!(json.starts_with('{'), "{name}");
            }
        }
    }
}

/// Intake reads only the header block for the content identity; it must find the same
/// Message-ID as the full parse that processing and the LMTP path use, or dedupe across
/// sources would break.
#[test]
fn header_only_message_id_matches_the_full_parse_on_every_message() {
    let mut messages = corpus();
    let gitlab = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gitlab-emails");
    for entry in std::fs::read_dir(&gitlab).expect("gitlab fixtures") {
        let path = entry.expect("directory entry").path();
        messages.push((
            path.display().to_string(),
            std::fs::read(&path).expect("fixture"),
        ));
    }
    // Leading blank lines, a folded header and a message with no header block at all.
    messages.push((
        "leading blank".into(),
        b"\r\n\r\nMessage-ID: <a@b>\r\n\r\nx".to_vec(),
    ));
    messages.push((
        "folded".into(),
        b"Subject: x\r\nMessage-ID:\r\n <folded@example.org>\r\n\r\nbody".to_vec(),
    ));
    messages.push(("no headers".into(), b"just text".to_vec()));
    for (name, raw) in messages {
        for raw in [raw.clone(), to_crlf(&raw)] {
            let full = postern_mail::Email::parse(&raw)
                .message_id()
                .map(str::to_owned);
            assert_eq!(postern_mail::message_id_of(&raw), full, "{name}");
        }
    }
}
