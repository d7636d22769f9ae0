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
//! no template can forget it. Only text between tags is changed: attribute values are left
//! alone (an `<input>` value is the stored text a form sends back, and an attribute cannot
//! hold markup), and so are the elements whose content is not markup (`<textarea>`,
//! `<title>`, `<script>`, `<style>`) and comments. The templates escape every `<` of user
//! text, so a `<` in the page always starts a tag or a comment. One pass, linear in the page.

use postern_vocab::bidi::bidi_control_name;

/// Elements whose content is text the browser does not parse as markup.
const RAW_TEXT_ELEMENTS: [&str; 4] = ["textarea", "title", "script", "style"];

/// `html` with each bidirectional control in its text made a visible, isolated `<bdi>`.
pub(crate) fn isolate_bidi_controls(html: String) -> String {
    if !html.chars().any(|c| bidi_control_name(c).is_some()) {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html.as_str();
    while let Some(at) = rest.find('<') {
        out.push_str(&isolate_in_text(&rest[..at]));
        rest = &rest[at..];
        let end = markup_end(rest);
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    out.push_str(&isolate_in_text(rest));
    out
}

/// Text between tags, with each control wrapped.
fn isolate_in_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| bidi_control_name(c).is_some()) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match bidi_control_name(c) {
            Some(name) => out.push_str(&format!(
                "<bdi class=\"bidi-control\" title=\"{name} (U+{:04X})\">&#x{:X};</bdi>",
                u32::from(c),
                u32::from(c)
            )),
            None => out.push(c),
        }
    }
    out.into()
}

/// The length of the markup `html` starts with (it starts with `<`): a comment, or a tag with
/// its attributes (quoted values may hold `>`), and for a raw-text element everything up to
/// its end tag.
fn markup_end(html: &str) -> usize {
    if html.starts_with("<!--") {
        return html.find("-->").map_or(html.len(), |at| at + 3);
    }
    let mut quote = None;
    let mut tag_end = html.len();
    for (at, c) in html.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                tag_end = at + 1;
                break;
            }
            (None, _) => {}
        }
    }
    let name: String = html[1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if !RAW_TEXT_ELEMENTS.contains(&name.as_str()) {
        return tag_end;
    }
    // The content runs to `</name`, whatever its case.
    let content = &html.as_bytes()[tag_end..];
    let closing = name.len() + 2;
    content
        .windows(closing)
        .position(|w| w.starts_with(b"</") && w[2..].eq_ignore_ascii_case(name.as_bytes()))
        .map_or(html.len(), |at| tag_end + at)
}

#[cfg(test)]
mod tests {
    use super::isolate_bidi_controls as isolate;

    const RLO: &str = "<bdi class=\"bidi-control\" title=\"RLO (U+202E)\">&#x202E;</bdi>";

    #[test]
    fn a_page_without_controls_is_unchanged() {
        let page = "<p title=\"a > b\">x &lt; y</p><textarea>t</textarea>".to_owned();
        assert_eq!(isolate(page.clone()), page);
    }

    #[test]
    fn controls_in_text_become_visible_isolates() {
        assert_eq!(
            isolate("<h1 dir=\"auto\">Invoice \u{202E}fdp.exe\u{202C} attached</h1>".to_owned()),
            format!(
                "<h1 dir=\"auto\">Invoice {RLO}fdp.exe<bdi class=\"bidi-control\" \
                 title=\"PDF (U+202C)\">&#x202C;</bdi> attached</h1>"
            )
        );
        assert_eq!(
            isolate("a\u{2067}b".to_owned()),
            format!("a<bdi class=\"bidi-control\" title=\"RLI (U+2067)\">&#x2067;</bdi>b")
        );
    }

    #[test]
    fn attributes_raw_text_and_comments_keep_their_controls() {
        let page = "<input value=\"a\u{202E}b > c\" title='\u{202E}'>\
                    <TEXTAREA name=x>q\u{202E}r</p></TextArea>\
                    <title>t\u{202E}</title><!-- \u{202E} -->\u{202E}"
            .to_owned();
        let expected = page.replace("-->\u{202E}", &format!("-->{RLO}"));
        assert_eq!(isolate(page), expected);
    }

    #[test]
    fn unfinished_markup_is_copied_as_it_is() {
        for page in [
            "x\u{202E}<p title=\"\u{202E}",
            "<textarea>\u{202E}",
            "<!-- \u{202E}",
        ] {
            let out = isolate(page.to_owned());
            assert!(out.ends_with(&page[page.find('<').unwrap_or(0)..]), "{out}");
        }
    }
}
