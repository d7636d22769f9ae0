//! Fuzz input as the `.patch` attachments of one mail, shared by `patch_check` and
//! `patch_reader`.

use postern_git::Patch;

/// Two patches when the input holds a `--` separator line, as a mail with two attachments;
/// otherwise one.
pub fn patches_of(data: &[u8]) -> Vec<Patch> {
    let patch = |name: &str, content: &[u8]| Patch {
        filename: name.to_owned(),
        content: content.to_vec(),
    };
    match data.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => vec![
            patch("0001.patch", &data[..at + 1]),
            patch("0002.patch", &data[at + 4..]),
        ],
        None => vec![patch("0001.patch", data)],
    }
}
