//! Bidirectional formatting characters in a rendered page, made visible and contained.
//!
//! Text from mail may carry a right-to-left override (U+202E) or another bidirectional
//! control ([`postern_vocab::bidi`]): `Invoice U+202E fdp.exe` shows as "Invoice exe.pdf".
//! The stylesheet's `unicode-bidi: plaintext` keeps such a character inside its own element,
//! but within the element it still reverses what follows. So every one in the text of a page
//! is replaced by a `<bdi>` of its own, whose isolation ends the character's effect where
//! the `<bdi>` ends, and which the stylesheet shows as a small `RLO` mark. The character
//! itself stays inside, so copying the text copies what was written.
//!
//! This runs over the finished HTML of every template page ([`crate::WebState::render`]), so
//! no template can forget it; which parts of the page are text is
//! [`postern_vocab::bidi::replace_in_html_text`]'s to say.

/// `html` with each bidirectional control in its text made a visible, isolated `<bdi>`.
pub(crate) fn isolate_bidi_controls(html: String) -> String {
    postern_vocab::bidi::replace_in_html_text(html, |c, name| {
        format!(
            "<bdi class=\"bidi-control\" title=\"{name} (U+{:04X})\">&#x{:X};</bdi>",
            u32::from(c),
            u32::from(c)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::isolate_bidi_controls as isolate;

    #[test]
    fn controls_in_text_become_visible_isolates() {
        assert_eq!(
            isolate("<h1 dir=\"auto\">Invoice \u{202E}fdp.exe</h1>".to_owned()),
            "<h1 dir=\"auto\">Invoice <bdi class=\"bidi-control\" title=\"RLO (U+202E)\">&#x202E;</bdi>fdp.exe</h1>"
        );
        assert_eq!(
            isolate("a\u{2067}b".to_owned()),
            "a<bdi class=\"bidi-control\" title=\"RLI (U+2067)\">&#x2067;</bdi>b"
        );
    }
}
