//! The HTML part of the mail postern sends: the Markdown of a note or description rendered, as
//! GitLab's notification mail renders it (`markdown(@note.note, pipeline: :email)`), while the
//! text part keeps the Markdown source.
//!
//! Mail clients ignore style sheets and strip most of what a page may hold, so the HTML is
//! sanitised to a strict allow-list (no `style`, `class`, script, form or event attribute from
//! the text) and then given fixed inline styles per element. Links keep http(s) and mailto;
//! relative ones (uploads, `#note` anchors) are made absolute on the web address when there is
//! one, and dropped when there is none, as a mail has no page to be relative to.

use std::collections::{HashMap, HashSet};

use pulldown_cmark::{Options, Parser, html};

/// Elements the rendered Markdown may keep, and the attributes each may carry.
const TAGS: &[&str] = &[
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The inline style each element gets (mail clients read no style sheet).
const STYLES: &[(&str, &str)] = &[
    ("table", "border-collapse:collapse;margin:8px 0"),
    (
        "th",
        "border:1px solid #ccc;padding:4px 8px;text-align:left;background:#f4f4f4",
    ),
    ("td", "border:1px solid #ccc;padding:4px 8px"),
    (
        "pre",
        "background:#f4f4f4;padding:8px;overflow:auto;white-space:pre-wrap",
    ),
    ("code", "font-family:monospace;background:#f4f4f4"),
    (
        "blockquote",
        "border-left:3px solid #ccc;margin:0;padding-left:8px;color:#555",
    ),
    ("img", "max-width:100%"),
];

/// `markdown` rendered to sanitised HTML with inline styles, for a mail's HTML part;
/// `web_url` (no trailing slash) is what relative links are made absolute on.
pub fn render(markdown: &str, web_url: Option<&str>) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut rendered = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut rendered, Parser::new_ext(markdown, options));
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .tag_attributes(HashMap::from([
            ("a", HashSet::from(["href"])),
            ("img", HashSet::from(["src", "alt"])),
        ]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        // What cannot be shown is dropped with its content, not shown as text.
        .clean_content_tags(HashSet::from(["script", "style"]));
    let base = web_url.and_then(|url| ammonia::Url::parse(&format!("{url}/")).ok());
    builder.url_relative(match base {
        Some(base) => ammonia::UrlRelative::RewriteWithBase(base),
        None => ammonia::UrlRelative::Deny,
    });
    for (tag, style) in STYLES {
        builder.set_tag_attribute_value(*tag, "style", *style);
    }
    // A bidirectional control from the text becomes a visible mark without the character: a
    // mail client may ignore `<bdi>` and styles, and then only its absence keeps
    // `Invoice U+202E fdp.exe` from reading "Invoice exe.pdf".
    postern_vocab::bidi::replace_in_html_text(builder.clean(&rendered).to_string(), |c, name| {
        format!(
            "<bdi style=\"unicode-bidi:isolate;color:#a00\" title=\"U+{:04X}\">[{name}]</bdi>",
            u32::from(c)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn bidirectional_controls_are_marks_without_the_character() {
        let html = render("Invoice \u{202E}fdp.exe attached", None);
        assert!(!html.contains('\u{202E}'), "{html}");
        assert!(
            html.contains(
                "Invoice <bdi style=\"unicode-bidi:isolate;color:#a00\" title=\"U+202E\">[RLO]</bdi>fdp.exe attached"
            ),
            "{html}"
        );
    }

    #[test]
    fn markdown_is_rendered_with_inline_styles() {
        let html = render(
            "We **corrected** it.\n\n| Item | Total |\n|---|---|\n| Tea | 3 |\n",
            None,
        );
        assert!(html.contains("<strong>corrected</strong>"), "{html}");
        assert!(html.contains("<table style=\"border-collapse"), "{html}");
        assert!(
            html.contains("<td style=\"border:1px solid #ccc;padding:4px 8px\">Tea</td>"),
            "{html}"
        );
        assert!(!html.contains("| Item"), "{html}");
    }

    #[test]
    fn nothing_from_the_text_survives_but_the_allow_list() {
        let html = render(
            "<script>alert(1)</script><img src=x onerror=alert(2)>\
             <a href=\"javascript:alert(3)\">j</a><div style=\"color:red\" class=\"x\">d</div>\
             <form action=\"https://evil.example\"><input name=p></form>",
            None,
        );
        for bad in [
            "<script",
            "alert(1)",
            "onerror",
            "javascript:",
            "color:red",
            "class=",
            "<form",
            "<input",
            "src=\"x\"",
        ] {
            assert!(!html.contains(bad), "{bad} survived in {html}");
        }
    }

    #[test]
    fn relative_links_are_made_absolute_on_the_web_address_or_dropped() {
        let text = "[file](/uploads/abc/report.pdf)";
        let html = render(text, Some("https://tracker.example"));
        assert!(
            html.contains("href=\"https://tracker.example/uploads/abc/report.pdf\""),
            "{html}"
        );
        let html = render(text, None);
        assert!(!html.contains("href"), "{html}");
        assert!(html.contains("file"), "{html}");
    }
}
