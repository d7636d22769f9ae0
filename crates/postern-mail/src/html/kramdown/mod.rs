//! GitLab's override for `em`, `strong`, `details` and `img`: the element (stripped of its
//! attributes, except `alt` and `src` on `img`) is serialised and converted by
//! `Kramdown::Document.new(html, input: 'html').to_commonmark`, and that text replaces what
//! html2text would have written.
//!
//! This module reproduces the part of Kramdown those elements reach: the HTML parser's element
//! conversion (`em`/`i` → `*…*`, `strong`/`b` → `**…**`, `a`, `img`, `br`, `code`; an emphasis
//! whose text starts or ends with whitespace stays raw HTML; other elements stay HTML with
//! Kramdown's text, whitespace and attribute rules) and the kramdown converter's output
//! (Markdown escaping, `{::}` between adjacent emphases, reference-style links with their
//! definitions appended, `{: …}` attribute lists for attributes Markdown cannot say).
//!
//! Kramdown's native conversion of block structure found *inside* these elements (paragraphs,
//! lists, tables, headings, `pre` — rare in mail) is not reproduced: such elements are written
//! back as HTML. Recursion here is bounded by the parser's [`super::parse::MAX_DEPTH`].
//!
//! Kramdown works in two stages, and so does this module:
//! - `builder`: the HTML parser's `ElementConverter`, from the DOM to Kramdown's element tree;
//! - `element`: that tree's element type, and Kramdown's tables classifying HTML elements;
//! - `converter`: the kramdown converter (GitLab's Commonmark subclass), from the tree to text;
//! - `attributes`: how the converter writes attributes, as HTML or as `{: …}` lists.
//!
//! [`convert`] runs both stages and appends the link definitions; the Ruby whitespace helpers
//! both stages share are here too.

mod attributes;
mod builder;
mod converter;
mod element;

use super::dom::{Dom, NodeId};
use builder::{Builder, TextEdges, remove_whitespace_children};
use converter::{Context, Opts, inner, parse_title};
use element::{KEl, Ty};

/// Converts the element `root` the way GitLab's `iterate_over` override does.
pub(crate) fn convert(dom: &Dom, root: NodeId) -> String {
    let name = dom.element_name(root).unwrap_or("");
    // GitLab's `remove_attributes`: only `img` keeps anything (`alt`, `src`).
    let keep: &[&str] = if name == "img" { &["alt", "src"] } else { &[] };
    let builder = Builder {
        dom,
        edges: TextEdges::new(dom, root),
    };
    let mut document = KEl::new(Ty::Root);
    if let Some(element) = builder.element(root, true, false, Some(keep)) {
        document.children.push(element);
    }
    remove_whitespace_children(&mut document.children);

    let mut context = Context::default();
    let mut out = String::new();
    inner(&document, &Opts::default(), &mut context, &mut out);
    // `create_link_defs`.
    if !context.link_refs.is_empty() {
        out.push_str("\n\n");
        for (index, (href, title)) in context.link_refs.iter().enumerate() {
            out.push_str(&format!(
                "[{}]: {href}{}\n",
                index + 1,
                parse_title(title.as_deref())
            ));
        }
    }
    out
}

/// Ruby's `\s`.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// `gsub(/\s+/, ' ')`.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    super::collapse_runs(text, &mut out, is_ruby_space);
    out
}
