//! HTML → Markdown, exactly as GitLab turns an HTML-only email reply into note text.
//!
//! When a reply has no `text/plain` part, GitLab's `ReplyParser` runs
//! `Gitlab::Email::HTMLParser.parse_reply(html)` and then trims the quoted part. That parser is:
//!
//! 1. Nokogiri (libxml2's HTML 4 parser) reads the HTML;
//! 2. every `<a>` without `href` is replaced by its children (Outlook litters mail with
//!    `<a name="_MailEndCompose">`, which html2text would print as `[text]`);
//! 3. the document is serialised (`inner_html`), `&nbsp;`/U+00A0 become spaces and CR/CRLF
//!    become LF, and the result is parsed again;
//! 4. `HtmlToMarkdownParser` — a subclass of the html2text gem (soundasleep/html2text_ruby) —
//!    walks the tree: block elements become newlines, `<a href>` becomes `[text](href)`,
//!    table cells are tab-separated with one row per line, headings and blockquotes keep only
//!    their text, list items get `- `; but `em`, `strong`, `details` and `img` are instead
//!    converted by Kramdown to CommonMark (`*x*`, `**x**`, `![alt](src)`, `<details>` kept as
//!    HTML);
//! 5. html2text squeezes the whitespace and strips the result.
//!
//! postern must produce the same text, byte for byte, because the note a user sees (and the
//! quick actions found in it) depend on it. Each step is therefore reproduced as GitLab runs
//! it rather than with a general-purpose HTML5 parser and Markdown converter, whose trees and
//! output differ on exactly the sloppy markup mail clients produce:
//!
//! - `parse` builds libxml2's tree (its auto-closing tables, implied elements, HTML 4
//!   entities, and its limit of 256 nested elements, past which libxml2 stops reading);
//! - `serialize` writes it back the way libxml2 does, since that round trip is observable
//!   (URI-escaped `href`/`src`, formatting newlines);
//! - `html2text` is the gem's walk and clean-up;
//! - `kramdown` is the slice of Kramdown those four elements reach.
//!
//! Every tree walk is iterative or bounded by the parser's depth limit, so no input can
//! exhaust the stack, and every pass is linear in the input size.
//!
//! Known differences from GitLab, none of which ordinary mail runs into:
//! - block markup *inside* `em`/`strong`/`details` (paragraphs, lists, headings, tables, `pre`)
//!   is written back as HTML where Kramdown would convert it natively;
//! - libxml2's serialisation is reproduced for the document round trip, but Kramdown's input
//!   (`node.to_html`) is modelled without its formatting newlines and Kramdown's own HTML
//!   scanner quirks;
//! - the libxml2 modelled is the 2.9–2.13 series (Nokogiri up to 1.18); libxml2 2.14's HTML5
//!   tokenizer decodes entities and comments differently;
//! - CR is normalised before the first parse, where GitLab does it before the second, which
//!   only shows inside attribute values and raw emphasis HTML.

mod dom;
mod entities;
mod html2text;
mod kramdown;
mod parse;
mod serialize;
mod tables;

pub use crate::limits::MAX_HTML_BYTES;

/// What GitLab's `Gitlab::Email::HTMLParser.parse_reply(html)` returns: the HTML converted to
/// Markdown-ish text.
///
/// Reply trimming (cutting the quoted previous message) is a separate, later step (the `trim`
/// module); this function converts the whole document.
///
/// ```
/// use postern_mail::html::html_to_markdown;
///
/// let html = r#"<div dir="ltr">Looks good, <strong>ship it</strong>!<br>See
///     <a href="https://gitlab.example/-/issues/1">the issue</a>.</div>"#;
/// assert_eq!(
///     html_to_markdown(html),
///     "Looks good, **ship it**!\nSee [the issue](https://gitlab.example/-/issues/1)."
/// );
/// ```
///
/// Only the first [`MAX_HTML_BYTES`] are converted (the tree costs tens of bytes per input byte):
/// longer HTML is cut at the last tag opening before that size and the text ends with
/// [`cut_notice`].
pub fn html_to_markdown(html: &str) -> String {
    // libxml2 skips a UTF-8 byte order mark before parsing.
    let html = html.strip_prefix('\u{feff}').unwrap_or(html);
    let (html, cut) = cut_at_tag(html, MAX_HTML_BYTES);
    let mut text = convert(html);
    if cut {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&cut_notice());
    }
    text
}

