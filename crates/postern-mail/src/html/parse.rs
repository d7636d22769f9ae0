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

use std::collections::HashSet;

use super::dom::{Attr, DOCUMENT, Dom, Kind, Name, NodeId, name as make_name};
use super::entities;
use super::tables::{element_info, end_priority, start_closes};

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

    // ---- tree building (the SAX2 side) -------------------------------------------------------

    /// `htmlnamePush` + `startElement`; returns false (and halts) past [`MAX_DEPTH`].
    fn push_element(&mut self, name: &str, attrs: Vec<Attr>) -> bool {
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

    fn pop_element(&mut self) {
        self.open.pop();
    }

    /// Text goes to the current element; with nothing open (only blanks get here) it is dropped,
    /// as `xmlSAX2Characters` does without a current node.
    fn add_text(&mut self, text: &str) {
        if let Some(node) = self.current_node() {
            self.dom.append_text(node, text);
        }
    }

    fn add_comment(&mut self, content: String) {
        let parent = self.current_node().unwrap_or(DOCUMENT);
        self.dom.append(parent, Kind::Comment(content));
    }

    /// `htmlAutoClose`: close open elements the new start tag ends.
    fn auto_close(&mut self, new: &str) {
        while let Some(current) = self.current_name() {
            if !start_closes(new, current) {
                break;
            }
            self.pop_element();
        }
    }

    /// `htmlCheckImplied`: open the `html`, `head` or `body` the new tag needs.
    fn check_implied(&mut self, new: &str) {
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
    fn check_paragraph(&mut self) {
        if matches!(self.current_name(), None | Some("html") | Some("head")) {
            self.auto_close("p");
            self.check_implied("p");
            if !self.halted {
                self.push_element("p", Vec::new());
            }
        }
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

    /// `htmlParseHTMLName_nonInvasive`: the name after `<`, lower-cased into `buffer`, without
    /// consuming it.
    fn lookahead_name<'b>(&self, buffer: &'b mut [u8; MAX_NAME_LEN]) -> &'b str {
        let mut len = 0;
        let rest = self.bytes.get(self.pos + 1..).unwrap_or(&[]);
        for &byte in rest.iter().take(MAX_NAME_LEN) {
            if byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'-' | b'_') {
                if let Some(slot) = buffer.get_mut(len) {
                    *slot = byte.to_ascii_lowercase();
                }
                len += 1;
            } else {
                break;
            }
        }
        // Only ASCII was copied, so this cannot fail.
        std::str::from_utf8(buffer.get(..len).unwrap_or(&[])).unwrap_or("")
    }

    /// `htmlParseHTMLName`: a tag or attribute name, lower-cased.
    fn html_name(&mut self) -> Option<Name> {
        let first = self.peek();
        if !(first.is_ascii_alphabetic() || matches!(first, b'_' | b':' | b'.')) {
            return None;
        }
        let mut buffer = [0u8; MAX_NAME_LEN];
        let mut len = 0;
        while len < MAX_NAME_LEN {
            let byte = self.peek();
            if byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'-' | b'_' | b'.') {
                if let Some(slot) = buffer.get_mut(len) {
                    *slot = byte.to_ascii_lowercase();
                }
                len += 1;
                self.pos += 1;
            } else {
                break;
            }
        }
        // Only ASCII was copied.
        std::str::from_utf8(buffer.get(..len).unwrap_or(&[]))
            .ok()
            .map(make_name)
    }

    /// `htmlParseName`: an XML name (entity names, PI targets, the doctype name).
    fn xml_name(&mut self) -> Option<&str> {
        let start = self.pos;
        let first = self.current_char()?;
        if !(first.is_ascii_alphabetic()
            || first == '_'
            || first == ':'
            || (!first.is_ascii() && first.is_alphabetic()))
        {
            return None;
        }
        self.advance_char();
        while let Some(c) = self.current_char() {
            if c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | ':' | '.')
                || (!c.is_ascii() && c.is_alphanumeric())
            {
                self.advance_char();
            } else {
                break;
            }
        }
        self.src.get(start..self.pos)
    }

    /// `htmlParseElementInternal` + `htmlParseStartTag`.
    fn element(&mut self) {
        self.pos += 1; // '<'
        let Some(name) = self.html_name() else {
            return;
        };
        self.auto_close(&name);
        self.check_implied(&name);
        if self.halted {
            return;
        }
        let mut discard = false;
        if name == "html" && !self.open.is_empty() {
            discard = true;
        }
        if name == "head" && self.open.len() != 1 {
            discard = true;
        }
        if name == "body" && self.is_open("body") {
            discard = true;
        }
        if discard {
            self.discarded += 1;
        }

        let attrs = self.attributes();
        if !discard && !self.push_element(&name, attrs) {
            return;
        }

        // From here libxml2 works on the current element, which for a dropped tag is the
        // enclosing one.
        let Some(current) = self.current_name() else {
            if self.peek() == b'>' {
                self.pos += 1;
            }
            return;
        };
        let current_is_void = element_info(current).is_some_and(|info| info.empty);
        if self.peek() == b'/' && self.peek_at(1) == b'>' {
            // libxml2 honours `<x/>` for every element.
            self.pos += 2;
            self.pop_element();
            return;
        }
        if self.peek() == b'>' {
            self.pos += 1;
        } else {
            // "Couldn't find end of Start Tag": the current element is closed at once.
            self.pop_element();
            return;
        }
        if current_is_void {
            self.pop_element();
        }
    }

    /// The attribute list of a start tag; the first of duplicated names wins.
    fn attributes(&mut self) -> Vec<Attr> {
        let mut attrs: Vec<Attr> = Vec::new();
        let mut seen: HashSet<Name> = HashSet::new();
        self.skip_blanks();
        while !self.halted {
            let c = self.peek();
            if c == 0 || c == b'>' || (c == b'/' && self.peek_at(1) == b'>') {
                break;
            }
            match self.html_name() {
                Some(name) => {
                    self.skip_blanks();
                    let mut value = None;
                    if self.peek() == b'=' {
                        self.pos += 1;
                        self.skip_blanks();
                        value = Some(self.attribute_value());
                    }
                    // Past a handful of attributes, remember the names in a set so that a tag
                    // with thousands of them stays linear.
                    let duplicate = if attrs.len() < 16 {
                        attrs.iter().any(|attr| attr.name == name)
                    } else {
                        !seen.insert(name.clone())
                    };
                    if !duplicate {
                        if attrs.len() == 15 {
                            seen.extend(attrs.iter().map(|attr| attr.name.clone()));
                            seen.insert(name.clone());
                        }
                        attrs.push(Attr { name, value });
                    }
                }
                None => {
                    // Bogus attribute text: skipped up to the next blank or the end of the tag.
                    loop {
                        let c = self.peek();
                        if c == 0
                            || is_blank(c)
                            || c == b'>'
                            || (c == b'/' && self.peek_at(1) == b'>')
                        {
                            break;
                        }
                        self.advance_char();
                    }
                }
            }
            self.skip_blanks();
        }
        attrs
    }

    /// `htmlParseAttValue`.
    fn attribute_value(&mut self) -> String {
        match self.peek() {
            quote @ (b'"' | b'\'') => {
                self.pos += 1;
                let value = self.attribute_text(Some(quote));
                if self.peek() == quote {
                    self.pos += 1;
                }
                value
            }
            _ => self.attribute_text(None),
        }
    }

    /// `htmlParseHTMLAttribute`: up to the quote (or, unquoted, a blank or `>`), decoding
    /// references. An unterminated quote runs to the end of the input, as in libxml2.
    fn attribute_text(&mut self, stop: Option<u8>) -> String {
        let mut value = String::new();
        // An invalid character reference writes a NUL into libxml2's C string, which ends the
        // value there even though parsing goes on.
        let mut cut = false;
        loop {
            let c = self.peek();
            if c == 0 || Some(c) == stop {
                break;
            }
            if stop.is_none() && (c == b'>' || is_blank(c)) {
                break;
            }
            if c == b'&' {
                let decoded = if self.peek_at(1) == b'#' {
                    match self.char_ref() {
                        Some(ch) => ch.to_string(),
                        None => {
                            cut = true;
                            String::new()
                        }
                    }
                } else {
                    self.pos += 1;
                    self.entity_after_ampersand()
                };
                if !cut {
                    value.push_str(&decoded);
                }
                continue;
            }
            if let Some(ch) = self.current_char() {
                if !cut {
                    value.push(ch);
                }
                self.advance_char();
            } else {
                break;
            }
        }
        value
    }

    /// After a consumed `&`: a known `&name;` becomes its character, anything else stays as
    /// written (`&name` — a following `;` is left for the caller to read as text).
    fn entity_after_ampersand(&mut self) -> String {
        let Some(name) = self.xml_name().map(str::to_owned) else {
            return "&".to_owned();
        };
        if self.peek() == b';'
            && let Some(ch) = entities::lookup(&name)
        {
            self.pos += 1;
            return ch.to_string();
        }
        format!("&{name}")
    }

    /// `htmlParseCharRef` at `&#`: the character, or `None` for a value libxml2 rejects.
    fn char_ref(&mut self) -> Option<char> {
        let hex = matches!(self.peek_at(2), b'x' | b'X');
        self.pos += if hex { 3 } else { 2 };
        let radix = if hex { 16 } else { 10 };
        let mut value: u32 = 0;
        loop {
            let c = self.peek();
            if c == b';' {
                self.pos += 1;
                break;
            }
            let Some(digit) = char::from(c).to_digit(radix) else {
                break;
            };
            if value < 0x11_0000 {
                value = value * radix + digit;
            }
            self.pos += 1;
        }
        char::from_u32(value).filter(|&ch| ch != '\0' && is_xml_char(ch))
    }

    /// `htmlParseReference` in content.
    fn reference(&mut self) {
        if self.peek_at(1) == b'#' {
            if let Some(ch) = self.char_ref() {
                self.check_paragraph();
                self.add_text(ch.encode_utf8(&mut [0; 4]));
            }
            return;
        }
        self.pos += 1;
        let text = self.entity_after_ampersand();
        self.check_paragraph();
        self.add_text(&text);
    }

    /// `htmlParseCharData`: text up to the next `<` or `&`.
    fn char_data(&mut self) {
        let start = self.pos;
        while !self.at_end() && !matches!(self.peek(), b'<' | b'&') {
            self.pos += 1;
        }
        let raw = self.src.get(start..self.pos).unwrap_or("");
        let text = clean_text(raw);
        // Blanks before a tag (or the end) never imply a paragraph; anything else may.
        let blank = text.bytes().all(is_blank);
        if !(blank && self.peek() != b'&') {
            self.check_paragraph();
        }
        self.add_text(&text);
    }

    /// `htmlParseScript`: `script`/`style` content is raw up to `</` + the element's name.
    fn raw_text(&mut self) {
        let name = self.current_name().unwrap_or("").as_bytes().to_vec();
        let start = self.pos;
        while !self.at_end() {
            if self.peek() == b'<' && self.peek_at(1) == b'/' {
                let candidate = self.bytes.get(self.pos + 2..self.pos + 2 + name.len());
                if candidate.is_some_and(|slice| slice.eq_ignore_ascii_case(&name)) {
                    break;
                }
            }
            self.pos += 1;
        }
        let raw = self.src.get(start..self.pos).unwrap_or("");
        let text = clean_text(raw);
        self.add_text(&text);
    }

    /// `htmlParseEndTag`.
    fn end_tag(&mut self) {
        self.pos += 2;
        let Some(name) = self.html_name() else {
            return;
        };
        self.skip_blanks();
        while !self.at_end() && self.peek() != b'>' {
            self.advance_char();
        }
        if self.peek() == b'>' {
            self.pos += 1;
        }
        if self.discarded > 0 && matches!(name.as_ref(), "html" | "body" | "head") {
            self.discarded -= 1;
            return;
        }
        if !self.is_open(&name) {
            return;
        }
        // `htmlAutoCloseOnClose`: a misplaced end tag may only close lower-priority elements.
        let priority = end_priority(&name);
        for &id in self.open.iter().rev() {
            let open = self.dom.element_name(id).unwrap_or("");
            if open == name {
                break;
            }
            if end_priority(open) > priority {
                return;
            }
        }
        while self.current_name().is_some_and(|current| current != name) {
            self.pop_element();
        }
        if self.current_name() == Some(name.as_ref()) {
            self.pop_element();
        }
    }

    /// `htmlParseComment` at `<!--`. An unterminated comment swallows the rest of the input.
    fn comment(&mut self) {
        self.pos += 4;
        let rest = self.src.get(self.pos..).unwrap_or("");
        if rest.starts_with('>') {
            self.pos += 1;
            self.add_comment(String::new());
            return;
        }
        if rest.starts_with("->") {
            self.pos += 2;
            self.add_comment(String::new());
            return;
        }
        match comment_end(rest) {
            Some((at, len)) => {
                let content = rest.get(..at).unwrap_or("");
                let content: String = content.chars().filter(|&c| is_xml_char(c)).collect();
                self.pos += at + len;
                self.add_comment(content);
            }
            None => self.pos = self.bytes.len(),
        }
    }

    /// `<!` not starting a comment or doctype (Outlook's `<![if !mso]>`…): skipped up to `>`.
    fn bogus_comment(&mut self) {
        while !self.at_end() {
            let c = self.peek();
            self.advance_char();
            if c == b'>' {
                break;
            }
        }
    }

    /// `htmlParsePI`: dropped from the tree (it never shows in GitLab's output).
    fn processing_instruction(&mut self) {
        self.pos += 2;
        if self.xml_name().is_none() {
            return;
        }
        while !self.at_end() && self.peek() != b'>' {
            self.advance_char();
        }
        if self.peek() == b'>' {
            self.pos += 1;
        }
    }

    /// `htmlParseDocTypeDecl`: quoted literals are honoured, so a `>` inside one does not end it.
    fn doctype(&mut self) {
        self.pos += 9;
        self.skip_blanks();
        let _ = self.xml_name();
        self.skip_blanks();
        let public = self.starts_with_ignore_case(b"PUBLIC");
        let system = self.starts_with_ignore_case(b"SYSTEM");
        if public || system {
            self.pos += 6;
            self.skip_blanks();
            self.quoted_literal();
            if public {
                self.skip_blanks();
                if matches!(self.peek(), b'"' | b'\'') {
                    self.quoted_literal();
                }
            }
        }
        self.skip_blanks();
        while !self.at_end() && self.peek() != b'>' {
            self.advance_char();
        }
        if self.peek() == b'>' {
            self.pos += 1;
        }
    }

    fn quoted_literal(&mut self) {
        let quote = self.peek();
        if quote != b'"' && quote != b'\'' {
            return;
        }
        self.pos += 1;
        while !self.at_end() && self.peek() != quote {
            self.advance_char();
        }
        if self.peek() == quote {
            self.pos += 1;
        }
    }
}

