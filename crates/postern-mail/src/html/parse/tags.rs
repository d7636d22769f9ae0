//! Tags: start tags with their attribute lists, end tags, and the three ways libxml2 reads a
//! name (tag and attribute names, the non-consuming look-ahead, XML names).
//!
//! The libxml2 details that show in GitLab's output live here: names cut at
//! `HTML_PARSER_BUFFER_SIZE`, the first of duplicated attributes winning, references decoded
//! in attribute values (an invalid one cutting the value), `<x/>` closing any element, and
//! end tags that may only close lower-priority elements.

use std::collections::HashSet;

use super::{MAX_NAME_LEN, Parser, is_blank};
use crate::html::dom::{Attr, Name, name as make_name};
use crate::html::tables::{element_info, end_priority};

impl Parser<'_> {
    /// `htmlParseHTMLName_nonInvasive`: the name after `<`, lower-cased into `buffer`, without
    /// consuming it.
    pub(super) fn lookahead_name<'b>(&self, buffer: &'b mut [u8; MAX_NAME_LEN]) -> &'b str {
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
    pub(super) fn xml_name(&mut self) -> Option<&str> {
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
    pub(super) fn element(&mut self) {
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

    /// `htmlParseEndTag`.
    pub(super) fn end_tag(&mut self) {
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
}
