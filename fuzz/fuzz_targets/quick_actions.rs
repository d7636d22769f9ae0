//! Quick actions: the one-pass scanner gives exactly the matches of GitLab's pattern run as a
//! regular expression (the old implementation, kept as an oracle), and finding, extracting
//! (capped and not) and redacting agree with each other, on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_mail::{
    extract_quick_actions, extract_quick_actions_capped, find_quick_actions, redact_quick_actions,
    scan_quick_actions,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let all = find_quick_actions(&text);
    let scan = scan_quick_actions(&text);
    assert_eq!(scan.total, all.len());
    assert!(all.starts_with(&scan.actions));
    let (rest, extracted) = extract_quick_actions(&text);
    assert_eq!(extracted, all);
    assert!(rest.len() <= text.len());
    let (_, capped) = extract_quick_actions_capped(&text, 2);
    assert_eq!(capped.total, all.len());
    assert_eq!(capped.actions.len(), all.len().min(2));
    let redacted = redact_quick_actions(&text);
    // The oracle is quadratic: short inputs only.
    if text.len() <= 4096 {
        use postern_mail::quick_actions::oracle;
        assert_eq!(all, oracle::find_quick_actions(&text));
        assert_eq!((rest, extracted), oracle::extract_quick_actions(&text));
        assert_eq!(redacted, oracle::redact_quick_actions(&text));
    }
});
