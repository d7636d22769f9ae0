//! An HTML parser that builds the tree libxml2's HTML 4 parser (`HTMLparser.c`, the 2.9–2.13
//! series Nokogiri ships) builds, rather than the HTML5 tree a browser builds.
//!
//! GitLab's html2text rules only look at the tree shape: `<p><details>…</details></p>` stays
//! nested (libxml2 does not know `details`), a stray `</p>` is ignored instead of becoming an
//! empty paragraph, text at the very start gets an implied `<p>`, `<div/>` really closes. An
//! HTML5 parser gets all of these differently, and each difference moves or adds newlines in
//! the result, so the libxml2 algorithm is followed: the same start-tag auto-closing table, the
//! same end-tag priorities, the same implied `html`/`head`/`body`/`p`, the same HTML 4 entity
//! table, the same treatment of comments, `<!…>` and `<?…>`.
//!
//! libxml2 also stops parsing (keeping what it has) when elements nest deeper than 256 without
//! `XML_PARSE_HUGE`, which Nokogiri does not set. [`MAX_DEPTH`] reproduces that, and it is what
//! bounds the depth of every later walk over the tree.
//!
//! The parser state, its cursor and the main content loop (`htmlParseContentInternal`) live
//! here; the rest of `HTMLparser.c` is split by what it reads:
//! - `tree`: the tree-building side — opening and closing elements, and the implied and
//!   auto-closed ones that decide the tree's shape;
//! - `tags`: start tags with their attributes, end tags, and names;
//! - `text`: character data, `script`/`style` raw text, entity and character references;
//! - `markup`: comments, doctypes, processing instructions and other `<!…>`.

mod markup;
mod tags;
mod text;
mod tree;

#[cfg(test)]
mod tests;

use super::dom::{Dom, NodeId};
use super::tables::start_closes;

/// libxml2 refuses to open an element when this many are already open (`nodePush`'s limit
/// without `XML_PARSE_HUGE`) and halts, keeping the document parsed so far.
pub(crate) const MAX_DEPTH: usize = 256;

/// libxml2 reads tag and attribute names into a fixed buffer of this size; longer names are cut
/// and the rest is read as whatever follows (`HTML_PARSER_BUFFER_SIZE`).
const MAX_NAME_LEN: usize = 100;

/// Parses `input` into a libxml2-shaped tree.
pub(crate) fn parse(input: &str) -> Dom {
    let mut parser = Parser {
        src: input,
        bytes: input.as_bytes(),
        pos: 0,
        dom: Dom::new(),
        open: Vec::new(),
        seen: Seen::Nothing,
        discarded: 0,
        halted: false,
    };
    parser.document();
    parser.dom
}

/// libxml2's `ctxt->html`: whether a `head` or `body` has been opened before, which changes
/// what `htmlCheckImplied` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Nothing,
    Head,
    Body,
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    dom: Dom,
    /// The open elements (`nameTab` / `nodeTab`), innermost last.
    open: Vec<NodeId>,
    seen: Seen,
    /// `ctxt->depth`: misplaced `html`/`head`/`body` start tags that were dropped, so that their
    /// end tags are dropped too.
    discarded: usize,
    halted: bool,
}

/// `IS_BLANK_CH`.
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// `IS_CHAR`: characters libxml2 keeps in text; others are reported and dropped.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, offset: usize) -> u8 {
        self.bytes.get(self.pos + offset).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The character at the current position (the input is UTF-8, so this never splits one).
    fn current_char(&self) -> Option<char> {
        self.src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn advance_char(&mut self) {
        let width = self.current_char().map_or(1, char::len_utf8);
        self.pos += width;
    }

    fn skip_blanks(&mut self) {
        while is_blank(self.peek()) && !self.at_end() {
            self.pos += 1;
        }
    }

    fn starts_with_ignore_case(&self, prefix: &[u8]) -> bool {
        self.bytes
            .get(self.pos..self.pos + prefix.len())
            .is_some_and(|slice| slice.eq_ignore_ascii_case(prefix))
    }

    fn current_name(&self) -> Option<&str> {
        self.open.last().and_then(|&id| self.dom.element_name(id))
    }

    fn current_node(&self) -> Option<NodeId> {
        self.open.last().copied()
    }

    /// Whether an element called `name` is open.
    fn is_open(&self, name: &str) -> bool {
        self.open
            .iter()
            .any(|&id| self.dom.element_name(id) == Some(name))
    }

    // ---- the document -----------------------------------------------------------------------

    fn document(&mut self) {
        self.skip_blanks();
        self.prolog_comments();
        if self.peek() == b'<' && self.peek_at(1) == b'!' && self.starts_doctype(2) {
            self.doctype();
        }
        self.skip_blanks();
        self.prolog_comments();
        self.content();
        self.open.clear();
    }

    /// Comments and processing instructions before the first element.
    fn prolog_comments(&mut self) {
        while !self.halted {
            if self
                .bytes
                .get(self.pos..)
                .is_some_and(|rest| rest.starts_with(b"<!--"))
            {
                self.comment();
            } else if self.peek() == b'<' && self.peek_at(1) == b'?' {
                self.processing_instruction();
            } else {
                break;
            }
            self.skip_blanks();
        }
    }

    fn starts_doctype(&self, offset: usize) -> bool {
        self.bytes
            .get(self.pos + offset..self.pos + offset + 7)
            .is_some_and(|slice| slice.eq_ignore_ascii_case(b"DOCTYPE"))
    }

    /// `htmlParseContentInternal`, flattened: libxml2 keeps no recursion here either.
    fn content(&mut self) {
        while !self.halted {
            let c = self.peek();
            if c == 0 {
                // End of input — or a NUL byte, which libxml2 also takes as the end.
                break;
            }
            let next = self.peek_at(1);
            if c == b'<' && next == b'/' {
                self.end_tag();
                continue;
            }
            if c == b'<' && (next.is_ascii_alphabetic() || next == b'_' || next == b':') {
                let mut buffer = [0u8; MAX_NAME_LEN];
                let name = self.lookahead_name(&mut buffer);
                if let Some(current) = self.current_name()
                    && start_closes(name, current)
                {
                    let name = name.to_owned();
                    self.auto_close(&name);
                    continue;
                }
            }
            if matches!(self.current_name(), Some("script") | Some("style")) {
                self.raw_text();
            } else if c == b'<' && next == b'!' {
                if self.starts_doctype(2) {
                    self.doctype();
                } else if self.peek_at(2) == b'-' && self.peek_at(3) == b'-' {
                    self.comment();
                } else {
                    self.bogus_comment();
                }
            } else if c == b'<' && next == b'?' {
                self.processing_instruction();
            } else if c == b'<' && next.is_ascii_alphabetic() {
                self.element();
            } else if c == b'<' {
                // A lone `<` is text, added without the implied-paragraph check.
                self.add_text("<");
                self.pos += 1;
            } else if c == b'&' {
                self.reference();
            } else {
                self.char_data();
            }
        }
    }
}
