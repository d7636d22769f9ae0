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

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| sanitizer(true));

/// [`SANITIZER`] for the Markdown stored from a mail, shown beside the mail itself: its remote
/// images (tracking pixels among them) do not load either.
static MAIL_TEXT_SANITIZER: LazyLock<ammonia::Builder<'static>> =
    LazyLock::new(|| sanitizer(false));

fn sanitizer(remote_images: bool) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::Custom(Box::new(same_site_only)))
        // An image loads by itself: a relative `src` (`![](x)` from a mail's `<img src="x">`)
        // would make the browser ask postern for `/projects/1/issues/x`. Only postern's own
        // uploads are relative sources worth loading.
        .attribute_filter(move |element, attribute, value| {
            if (element, attribute) != ("img", "src") {
                return Some(Cow::Borrowed(value));
            }
            let lower = value.trim().to_ascii_lowercase();
            let remote = lower.starts_with("http:") || lower.starts_with("https:");
            ((remote && remote_images) || upload_path_only(value).is_some())
                .then_some(Cow::Borrowed(value))
        });
    builder
}

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
    SANITIZER.clean(&to_html(text)).to_string()
}

/// [`render_markdown`] for text stored from a mail: no image but postern's uploads loads.
fn render_mail_text(text: &str) -> String {
    without_empty_images(&MAIL_TEXT_SANITIZER.clean(&to_html(text)).to_string())
}

/// pulldown-cmark's HTML of `text`, not yet sanitised.
fn to_html(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut rendered = String::with_capacity(text.len() * 2);
    html::push_html(&mut rendered, Parser::new_ext(text, options));
    rendered
}

/// The readable view of a mail's HTML part: sanitised HTML, and how many remote images were
/// blocked.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct MailView {
    /// Sanitised HTML, safe to put into a page unescaped.
    pub(crate) html: String,
    /// Images that would have been loaded from another server (tracking pixels among them).
    pub(crate) remote_images_blocked: usize,
    /// The Markdown stored from the mail, rendered without remote images.
    pub(crate) stored_html: String,
}

/// Elements an incoming mail's HTML keeps: structure, text styling as elements, tables, links
/// and images. No `style` or `class` (a mail's CSS would restyle the page), no forms, frames,
/// scripts, media or `base`.
const MAIL_TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "center",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
];

/// The readable view of the HTML part of mail `raw`, `None` when it has none. `markdown` is
/// what was stored from the mail, whose upload links (`/uploads/<secret>/<name>`) hold its
/// attachments: an inline image (`cid:`) is shown from the upload of the same name, in place. Remote images
/// are removed and counted, and so is every other image source, relative ones above all: the
/// page must never make the browser ask postern, or anyone, for a URL the mail chose.
pub(crate) fn mail_view(raw: &[u8], markdown: &str) -> Option<MailView> {
    use mail_parser::{MimeHeaders, PartType};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let message = mail_parser::MessageParser::default().parse(raw)?;
    let html = message
        .html_body
        .iter()
        .find_map(|id| match &message.part(*id)?.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })?;
    let uploads = upload_links(markdown);
    // Content-ID (without its angle brackets) → the upload stored for that part.
    let mut inline = std::collections::HashMap::new();
    for part in &message.parts {
        let (Some(cid), Some(name)) = (part.content_id(), part.attachment_name()) else {
            continue;
        };
        let cid = cid
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        if let Some(url) = uploads
            .iter()
            .find(|(stored, _)| same_file_name(stored, name))
            .map(|(_, url)| url.clone())
        {
            inline.insert(cid, url);
        }
    }
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(MAIL_TAGS.iter().copied().collect())
        .tag_attributes(std::collections::HashMap::from([
            ("a", HashSet::from(["href"])),
            ("img", HashSet::from(["src", "alt", "width", "height"])),
            ("td", HashSet::from(["colspan", "rowspan"])),
            ("th", HashSet::from(["colspan", "rowspan"])),
        ]))
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean_content_tags(HashSet::from(["script", "style", "title"]))
        .attribute_filter(move |element, attribute, value| {
            match (element, attribute) {
                ("img", "src") => {
                    let value = value.trim();
                    if value
                        .get(..4)
                        .is_some_and(|s| s.eq_ignore_ascii_case("cid:"))
                    {
                        return inline.get(&value[4..]).map(|url| Cow::Owned(url.clone()));
                    }
                    let lower = value.to_ascii_lowercase();
                    if lower.starts_with("http:")
                        || lower.starts_with("https:")
                        || lower.starts_with("//")
                    {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
                // Links go to other sites only; a relative one would point into postern.
                ("a", "href") => {
                    let lower = value.trim().to_ascii_lowercase();
                    ["http:", "https:", "mailto:"]
                        .iter()
                        .any(|scheme| lower.starts_with(scheme))
                        .then_some(Cow::Borrowed(value))
                }
                _ => Some(Cow::Borrowed(value)),
            }
        })
        // What is left relative is an upload link set above, or nothing.
        .url_relative(ammonia::UrlRelative::Custom(Box::new(upload_path_only)));
    let html = without_empty_images(&builder.clean(&html).to_string());
    Some(MailView {
        html,
        remote_images_blocked: blocked.load(Ordering::Relaxed),
        stored_html: render_mail_text(markdown),
    })
}

/// `html` (ammonia's output) without the `<img>` elements whose source was removed: they
/// would show as broken images.
fn without_empty_images(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<img") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        // The tag ends at the first `>` outside an attribute value; ammonia's serialiser
        // always quotes values with `"` (and escapes `"` inside them).
        let mut quoted = false;
        let end = tail
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map_or(tail.len(), |(end, _)| end + 1);
        let tag = &tail[..end];
        if tag.contains(" src=\"") {
            out.push_str(tag);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Keeps a relative URL only if it is one of postern's upload paths.
fn upload_path_only(url: &str) -> Option<Cow<'_, str>> {
    (url.starts_with("/uploads/") && !url.contains("..")).then_some(Cow::Borrowed(url))
}

/// `(file name, link)` of every `/uploads/<secret>/<name>` link in `markdown`, in order.
fn upload_links(markdown: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("/uploads/") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c == ')' || c == '"' || c == '>' || c.is_whitespace())
            .unwrap_or(tail.len());
        let link = &tail[..end];
        let mut parts = link["/uploads/".len()..].splitn(2, '/');
        if let (Some(secret), Some(name)) = (parts.next(), parts.next())
            && secret.len() == 32
            && secret.bytes().all(|b| b.is_ascii_hexdigit())
            && !name.is_empty()
        {
            links.push((name.to_owned(), link.to_owned()));
        }
        rest = &tail[end.max(1)..];
    }
    links
}

