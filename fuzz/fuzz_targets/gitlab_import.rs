//! `postern import` of a GitLab configuration: `gitlab.rb` (a subset of Ruby), `gitlab.yml` and
//! `mail_room.yml` read from arbitrary text. The directory is empty, so relative paths and
//! sibling files resolve to nothing.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use postern_gitlab::ConfigFormat;
use postern_gitlab::import::parse;

/// A directory with nothing in it (created once; libFuzzer's `exit` drops no static, so it is
/// not a temporary directory that would be left behind).
static EMPTY_DIR: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
    let dir = std::path::PathBuf::from("target/gitlab-import-empty");
    let _ = std::fs::create_dir_all(&dir);
    dir
});

fuzz_target!(|data: &[u8]| {
    let (format, text) = match data.split_first() {
        Some((format, text)) => (*format, text),
        None => (0, data),
    };
    let format = match format % 3 {
        0 => ConfigFormat::GitlabRb,
        1 => ConfigFormat::GitlabYml,
        _ => ConfigFormat::MailRoomYml,
    };
    let text = String::from_utf8_lossy(text);
    let _ = parse(&text, format, "fuzz", &EMPTY_DIR);
});
