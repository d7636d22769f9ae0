//! Markdown from mail and from people, rendered to HTML that cannot run anything.
//!
//! pulldown-cmark renders (raw HTML in the text passes through), then ammonia keeps only an
//! allow-list of tags and attributes: no `script`, `style`, `svg`, `iframe`, event attribute or
//! `style` attribute survives, and links keep only http(s), mailto and relative URLs — and of
//! relative ones only those that stay on this site: `//host/…` (and the `/\host`, `\\host`
//! spellings browsers read the same way) leaves it, so it is removed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::Custom(Box::new(same_site_only)));
    builder
});

/// Keeps a relative URL unless a browser would read it as another host. Browsers drop tabs and
/// line breaks inside URLs, trim surrounding spaces and treat `\` as `/`, so the check does too.
fn same_site_only(url: &str) -> Option<Cow<'_, str>> {
    let mut leading = url
        .trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .take(2);
    let slash = |c: Option<char>| matches!(c, Some('/' | '\\'));
    if slash(leading.next()) && slash(leading.next()) {
        None
    } else {
        Some(Cow::Borrowed(url))
    }
}

/// `text` as sanitised HTML, safe to put into a page unescaped.
pub fn render_markdown(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut rendered = String::with_capacity(text.len() * 2);
    html::push_html(&mut rendered, Parser::new_ext(text, options));
    SANITIZER.clean(&rendered).to_string()
}

#[cfg(test)]
mod tests {
    use super::render_markdown;

    #[test]
    fn markdown_renders() {
        let html = render_markdown("**bold** and [link](https://example.com/x)");
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("href=\"https://example.com/x\""));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
    }

    #[test]
    fn links_to_other_hosts_without_a_scheme_are_dropped() {
        let html = render_markdown(
            "[a](//evil.example/x) <a href=\"/\\evil.example\">b</a> \
             <a href=\" \\\\evil.example\">c</a> <a href=\"/&#9;/evil.example\">d</a> \
             <img src=\"//evil.example/p.png\"> [ok](/uploads/s/a.png) [rel](notes#n1)",
        );
        assert!(!html.contains("evil.example"), "{html}");
        assert!(html.contains("href=\"/uploads/s/a.png\""), "{html}");
        assert!(html.contains("href=\"notes#n1\""), "{html}");
    }

    #[test]
    fn dangerous_html_and_urls_are_dropped() {
        let html = render_markdown(
            "[a](javascript:alert(3))\n\n<script>alert(1)</script><img src=x onerror=alert(2)>\
             <a href=\"data:text/html,x\">d</a>\
             <svg onload=alert(4)></svg><div style=\"background:url(javascript:alert(5))\">s</div>",
        );
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "data:",
            "<svg",
            "onload",
            "style=",
        ] {
            assert!(!html.contains(bad), "{bad} survived in {html}");
        }
    }
}
