//! Text: character data, the raw content of `script` and `style`, and entity and character
//! references, decoded with libxml2's HTML 4 entity table and its rules for what an unknown or
//! invalid reference leaves behind.
//!
//! Text is also where implied paragraphs start, and where libxml2 rewrites characters XML
//! forbids, so both are handled here as libxml2 does.

use super::{Parser, is_blank, is_xml_char};
use crate::html::entities;

impl Parser<'_> {
    /// After a consumed `&`: a known `&name;` becomes its character, anything else stays as
    /// written (`&name` — a following `;` is left for the caller to read as text).
    pub(super) fn entity_after_ampersand(&mut self) -> String {
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
    pub(super) fn char_ref(&mut self) -> Option<char> {
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
    pub(super) fn reference(&mut self) {
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
    pub(super) fn char_data(&mut self) {
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
    pub(super) fn raw_text(&mut self) {
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
