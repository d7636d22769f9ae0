//! The first stage: Kramdown's HTML parser (its `ElementConverter`), which turns the element
//! GitLab hands over into Kramdown's element tree — emphasis, links, images, breaks and code
//! become Markdown elements, everything else stays HTML with Kramdown's text and whitespace
//! rules applied.
//!
//! The DOM is read as serialised, so text carries its escaping and attribute values their
//! libxml2 form, as in the HTML Kramdown parses.

use super::element::{
    Category, ContentModel, KEl, Ty, content_model, has_own_converter, is_span_element,
    removes_text_children, removes_whitespace_children, strips_whitespace,
};
use super::{collapse_whitespace, is_ruby_space};
use crate::html::dom::{Dom, Kind, NodeId};
use crate::html::serialize::{escape_text, serialized_value};

/// For every node under a root, the first and last character of its descendant text — all
/// Kramdown's emphasis rule needs to know, computed once bottom-up so that nested emphasis does
/// not rescan its subtree at every level.
pub(super) struct TextEdges {
    base: NodeId,
    edges: Vec<Option<(char, char)>>,
}

impl TextEdges {
    pub(super) fn new(dom: &Dom, root: NodeId) -> Self {
        let order = dom.preorder(root);
        // Node ids of a subtree are close together (the parser appends in document order), so
        // a vector indexed from the smallest id is compact.
        let base = order.iter().copied().min().unwrap_or(root);
        let top = order.iter().copied().max().unwrap_or(root);
        let mut edges = TextEdges {
            base,
            edges: vec![None; top - base + 1],
        };
        for &id in order.iter().rev() {
            let edge = match &dom.node(id).kind {
                Kind::Text(text) => text.chars().next().zip(text.chars().next_back()),
                Kind::Element { .. } => {
                    let children = dom.children(id);
                    let first = children.iter().find_map(|&c| edges.get(c)).map(|e| e.0);
                    let last = children
                        .iter()
                        .rev()
                        .find_map(|&c| edges.get(c))
                        .map(|e| e.1);
                    first.zip(last)
                }
                _ => None,
            };
            if let Some(slot) = id.checked_sub(base).and_then(|i| edges.edges.get_mut(i)) {
                *slot = edge;
            }
        }
        edges
    }

    fn get(&self, id: NodeId) -> Option<(char, char)> {
        id.checked_sub(self.base)
            .and_then(|i| self.edges.get(i))
            .copied()
            .flatten()
    }
}

/// All text under `id`, in document order (Kramdown's `extract_text`).
fn descendant_text(dom: &Dom, id: NodeId) -> String {
    let mut text = String::new();
    for node in dom.preorder(id) {
        if let Kind::Text(value) = &dom.node(node).kind {
            text.push_str(value);
        }
    }
    text
}

pub(super) struct Builder<'a> {
    pub(super) dom: &'a Dom,
    pub(super) edges: TextEdges,
}

