//! HTML mail bodies into Markdown (GitLab's html2text and kramdown steps) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let _ = postern_mail::html::html_to_markdown(&html);
});
