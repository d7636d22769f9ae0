//! libxml2's HTML serialiser (`htmlNodeDumpFormatOutput`, with Nokogiri's default `FORMAT`), as
//! far as it changes what GitLab converts.
//!
//! GitLab parses the mail, unwraps `href`-less anchors, serialises (`document.inner_html`) and
//! parses that string again before converting, and hands each `em`/`strong`/`details`/`img`
//! to Kramdown as `node.to_html`. The serialisation is therefore part of the observable
//! behaviour: `href`, `src` and `action` values are URI-escaped (`http://x/a b` becomes
//! `http://x/a%20b` in the Markdown link), `&`, `<`, `>` are escaped, formatting newlines are
//! added around block elements, and an empty `<li>` loses its end tag.

use super::dom::{Attr, DOCUMENT, Dom, Kind, NodeId};
use super::tables::{element_info, is_boolean_attr};

/// `document.inner_html`: every top-level node serialised, formatted.
pub(crate) fn serialize_document(dom: &Dom) -> String {
    let mut out = String::new();
    for &child in dom.children(DOCUMENT) {
        serialize_node(dom, child, &mut out);
    }
    out
}

/// A pending piece of work; each carries the node's next sibling, which decides the formatting
/// newline after it (looking it up would rescan wide sibling lists).
enum Step {
    Enter(NodeId, Option<NodeId>),
    Exit(NodeId, Option<NodeId>),
}

/// Pushes `id`'s children so that they pop in document order.
fn push_children(dom: &Dom, id: NodeId, steps: &mut Vec<Step>) {
    let children = dom.children(id);
    for (index, &child) in children.iter().enumerate().rev() {
        steps.push(Step::Enter(child, children.get(index + 1).copied()));
    }
}

/// Serialises `root` and its subtree (`node.to_html`), without recursion.
pub(crate) fn serialize_node(dom: &Dom, root: NodeId, out: &mut String) {
    let mut steps = vec![Step::Enter(root, None)];
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter(id, next) => match &dom.node(id).kind {
                Kind::Document => push_children(dom, id, &mut steps),
                Kind::Text(text) => {
                    let raw = dom
                        .node(id)
                        .parent
                        .and_then(|parent| dom.element_name(parent))
                        .is_some_and(|name| name == "script" || name == "style");
                    if raw {
                        out.push_str(text);
                    } else {
                        escape_text(text, out);
                    }
                }
                Kind::Comment(content) => {
                    out.push_str("<!--");
                    out.push_str(content);
                    out.push_str("-->");
                }
                Kind::Element { name, attrs } => {
                    out.push('<');
                    out.push_str(name);
                    for attr in attrs {
                        write_attribute(name, attr, out);
                    }
                    let info = element_info(name);
                    let children = dom.children(id);
                    if info.is_some_and(|info| info.empty) {
                        out.push('>');
                        newline_after(dom, id, next, out);
                    } else if children.is_empty() {
                        let bare = info.is_some_and(|info| info.save_end_tag)
                            && name != "html"
                            && name != "body";
                        if bare {
                            out.push('>');
                        } else {
                            out.push_str("></");
                            out.push_str(name);
                            out.push('>');
                        }
                        newline_after(dom, id, next, out);
                    } else {
                        out.push('>');
                        if formats_children(dom, id)
                            && children.first().is_some_and(|&first| !dom.is_text(first))
                        {
                            out.push('\n');
                        }
                        steps.push(Step::Exit(id, next));
                        push_children(dom, id, &mut steps);
                    }
                }
            },
            Step::Exit(id, next) => {
                let children = dom.children(id);
                if formats_children(dom, id)
                    && children.last().is_some_and(|&last| !dom.is_text(last))
                {
                    out.push('\n');
                }
                out.push_str("</");
                out.push_str(dom.element_name(id).unwrap_or(""));
                out.push('>');
                newline_after(dom, id, next, out);
            }
        }
    }
}

/// Whether libxml2 puts newlines inside a known block element around its (several) children.
fn formats_children(dom: &Dom, id: NodeId) -> bool {
    let Some(name) = dom.element_name(id) else {
        return false;
    };
    element_info(name).is_some_and(|info| !info.inline)
        && dom.children(id).len() > 1
        && !name.starts_with('p')
}

/// The newline libxml2 writes after a known block element followed by a non-text sibling
/// (not inside `p`, `pre`, … — any parent whose name starts with `p`).
fn newline_after(dom: &Dom, id: NodeId, next: Option<NodeId>, out: &mut String) {
    let Some(name) = dom.element_name(id) else {
        return;
    };
    if element_info(name).is_none_or(|info| info.inline) {
        return;
    }
    let Some(parent) = dom.node(id).parent else {
        return;
    };
    let Some(parent_name) = dom.element_name(parent) else {
        return;
    };
    if parent_name.starts_with('p') {
        return;
    }
    if next.is_some_and(|next| !dom.is_text(next)) {
        out.push('\n');
    }
}

/// Text content escaping (`xmlEncodeEntitiesReentrant` for an HTML document).
pub(crate) fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Whether libxml2 URI-escapes this attribute when serialising.
fn is_uri_attribute(element: &str, attr: &str) -> bool {
    matches!(attr, "href" | "action" | "src") || (attr == "name" && element == "a")
}

/// The attribute value exactly as it appears between the quotes of libxml2's serialisation, or
/// `None` when the attribute is written bare (no value, or an HTML boolean attribute). This is
/// what Kramdown reads back from `node.to_html`, entity references included.
pub(crate) fn serialized_value(element: &str, attr: &Attr) -> Option<String> {
    let value = attr.value.as_deref()?;
    if is_boolean_attr(&attr.name) {
        return None;
    }
    let mut encoded = String::with_capacity(value.len());
    escape_text(value, &mut encoded);
    if is_uri_attribute(element, &attr.name) {
        let trimmed = encoded.trim_start_matches([' ', '\t', '\n', '\r']);
        return Some(uri_escape(trimmed));
    }
    if encoded.contains('"') && encoded.contains('\'') {
        return Some(encoded.replace('"', "&quot;"));
    }
    Some(encoded)
}

fn write_attribute(element: &str, attr: &Attr, out: &mut String) {
    out.push(' ');
    out.push_str(&attr.name);
    let Some(value) = serialized_value(element, attr) else {
        return;
    };
    out.push('=');
    // `xmlBufWriteQuotedString`: single quotes when the value holds a double quote.
    let quote = if value.contains('"') { '\'' } else { '"' };
    out.push(quote);
    out.push_str(&value);
    out.push(quote);
}

/// `xmlURIEscapeStr(value, "@/:=?;#%&,+")`: every byte that is neither unreserved nor listed
/// becomes `%XX`.
pub(crate) fn uri_escape(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || b"-_.!~*'()".contains(&byte)
            || b"@/:=?;#%&,+".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    #[test]
    fn formats_and_escapes_like_libxml2() {
        let dom =
            parse(r#"<div><p>a &amp; b</p><p>c</p></div><a href="http://x/ä b?q=1&amp;r">l</a>"#);
        assert_eq!(
            serialize_document(&dom),
            "<html><body>\n<div>\n<p>a &amp; b</p>\n<p>c</p>\n</div>\n\
             <a href=\"http://x/%C3%A4%20b?q=1&amp;r\">l</a>\n</body></html>"
        );
    }

    #[test]
    fn empty_li_loses_its_end_tag() {
        let dom = parse("<ul><li></li></ul>");
        assert_eq!(
            serialize_document(&dom),
            "<html><body><ul><li></ul></body></html>"
        );
    }
}
