//! The tree-building side of the parser: libxml2's SAX2 element and text callbacks, plus the
//! rules that add elements nobody wrote (`htmlCheckImplied`, `htmlCheckParagraph`) or close
//! open ones (`htmlAutoClose`).
//!
//! These rules, not the tokenizing, decide where html2text later puts its newlines, so they are
//! kept together here; the readers in the sibling modules only report what they found.

use super::{MAX_DEPTH, Parser, Seen};
use crate::html::dom::{Attr, DOCUMENT, Kind, name as make_name};
use crate::html::tables::start_closes;

impl Parser<'_> {
    /// `htmlnamePush` + `startElement`; returns false (and halts) past [`MAX_DEPTH`].
    pub(super) fn push_element(&mut self, name: &str, attrs: Vec<Attr>) -> bool {
        if self.open.len() > MAX_DEPTH {
            self.halted = true;
            return false;
        }
        match name {
            "head" if self.seen < Seen::Head => self.seen = Seen::Head,
            "body" => self.seen = Seen::Body,
            _ => {}
        }
        let parent = self.current_node().unwrap_or(DOCUMENT);
        let id = self.dom.append(
            parent,
            Kind::Element {
                name: make_name(name),
                attrs,
            },
        );
        self.open.push(id);
        true
    }

    pub(super) fn pop_element(&mut self) {
        self.open.pop();
    }

    /// Text goes to the current element; with nothing open (only blanks get here) it is dropped,
    /// as `xmlSAX2Characters` does without a current node.
    pub(super) fn add_text(&mut self, text: &str) {
        if let Some(node) = self.current_node() {
            self.dom.append_text(node, text);
        }
    }

    pub(super) fn add_comment(&mut self, content: String) {
        let parent = self.current_node().unwrap_or(DOCUMENT);
        self.dom.append(parent, Kind::Comment(content));
    }

    /// `htmlAutoClose`: close open elements the new start tag ends.
    pub(super) fn auto_close(&mut self, new: &str) {
        while let Some(current) = self.current_name() {
            if !start_closes(new, current) {
                break;
            }
            self.pop_element();
        }
    }

    /// `htmlCheckImplied`: open the `html`, `head` or `body` the new tag needs.
    pub(super) fn check_implied(&mut self, new: &str) {
        if new == "html" {
            return;
        }
        if self.open.is_empty() && !self.push_element("html", Vec::new()) {
            return;
        }
        if new == "body" || new == "head" {
            return;
        }
        let head_content = matches!(new, "script" | "style" | "meta" | "link" | "title" | "base");
        if self.open.len() <= 1 && head_content {
            if self.seen >= Seen::Head {
                return;
            }
            self.push_element("head", Vec::new());
        } else if !matches!(new, "noframes" | "frame" | "frameset") {
            if self.seen >= Seen::Body {
                return;
            }
            if self.is_open("body") || self.is_open("head") {
                return;
            }
            self.push_element("body", Vec::new());
        }
    }

    /// `htmlCheckParagraph`: text with no element open, or directly in `html`/`head`, gets an
    /// implied `<p>`.
    pub(super) fn check_paragraph(&mut self) {
        if matches!(self.current_name(), None | Some("html") | Some("head")) {
            self.auto_close("p");
            self.check_implied("p");
            if !self.halted {
                self.push_element("p", Vec::new());
            }
        }
    }
}