/// Whether a stored upload name is the mail part's name, as processing made it safe for a
/// path and a URL.
fn same_file_name(stored: &str, part: &str) -> bool {
    stored == part || stored == postern_core::content::sanitize_file_name(part)
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
             <img src=\"//evil.example/p.png\"> [ok](/uploads/s/a.png) [rel](notes#n1) \
             ![relative](x) ![up](/uploads/0123456789abcdef0123456789abcdef/a.png)",
        );
        assert!(!html.contains("src=\"x\""), "{html}");
        assert!(
            html.contains("src=\"/uploads/0123456789abcdef0123456789abcdef/a.png\""),
            "{html}"
        );
        assert!(!html.contains("evil.example"), "{html}");
        assert!(html.contains("href=\"/uploads/s/a.png\""), "{html}");
        assert!(html.contains("href=\"notes#n1\""), "{html}");
    }

    #[test]
    fn mail_html_keeps_tables_and_inline_images_and_blocks_the_rest() {
        let secret = "0123456789abcdef0123456789abcdef";
        let raw = "From: c@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/related; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><head><title>T</title><style>p{color:red}</style></head><body>\
             <p style=\"color:red\" class=\"x\">Line one<br>Line two</p>\
             <table><tr><th>Item</th><th>Total</th></tr><tr><td>Tea</td><td>3</td></tr></table>\
             <img src=\"cid:logo@x\" alt=\"logo\"><img src=\"https://tracker.example/p.gif\">\
             <img src=\"//cdn.example/q.png\"><img src=\"x\"><a href=\"x\">rel</a>\
             <a href=\"https://example.com/\">abs</a><script>alert(1)</script></body></html>\r\n\
             --b\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@x>\r\n\
             Content-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             iVBORw0KGgo=\r\n--b--\r\n";
        let markdown = format!("Line one\n\n![logo.png](/uploads/{secret}/logo.png)");
        let view = super::mail_view(raw.as_bytes(), &markdown).expect("an HTML part");
        let html = &view.html;
        assert!(html.contains("Line one<br>Line two"), "{html}");
        assert!(html.contains("<td>Tea</td>"), "{html}");
        assert!(
            html.contains(&format!("src=\"/uploads/{secret}/logo.png\"")),
            "{html}"
        );
        assert_eq!(view.remote_images_blocked, 2, "{html}");
        for bad in [
            "tracker.example",
            "cdn.example",
            "src=\"x\"",
            "href=\"x\"",
            "color:red",
            "class=",
            "<script",
            "alert",
            "<title",
            ">T<",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("href=\"https://example.com/\""), "{html}");
        assert!(super::mail_view(b"Subject: plain\r\n\r\ntext only\r\n", "").is_none());
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
