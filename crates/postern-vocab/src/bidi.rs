//! Unicode's bidirectional formatting characters: the marks, embeddings, overrides and
//! isolates that change the order in which the text around them is shown, without showing
//! themselves. A title holding `Invoice U+202E fdp.exe` reads "Invoice exe.pdf" (the
//! "Trojan Source" trick), so every place that shows text from outside either removes them
//! (a subject line) or makes them visible and contains them (a web page). The set is GitLab's
//! (`Gitlab::Unicode::BIDI_REGEXP`), named once here for both.

/// Whether `c` is a bidirectional formatting character: ALM (U+061C), LRM and RLM
/// (U+200E, U+200F), the embeddings and overrides U+202A to U+202E, and the isolates
/// U+2066 to U+2069.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The short name Unicode gives a bidirectional formatting character (`RLO` for U+202E), or
/// `None` for any other character.
pub fn bidi_control_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{061C}' => "ALM",
        '\u{200E}' => "LRM",
        '\u{200F}' => "RLM",
        '\u{202A}' => "LRE",
        '\u{202B}' => "RLE",
        '\u{202C}' => "PDF",
        '\u{202D}' => "LRO",
        '\u{202E}' => "RLO",
        '\u{2066}' => "LRI",
        '\u{2067}' => "RLI",
        '\u{2068}' => "FSI",
        '\u{2069}' => "PDI",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_has_a_name_and_nothing_else_does() {
        for c in ('\u{0}'..='\u{2FFF}').chain(['\u{FEFF}', '\u{1F600}']) {
            assert_eq!(is_bidi_control(c), bidi_control_name(c).is_some(), "{c:?}");
        }
        assert_eq!(bidi_control_name('\u{202E}'), Some("RLO"));
        assert!(!is_bidi_control('a') && !is_bidi_control('\u{05D0}'));
    }
}
