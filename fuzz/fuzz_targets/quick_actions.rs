//! Quick actions: finding, extracting (capped and not) and redacting agree with each other on
//! arbitrary text, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_mail::{
    extract_quick_actions, extract_quick_actions_capped, find_quick_actions,
    redact_quick_actions, scan_quick_actions,
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
    let _ = redact_quick_actions(&text);
});
