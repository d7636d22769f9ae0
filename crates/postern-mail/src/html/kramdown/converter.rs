//! The second stage: the kramdown converter (GitLab's Commonmark subclass), which writes the
//! element tree as text — `*…*`/`**…**` with `{::}` between adjacent emphases, reference-style
//! links numbered in order of first use, images, code spans, Markdown escaping, and HTML
//! elements written back with their children converted or kept raw.
//!
//! Ruby builds each element's string and concatenates it into its parent's; here everything is
//! written into one buffer, so deep nesting costs no repeated copying. Where Kramdown tests a
//! child result for emptiness, the position before it is remembered instead.

use super::attributes::{html_attributes, ial_for};
use super::collapse_whitespace;
use super::element::{Category, ContentModel, KEl, Ty};

#[derive(Debug, Default)]
pub(super) struct Context {
    /// Reference links in order of first use: `(href, title)`.
    pub(super) link_refs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Opts {
    raw_text: bool,
    block_raw_text: bool,
    force_raw_text: bool,
    prev: Option<Ty>,
    next: Option<Ty>,
}

pub(super) fn inner(el: &KEl, opts: &Opts, context: &mut Context, out: &mut String) {
    for (index, child) in el.children.iter().enumerate() {
        let mut child_opts = opts.clone();
        child_opts.prev = index
            .checked_sub(1)
            .and_then(|i| el.children.get(i))
            .map(|c| c.ty);
        child_opts.next = el.children.get(index + 1).map(|c| c.ty);
        convert_el(child, child_opts, el, context, out);
    }
}

fn convert_el(el: &KEl, mut opts: Opts, parent: &KEl, context: &mut Context, out: &mut String) {
    match el.ty {
        Ty::Root => inner(el, &opts, context, out),
        Ty::Text => convert_text(el, &opts, parent, out),
        Ty::Em | Ty::Strong => {
            let mark = if el.ty == Ty::Em { "*" } else { "**" };
            out.push_str(mark);
            inner(el, &opts, context, out);
            out.push_str(mark);
            // `{::}` keeps two adjacent emphases apart.
            if matches!(opts.next, Some(Ty::Em | Ty::Strong)) && ial_for(el).is_none() {
                out.push_str("{::}");
            }
        }
        Ty::A => convert_a(el, &opts, context, out),
        Ty::Img => convert_img(el, out),
        Ty::Br => out.push_str("  \n"),
        Ty::Codespan => convert_codespan(&el.value, out),
        Ty::Comment => {
            out.push_str(&el.value);
            let raw_parent = parent.ty == Ty::Html && parent.model == ContentModel::Raw;
            if el.category == Category::Block && !raw_parent {
                out.push('\n');
            }
        }
        Ty::Html => convert_html_element(el, &mut opts, parent, context, out),
    }
    if el.ty != Ty::Html
        && let Some(ial) = ial_for(el)
    {
        out.push_str(&ial);
        if el.is_block() {
            out.push_str("\n\n");
        }
    } else if el.is_block() && (el.ty != Ty::Html || parent.ty != Ty::Html) {
        out.push('\n');
    }
}

fn convert_text(el: &KEl, opts: &Opts, parent: &KEl, out: &mut String) {
    if opts.raw_text || (parent.ty == Ty::Html && parent.model == ContentModel::Raw) {
        out.push_str(&el.value);
        return;
    }
    let value = match el.value.strip_prefix('\n') {
        Some(rest) if opts.prev == Some(Ty::Br) => rest,
        _ => el.value.as_str(),
    };
    let collapsed = collapse_whitespace(value);
    let colon = if opts.prev.is_none() || opts.prev == Some(Ty::Br) {
        Colon::Escape
    } else {
        Colon::Keep
    };
    out.push_str(&escape_markdown(&collapsed, colon));
}

/// What `ESCAPED_CHAR_RE`'s line-start colon alternative turns into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Colon {
    /// Text at the start of its parent or after a line break: `\:`.
    Escape,
    /// Other text: left as written.
    Keep,
    /// Image alt text: the colon without the spaces before it.
    Bare,
}

/// `gsub(ESCAPED_CHAR_RE)`, `ESCAPED_CHAR_RE = /(\$\$|[\\*_`\[\]{"'|])|^ {0,3}(:)/`.
fn escape_markdown(text: &str, colon: Colon) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    let mut line_start = true;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("$$") {
            out.push_str("\\$$");
            rest = rest.get(2..).unwrap_or("");
            line_start = false;
            continue;
        }
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '{' | '"' | '\'' | '|'
        ) {
            out.push('\\');
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or("");
            line_start = false;
            continue;
        }
        if line_start {
            let spaces = rest.bytes().take_while(|&b| b == b' ').count().min(3);
            if rest.as_bytes().get(spaces) == Some(&b':') {
                match colon {
                    Colon::Escape => out.push_str("\\:"),
                    Colon::Keep => out.push_str(rest.get(..=spaces).unwrap_or(":")),
                    Colon::Bare => out.push(':'),
                }
                rest = rest.get(spaces + 1..).unwrap_or("");
                line_start = false;
                continue;
            }
        }
        out.push(c);
        line_start = c == '\n';
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