/// Where the comment body `rest` ends: the first `-->` or `--!>`, as `(offset, terminator
/// length)`. One forward scan, so a page of comments stays linear.
fn comment_end(rest: &str) -> Option<(usize, usize)> {
    let bytes = rest.as_bytes();
    let mut from = 0;
    while let Some(found) = bytes
        .get(from..)
        .and_then(|tail| tail.windows(2).position(|pair| pair == b"--"))
    {
        let at = from + found;
        match bytes.get(at + 2) {
            Some(b'>') => return Some((at, 3)),
            Some(b'!') if bytes.get(at + 3) == Some(&b'>') => return Some((at, 4)),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// Character data as libxml2 stores it: a NUL inside text reads as a space, characters XML
/// forbids (most C0 controls, U+FFFE, U+FFFF) are dropped.
fn clean_text(raw: &str) -> std::borrow::Cow<'_, str> {
    let needs_cleaning = raw
        .bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    if !needs_cleaning {
        return std::borrow::Cow::Borrowed(raw);
    }
    std::borrow::Cow::Owned(
        raw.chars()
            .filter_map(|c| match c {
                '\0' => Some(' '),
                c if is_xml_char(c) => Some(c),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact rendering of the tree for assertions: `name(children)`, text quoted.
    fn shape(dom: &Dom, id: NodeId) -> String {
        let children: Vec<String> = dom.children(id).iter().map(|&c| shape(dom, c)).collect();
        match &dom.node(id).kind {
            Kind::Document => children.join(""),
            Kind::Element { name, .. } => format!("{name}({})", children.join(",")),
            Kind::Text(text) => format!("{text:?}"),
            Kind::Comment(_) => "#".to_owned(),
        }
    }

    fn tree(html: &str) -> String {
        let dom = parse(html);
        shape(&dom, DOCUMENT)
    }

    #[test]
    fn implies_html_body_and_leading_paragraph() {
        assert_eq!(
            tree("Hello<br>world"),
            r#"html(body(p("Hello",br(),"world")))"#
        );
        assert_eq!(tree("<div>x</div>"), r#"html(body(div("x")))"#);
        assert_eq!(tree("<b>x</b> y"), r#"html(body(b("x")," y"))"#);
    }

    #[test]
    fn follows_libxml2_not_html5_for_unknown_and_stray_tags() {
        assert_eq!(
            tree("<p><details>d</details></p>"),
            r#"html(body(p(details("d"))))"#
        );
        assert_eq!(
            tree("<p><div>x</div></p>y"),
            r#"html(body(p(),div("x"),"y"))"#
        );
        assert_eq!(tree("<div/>x"), r#"html(body(div(),"x"))"#);
        assert_eq!(
            tree("<div><span>a</div>b"),
            r#"html(body(div(span("a")),"b"))"#
        );
        assert_eq!(
            tree("<div><span>a</span></div></span>b"),
            r#"html(body(div(span("a")),"b"))"#
        );
    }

    #[test]
    fn head_content_and_entities() {
        assert_eq!(
            tree("<title>t</title><p>a &amp; b &foo; &copy &hellip; &#65;&#x42;</p>"),
            r#"html(head(title("t")),body(p("a & b &foo; &copy … AB")))"#
        );
        assert_eq!(tree("<p>a<!-- c -->b</p>"), r#"html(body(p("a",#,"b")))"#);
        assert_eq!(
            tree("<style>p > b { }</style>x"),
            r#"html(head(style("p > b { }")),body(p("x")))"#
        );
    }

    #[test]
    fn attributes_keep_source_order_and_first_duplicate() {
        let dom = parse(r#"<a href="x&amp;y" HREF=z title='t' nowrap>l</a>"#);
        let link = dom
            .preorder(DOCUMENT)
            .into_iter()
            .find(|&id| dom.element_name(id) == Some("a"));
        let link = link.unwrap_or(DOCUMENT);
        let attrs: Vec<(String, Option<String>)> = dom
            .attrs(link)
            .iter()
            .map(|a| (a.name.to_string(), a.value.clone()))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("href".into(), Some("x&y".into())),
                ("title".into(), Some("t".into())),
                ("nowrap".into(), None)
            ]
        );
    }

    #[test]
    fn duplicate_attributes_keep_the_first_even_in_long_lists() {
        let names: String = (0..40).map(|i| format!(" a{i}={i}")).collect();
        let dom = parse(&format!("<p{names} a3=x a30=y>t</p>"));
        let p = dom
            .preorder(DOCUMENT)
            .into_iter()
            .find(|&id| dom.element_name(id) == Some("p"))
            .unwrap_or(DOCUMENT);
        assert_eq!(dom.attrs(p).len(), 40);
        assert_eq!(dom.attr(p, "a3"), Some("3"));
        assert_eq!(dom.attr(p, "a30"), Some("30"));
    }

    #[test]
    fn depth_limit_halts_like_libxml2() {
        let html = "<div>".repeat(1000) + "deep";
        let dom = parse(&html);
        let depth = dom.preorder(DOCUMENT).len();
        // html + body + divs up to the limit; the text is never reached.
        assert_eq!(depth, MAX_DEPTH + 2);
    }
}
