//! `body_of` feeds the content identities already stored, so its answer must stay exactly what
//! it was: the end of the first `\r\n\r\n` or `\n\n`, whichever ends first, else everything.

use postern_core::body_of;

/// The first implementation, kept as the reference.
fn reference(raw: &[u8]) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &raw[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &raw[a..],
        (None, None) => raw,
    }
}

#[test]
fn body_of_matches_the_reference_on_every_short_sequence_of_line_bytes() {
    // Every sequence of up to 8 bytes over {\r, \n, a}: all the ways blank lines, lone CRs and
    // text can meet.
    let alphabet = [b'\r', b'\n', b'a'];
    let mut checked = 0;
    for len in 0..=8u32 {
        for mut n in 0..3usize.pow(len) {
            let mut raw = Vec::new();
            for _ in 0..len {
                raw.push(alphabet[n % 3]);
                n /= 3;
            }
            assert_eq!(body_of(&raw), reference(&raw), "{raw:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 9841);
}

#[test]
fn body_of_matches_the_reference_on_the_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gitlab-emails");
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("fixture");
        assert_eq!(body_of(&raw), reference(&raw));
    }
}
