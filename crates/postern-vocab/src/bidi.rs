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

/// `html` with each bidirectional control in its *text* replaced by what `replacement` writes
/// for it (given the character and its name), as HTML: a page shows it as a visible, isolated
/// mark, a mail's HTML part as a mark without the character. Only text between tags is
/// changed: attribute values are left alone (an `<input>` value is the stored text a form sends
/// back, and an attribute cannot hold markup), and so are the elements whose content is not
/// markup (`<textarea>`, `<title>`, `<script>`, `<style>`) and comments. The caller's HTML
/// escapes every `<` of text, so a `<` always starts a tag or a comment. One pass, linear in
/// `html`; written by hand because it needs no HTML parser, only where text is.
pub fn replace_in_html_text(html: String, replacement: impl Fn(char, &str) -> String) -> String {
    if !html.chars().any(is_bidi_control) {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html.as_str();
    while let Some(at) = rest.find('<') {
        replace_in_text(&rest[..at], &replacement, &mut out);
        rest = &rest[at..];
        let end = markup_end(rest);
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    replace_in_text(rest, &replacement, &mut out);
    out
}

/// Text between tags, each control replaced.
fn replace_in_text(text: &str, replacement: &impl Fn(char, &str) -> String, out: &mut String) {
    for c in text.chars() {
        match bidi_control_name(c) {
            Some(name) => out.push_str(&replacement(c, name)),
            None => out.push(c),
        }
    }
}

/// Elements whose content is text the browser does not parse as markup.
const RAW_TEXT_ELEMENTS: [&str; 4] = ["textarea", "title", "script", "style"];

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
    use super::*;

    #[test]
    fn every_control_has_a_name_and_nothing_else_does() {
        for c in ('\u{0}'..='\u{2FFF}').chain(['\u{FEFF}', '\u{1F600}']) {
            assert_eq!(is_bidi_control(c), bidi_control_name(c).is_some(), "{c:?}");
        }
        assert_eq!(bidi_control_name('\u{202E}'), Some("RLO"));
        assert!(!is_bidi_control('a') && !is_bidi_control('\u{05D0}'));
    }

    fn mark(c: char, name: &str) -> String {
        format!("[{name} {:X}]", u32::from(c))
    }

    #[test]
    fn html_without_controls_is_unchanged() {
        let page = "<p title=\"a > b\">x &lt; y</p><textarea>t</textarea>".to_owned();
        assert_eq!(replace_in_html_text(page.clone(), mark), page);
    }

    #[test]
    fn controls_in_text_are_replaced() {
        assert_eq!(
            replace_in_html_text(
                "<h1>Invoice \u{202E}fdp.exe\u{202C} x</h1>".to_owned(),
                mark
            ),
            "<h1>Invoice [RLO 202E]fdp.exe[PDF 202C] x</h1>"
        );
    }

    #[test]
    fn attributes_raw_text_and_comments_keep_their_controls() {
        let page = "<input value=\"a\u{202E}b > c\" title='\u{202E}'>\
                    <TEXTAREA name=x>q\u{202E}r</p></TextArea>\
                    <title>t\u{202E}</title><!-- \u{202E} -->\u{202E}"
            .to_owned();
        let expected = page.replace("-->\u{202E}", "-->[RLO 202E]");
        assert_eq!(replace_in_html_text(page, mark), expected);
    }

    #[test]
    fn unfinished_markup_is_copied_as_it_is() {
        for page in [
            "x\u{202E}<p title=\"\u{202E}",
            "<textarea>\u{202E}",
            "<!-- \u{202E}",
        ] {
            let out = replace_in_html_text(page.to_owned(), mark);
            assert!(out.ends_with(&page[page.find('<').unwrap_or(0)..]), "{out}");
        }
    }
}
