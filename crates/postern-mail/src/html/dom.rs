//! A minimal arena DOM, shaped like the libxml2 tree Nokogiri hands to GitLab.
//!
//! Only what the conversion needs is kept: elements (lower-case name, attributes in source order,
//! a bare attribute keeping no value), text, comments and the document itself. Processing
//! instructions and the DTD never influence GitLab's output, so they are not stored.

use std::borrow::Cow;

use super::tables::common_name;

/// An element or attribute name (lower case). Common names are static, so most tags cost no
/// allocation.
pub(crate) type Name = Cow<'static, str>;

/// The [`Name`] for `name`.
pub(crate) fn name(name: &str) -> Name {
    match common_name(name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Index of a node in [`Dom::nodes`].
pub(crate) type NodeId = usize;

/// The document node is always the first one.
pub(crate) const DOCUMENT: NodeId = 0;

/// One attribute. `value` is `None` for a bare attribute (`<td nowrap>`), which libxml2 keeps
/// without children and serialises without `=`.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub(crate) name: Name,
    pub(crate) value: Option<String>,
}

/// What a node is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Document,
    Element { name: Name, attrs: Vec<Attr> },
    Text(String),
    Comment(String),
}

/// A node and its links.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) parent: Option<NodeId>,
    pub(crate) children: Vec<NodeId>,
}

/// The whole tree.
#[derive(Debug, Clone)]
pub(crate) struct Dom {
    pub(crate) nodes: Vec<Node>,
}

impl Dom {
    /// An empty document.
    pub(crate) fn new() -> Self {
        Dom {
            nodes: vec![Node {
                kind: Kind::Document,
                parent: None,
                children: Vec::new(),
            }],
        }
    }

    /// The node behind `id`; ids only ever come from this arena, so the fallback is unreachable
    /// in practice but keeps the code panic-free.
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&self.nodes[DOCUMENT])
    }

    /// The children of `id`.
    pub(crate) fn children(&self, id: NodeId) -> &[NodeId] {
        &self.node(id).children
    }

    /// The element name of `id`, or `None` for text, comments and the document.
    pub(crate) fn element_name(&self, id: NodeId) -> Option<&str> {
        match &self.node(id).kind {
            Kind::Element { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The attributes of `id` (empty for non-elements).
    pub(crate) fn attrs(&self, id: NodeId) -> &[Attr] {
        match &self.node(id).kind {
            Kind::Element { attrs, .. } => attrs,
            _ => &[],
        }
    }

    /// The attribute `name` of `id`: `None` when absent, `Some("")` when bare.
    pub(crate) fn attr(&self, id: NodeId, name: &str) -> Option<&str> {
        self.attrs(id)
            .iter()
            .find(|attr| attr.name == name)
            .map(|attr| attr.value.as_deref().unwrap_or(""))
    }

    /// Whether `id` is a text node.
    pub(crate) fn is_text(&self, id: NodeId) -> bool {
        matches!(self.node(id).kind, Kind::Text(_))
    }

    /// Appends a new node under `parent` and returns its id.
    pub(crate) fn append(&mut self, parent: NodeId, kind: Kind) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind,
            parent: Some(parent),
            children: Vec::new(),
        });
        if let Some(node) = self.nodes.get_mut(parent) {
            node.children.push(id);
        }
        id
    }

    /// Appends text under `parent`, merging with a trailing text child as libxml2's SAX2
    /// `characters` callback does.
    pub(crate) fn append_text(&mut self, parent: NodeId, text: &str) {
        if text.is_empty() {
            return;
        }
        let last = self.node(parent).children.last().copied();
        if let Some(last) = last
            && let Some(Node {
                kind: Kind::Text(existing),
                ..
            }) = self.nodes.get_mut(last)
        {
            existing.push_str(text);
            return;
        }
        self.append(parent, Kind::Text(text.to_owned()));
    }

    /// The name of the first element among the siblings after position `index` of `parent`'s
    /// children (html2text's `next_node_name`, which skips text and comments). Callers pass the
    /// position they already know, so a node with many siblings is not rescanned each time.
    pub(crate) fn next_element_name(&self, parent: NodeId, index: usize) -> Option<&str> {
        self.children(parent)
            .get(index + 1..)
            .unwrap_or(&[])
            .iter()
            .find_map(|&sibling| self.element_name(sibling))
    }

    /// All nodes in document order (pre-order), without recursion.
    pub(crate) fn preorder(&self, root: NodeId) -> Vec<NodeId> {
        let mut order = Vec::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            order.push(id);
            stack.extend(self.children(id).iter().rev());
        }
        order
    }

    /// Replaces every `<a>` that has no `href` by its children, as GitLab's `HTMLParser` does
    /// before converting (Outlook adds such anchors; html2text would wrap them in brackets).
    pub(crate) fn unwrap_links_without_href(&mut self) {
        // Nodes are stored in the order the parser created them, which is document order.
        let targets: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&id| self.element_name(id) == Some("a") && self.attr(id, "href").is_none())
            .collect();
        // Document order matters: an outer anchor is unwrapped first, so an inner one is then
        // found under its new parent.
        for id in targets {
            let Some(parent) = self.node(id).parent else {
                continue;
            };
            let moved = self
                .nodes
                .get_mut(id)
                .map(|node| std::mem::take(&mut node.children))
                .unwrap_or_default();
            for &child in &moved {
                if let Some(node) = self.nodes.get_mut(child) {
                    node.parent = Some(parent);
                }
            }
            if let Some(parent_node) = self.nodes.get_mut(parent)
                && let Some(position) = parent_node.children.iter().position(|&c| c == id)
            {
                parent_node.children.splice(position..=position, moved);
            }
            if let Some(node) = self.nodes.get_mut(id) {
                node.parent = None;
            }
        }
    }
}