/// The line that ends the text of HTML cut at [`MAX_HTML_BYTES`].
pub fn cut_notice() -> String {
    format!("[HTML cut: only its first {MAX_HTML_BYTES} bytes were converted to text.]")
}

/// Appends `text` to `out` with each run of the characters `is_space` accepts as one space:
/// the white-space collapsing of both converters, each with its own idea of white space.
fn collapse_runs(text: &str, out: &mut String, is_space: impl Fn(char) -> bool) {
    let mut in_run = false;
    for c in text.chars() {
        if is_space(c) {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
}

/// `html` up to `max` bytes, ending before the last `<` in that prefix (so no tag is cut in
/// half) and on a character boundary; whether anything was cut.
fn cut_at_tag(html: &str, max: usize) -> (&str, bool) {
    let end = crate::limits::cut_point(html, max, b'<');
    (&html[..end], end < html.len())
}

/// The conversion proper, on HTML already within the cap.
fn convert(html: &str) -> String {
    // html2text's `fix_newlines`, done before the first parse so that CR never reaches text.
    let html = html.replace("\r\n", "\n").replace('\r', "\n");

    let serialized = {
        let mut document = parse::parse(&html);
        drop(html);
        document.unwrap_links_without_href();
        serialize::serialize_document(&document)
    };

    // html2text's `replace_entities` on the serialised document: every no-break space is a
    // plain space from here on (`&nbsp;` itself is never produced by the serialiser).
    let serialized = serialized.replace('\u{a0}', " ");
    let document = parse::parse(&serialized);
    drop(serialized);
    html2text::convert(&document)
}

#[cfg(test)]
mod tests {
    use super::{MAX_HTML_BYTES, cut_notice, html_to_markdown};

    #[test]
    fn html_over_the_cap_is_cut_at_a_tag_with_a_notice() {
        let unit = "<p>paragraph é</p>";
        let html = unit.repeat(MAX_HTML_BYTES / unit.len() + 10);
        let text = html_to_markdown(&html);
        assert!(
            text.ends_with(&format!("paragraph é\n\n{}", cut_notice())),
            "{}",
            &text[text.len() - 200..]
        );
        // Text without any tag is cut on a character boundary.
        let plain = "é".repeat(MAX_HTML_BYTES);
        let text = html_to_markdown(&plain);
        assert!(text.ends_with(&cut_notice()));
        assert!(text.len() <= MAX_HTML_BYTES + cut_notice().len() + 2);
    }

    #[test]
    fn empty_and_text_only_input() {
        assert_eq!(html_to_markdown(""), "");
        assert_eq!(html_to_markdown("   \n "), "");
        assert_eq!(html_to_markdown("plain text"), "plain text");
        assert_eq!(html_to_markdown("\u{feff}<p>bom</p>"), "bom");
        assert_eq!(html_to_markdown("<p>crlf\r\nline</p>"), "crlf line");
        assert_eq!(html_to_markdown("a &amp; b &lt;c&gt;"), "a & b <c>");
    }

    #[test]
    fn links() {
        assert_eq!(
            html_to_markdown(r#"<a href="http://foo.com">A link</a>"#),
            "[A link](http://foo.com)"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="http://foo.com">foo.com</a>"#),
            "foo.com"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="mailto:a@b.c">a@b.c</a>"#),
            "a@b.c"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="http://foo.com"></a>"#),
            "http://foo.com"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="http://foo.com" title="T"></a>"#),
            "[T](http://foo.com)"
        );
        assert_eq!(html_to_markdown(r#"<a name="x">no href</a>"#), "no href");
        assert_eq!(
            html_to_markdown(r#"<a href="http://x.y/a b">l</a>"#),
            "[l](http://x.y/a%20b)"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="http://x.y"><img src="i.png" alt="Logo"></a>"#),
            "[![Logo](i.png)](http://x.y)"
        );
        assert_eq!(
            html_to_markdown(r#"<a href="u">x</a><h1>T</h1>"#),
            "[x](u)\n\nT"
        );
    }

    #[test]
    fn emphasis_goes_through_kramdown() {
        assert_eq!(html_to_markdown("<em>it's</em>"), "*it\\'s*");
        // Each element is its own Kramdown document, so no `{::}` separates neighbours…
        assert_eq!(html_to_markdown("<strong>a</strong><em>b</em>"), "**a***b*");
        // …but nested ones are converted together.
        assert_eq!(
            html_to_markdown("<strong><em>a</em><em>b</em></strong>"),
            "***a*{::}*b***"
        );
        assert_eq!(
            html_to_markdown("<strong>Note: </strong>x"),
            "<strong>Note: </strong>x"
        );
        assert_eq!(html_to_markdown("<b>bold</b> <i>it</i>"), "bold it");
        assert_eq!(
            html_to_markdown(r#"<strong><a href="http://x.y" target="_blank">l</a></strong>"#),
            "**[l][1]{: target=\"_blank\"}**\n\n[1]: http://x.y"
        );
        assert_eq!(html_to_markdown("<em>a<br>b</em>"), "*a\nb*");
        assert_eq!(
            html_to_markdown("<strong><code>x_y</code></strong>"),
            "**`x_y`**"
        );
    }

    #[test]
    fn images_keep_only_alt_and_src() {
        assert_eq!(
            html_to_markdown(
                r#"<img class="c" src="http://i/x.png?a=1&amp;b=2" width="1" alt="A [b]" title="t">"#
            ),
            "![A \\[b\\]](http://i/x.png?a=1&amp;b=2)"
        );
        assert_eq!(
            html_to_markdown(r#"<img src="x(1).png">"#),
            "![](<x(1).png>)"
        );
        assert_eq!(html_to_markdown("<img>"), "![]()");
    }

    #[test]
    fn blocks_lists_tables_and_breaks() {
        assert_eq!(html_to_markdown("<p>one</p><p>two</p>"), "one\n\ntwo");
        assert_eq!(html_to_markdown("<div>one</div><div>two</div>"), "one\ntwo");
        assert_eq!(
            html_to_markdown("line<br>break<br/>again"),
            "line\nbreak\nagain"
        );
        assert_eq!(
            html_to_markdown("<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>"),
            "- a\n- b\n- c"
        );
        assert_eq!(
            html_to_markdown("<ol><li>a</li><li>b</li></ol>"),
            "- a\n- b"
        );
        assert_eq!(
            html_to_markdown(
                "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
            ),
            "A\tB\n1\t2"
        );
        assert_eq!(
            html_to_markdown("<h1>Title</h1><p>body</p>"),
            "Title\n\nbody"
        );
        // Leading text gets libxml2's implied `<p>`, which `<hr>` closes.
        assert_eq!(
            html_to_markdown("a<hr>b"),
            "a\n---------------------------------------------------------------\nb"
        );
        // html2text gives `blockquote` no newlines of its own: only inner blocks separate it.
        assert_eq!(
            html_to_markdown("<blockquote>quoted</blockquote>after"),
            "quotedafter"
        );
        assert_eq!(
            html_to_markdown("<blockquote><p>quoted</p></blockquote>after"),
            "quoted\nafter"
        );
        assert_eq!(html_to_markdown("<pre>  keep\n  this</pre>"), "keep this");
    }

    #[test]
    fn whitespace_and_entities() {
        assert_eq!(html_to_markdown("a&nbsp;&nbsp;b\u{a0}c"), "a b c");
        assert_eq!(
            html_to_markdown("<p>  lots   of\n\n  space  </p>"),
            "lots of space"
        );
        assert_eq!(
            html_to_markdown("&eacute;&#233;&#xE9;&hellip;&apos;"),
            "ééé…'"
        );
        assert_eq!(html_to_markdown("&notanentity; AT&T"), "&notanentity; AT&T");
        assert_eq!(
            html_to_markdown("<style>p{}</style><script>x()</script><title>t</title>v"),
            "v"
        );
    }

    #[test]
    fn details_stay_html() {
        assert_eq!(
            html_to_markdown("<details open><summary>One</summary> Some details</details>"),
            "<details>\n<summary>\nOne</summary>\nSome details</details>"
        );
    }
}