/// Whether Ruby's `href =~ /^(?:http|ftp)/` matches (`^` is any line start).
fn is_absolute_link(href: &str) -> bool {
    href.split('\n')
        .any(|line| line.starts_with("http") || line.starts_with("ftp"))
}

fn convert_a(el: &KEl, opts: &Opts, context: &mut Context, out: &mut String) {
    let href = el.attr("href").unwrap_or("");
    if href.is_empty() {
        out.push('[');
        inner(el, opts, context, out);
        out.push_str("]()");
    } else if is_absolute_link(href) || href.contains(['(', ')']) {
        // The reference number is taken before the text is converted, as in Kramdown.
        let index = match context
            .link_refs
            .iter()
            .position(|(known, _)| known == href)
        {
            Some(position) => position + 1,
            None => {
                context
                    .link_refs
                    .push((href.to_owned(), el.attr("title").map(str::to_owned)));
                context.link_refs.len()
            }
        };
        out.push('[');
        inner(el, opts, context, out);
        out.push_str(&format!("][{index}]"));
    } else {
        out.push('[');
        inner(el, opts, context, out);
        out.push_str(&format!("]({href}{})", parse_title(el.attr("title"))));
    }
}

fn convert_img(el: &KEl, out: &mut String) {
    let alt = escape_markdown(el.attr("alt").unwrap_or(""), Colon::Bare);
    let src = el.attr("src").unwrap_or("");
    if src.is_empty() {
        out.push_str(&format!("![{alt}]()"));
        return;
    }
    let title = parse_title(el.attr("title"));
    if src.contains(['(', ')']) {
        out.push_str(&format!("![{alt}](<{src}>{title})"));
    } else {
        out.push_str(&format!("![{alt}]({src}{title})"));
    }
}

fn convert_codespan(value: &str, out: &mut String) {
    let longest = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let delimiter = "`".repeat(longest + 1);
    let pad = if delimiter.len() > 1 { " " } else { "" };
    out.push_str(&format!("{delimiter}{pad}{value}{pad}{delimiter}"));
}

/// `parse_title`: ` "title"` with `"` as `&quot;`, or nothing.
pub(super) fn parse_title(title: Option<&str>) -> String {
    match title {
        Some(title) if !title.is_empty() => format!(" \"{}\"", title.replace('"', "&quot;")),
        _ => String::new(),
    }
}

fn convert_html_element(
    el: &KEl,
    opts: &mut Opts,
    parent: &KEl,
    context: &mut Context,
    out: &mut String,
) {
    let markdown_attr = el.category == Category::Block
        && el
            .children
            .iter()
            .any(|child| child.ty != Ty::Html && child.is_block());
    if matches!(el.name.as_str(), "script" | "pre" | "code") {
        opts.force_raw_text = true;
    }
    opts.raw_text = opts.force_raw_text
        || opts.block_raw_text
        || (el.category != Category::Span && !markdown_attr);
    if el.category == Category::Block && opts.raw_text {
        opts.block_raw_text = true;
    }
    let with_body = matches!(
        el.name.as_str(),
        "div" | "script" | "iframe" | "textarea" | "th" | "td"
    );
    let mut attrs = el.attrs.clone();
    if markdown_attr {
        match attrs.iter_mut().find(|(key, _)| key == "markdown") {
            Some(existing) => existing.1 = "1".to_owned(),
            None => attrs.push(("markdown".to_owned(), "1".to_owned())),
        }
    }
    out.push('<');
    out.push_str(&el.name);
    out.push_str(&html_attributes(&attrs));
    let open_end = out.len();
    let block_body = el.category == Category::Block && el.model == ContentModel::Block;
    out.push_str(if block_body { ">\n" } else { ">" });
    let content_start = out.len();
    inner(el, opts, context, out);
    let empty = out.len() == content_start;
    if el.category == Category::Span {
        if !empty || with_body {
            out.push_str(&format!("</{}>", el.name));
        } else {
            out.truncate(open_end);
            out.push_str(" />");
        }
        return;
    }
    if !empty {
        out.push_str(&format!("</{}>", el.name));
    } else if with_body {
        out.truncate(open_end);
        out.push_str(&format!("></{}>", el.name));
    } else {
        out.truncate(open_end);
        out.push_str(" />");
    }
    if !(parent.ty == Ty::Html && parent.model == ContentModel::Raw) {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_escaped_char_re() {
        assert_eq!(
            escape_markdown("a*b_c [d] {e} \"f\" 'g' |h| $$ $", Colon::Keep),
            "a\\*b\\_c \\[d\\] \\{e} \\\"f\\\" \\'g\\' \\|h\\| \\$$ $"
        );
        assert_eq!(escape_markdown(" :x", Colon::Escape), "\\:x");
        assert_eq!(escape_markdown(" :x", Colon::Keep), " :x");
        assert_eq!(escape_markdown("a\n  :b", Colon::Bare), "a\n:b");
    }

    #[test]
    fn code_spans_grow_their_delimiters() {
        let mut out = String::new();
        convert_codespan("x", &mut out);
        convert_codespan("a`b", &mut out);
        assert_eq!(out, "`x``` a`b ``");
    }
}