impl Builder<'_> {
    /// Builds the Kramdown element for DOM node `id`. `keep` filters the attributes of the root
    /// element (GitLab's `remove_attributes`); descendants keep theirs.
    pub(super) fn element(
        &self,
        id: NodeId,
        convert: bool,
        preserve: bool,
        keep: Option<&[&str]>,
    ) -> Option<KEl> {
        let Kind::Element { name, attrs } = &self.dom.node(id).kind else {
            return None;
        };
        let mut el = KEl::new(Ty::Html);
        el.name = name.to_string();
        el.attrs = attrs
            .iter()
            .filter(|attr| keep.is_none_or(|keep| keep.contains(&attr.name.as_ref())))
            .map(|attr| {
                (
                    attr.name.to_string(),
                    serialized_value(name, attr).unwrap_or_default(),
                )
            })
            .collect();
        if !convert {
            return Some(self.raw_html(id, el, preserve));
        }
        match name.as_ref() {
            "em" | "i" | "strong" | "b" => {
                let edge_space = self
                    .edges
                    .get(id)
                    .is_some_and(|(first, last)| is_ruby_space(first) || is_ruby_space(last));
                if edge_space {
                    // Emphasis Markdown cannot express stays raw HTML, unconverted inside.
                    return Some(self.raw_html(id, el, preserve));
                }
                el.ty = if matches!(name.as_ref(), "em" | "i") {
                    Ty::Em
                } else {
                    Ty::Strong
                };
                el.children = self.children(id, el.ty, "", true, false);
            }
            "a" => {
                if el.attr("href").is_none() {
                    return Some(self.raw_html(id, el, preserve));
                }
                el.ty = Ty::A;
                el.children = self.children(id, Ty::A, "a", true, false);
            }
            "img" => el.ty = Ty::Img,
            "br" => el.ty = Ty::Br,
            "code" => {
                el.ty = Ty::Codespan;
                el.value = descendant_text(self.dom, id);
            }
            _ => {
                el.category = if is_span_element(name) {
                    Category::Span
                } else {
                    Category::Block
                };
                el.model = content_model(name);
                let mut children = self.children(id, Ty::Html, name, true, preserve);
                if removes_text_children(name) {
                    children.retain(|child| child.ty != Ty::Text);
                }
                if !has_own_converter(name) {
                    if strips_whitespace(name) {
                        strip_whitespace(&mut children);
                    }
                    if removes_whitespace_children(name) {
                        remove_whitespace_children(&mut children);
                    }
                }
                el.children = children;
            }
        }
        Some(el)
    }

    /// `process_html_element(el, false)`: HTML kept as written, text untouched.
    fn raw_html(&self, id: NodeId, mut el: KEl, preserve: bool) -> KEl {
        el.ty = Ty::Html;
        el.category = if is_span_element(&el.name) {
            Category::Span
        } else {
            Category::Block
        };
        el.model = ContentModel::Raw;
        let name = el.name.clone();
        el.children = self.children(id, Ty::Html, &name, false, preserve);
        el
    }

    /// `process_children`: text and comments become Kramdown text and XML comments, elements
    /// are converted recursively (depth bounded by the parser's limit).
    fn children(
        &self,
        id: NodeId,
        parent_ty: Ty,
        parent_name: &str,
        convert: bool,
        preserve: bool,
    ) -> Vec<KEl> {
        let in_raw_text_element = matches!(parent_name, "script" | "style");
        let mut children = Vec::new();
        for &child in self.dom.children(id) {
            match &self.dom.node(child).kind {
                Kind::Text(text) => {
                    let mut serialized = String::with_capacity(text.len());
                    if in_raw_text_element {
                        serialized.push_str(text);
                    } else {
                        escape_text(text, &mut serialized);
                    }
                    let mut el = KEl::new(Ty::Text);
                    el.value = if preserve || !convert {
                        serialized
                    } else {
                        collapse_whitespace(&serialized)
                    };
                    children.push(el);
                }
                Kind::Comment(content) => {
                    // The comment's category follows the parent's content model ('div' at the
                    // root, the element type's name for converted elements).
                    let parent_model = match parent_ty {
                        Ty::Html => content_model(parent_name),
                        Ty::Em => content_model("em"),
                        Ty::Strong => content_model("strong"),
                        Ty::A => content_model("a"),
                        _ => ContentModel::Block,
                    };
                    let mut el = KEl::new(Ty::Comment);
                    el.value = format!("<!--{content}-->");
                    el.category = if parent_model == ContentModel::Span {
                        Category::Span
                    } else {
                        Category::Block
                    };
                    children.push(el);
                }
                Kind::Element { .. } => {
                    if let Some(el) = self.element(child, convert, preserve, None) {
                        children.push(el);
                    }
                }
                Kind::Document => {}
            }
        }
        children
    }
}

/// `strip_whitespace`: the first text child loses leading, the last trailing whitespace.
fn strip_whitespace(children: &mut [KEl]) {
    if let Some(first) = children.first_mut()
        && first.ty == Ty::Text
    {
        first.value = first.value.trim_start_matches(is_ruby_space).to_owned();
    }
    if let Some(last) = children.last_mut()
        && last.ty == Ty::Text
    {
        last.value = last
            .value
            .trim_end_matches(|c| is_ruby_space(c) || c == '\0')
            .to_owned();
    }
}

/// `remove_whitespace_children`: blank text first, last, or between two blocks goes.
pub(super) fn remove_whitespace_children(children: &mut Vec<KEl>) {
    let count = children.len();
    let blocks: Vec<bool> = children
        .iter()
        .map(|child| child.category() == Some(Category::Block))
        .collect();
    let mut index = 0;
    children.retain(|child| {
        let i = index;
        index += 1;
        let blank = child.ty == Ty::Text && child.value.chars().all(is_ruby_space);
        let removable = i == 0
            || i + 1 == count
            || (i
                .checked_sub(1)
                .and_then(|p| blocks.get(p))
                .copied()
                .unwrap_or(false)
                && blocks.get(i + 1).copied().unwrap_or(false));
        !(blank && removable)
    });
}
