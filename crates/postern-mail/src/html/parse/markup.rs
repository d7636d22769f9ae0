//! Markup that is neither element nor text: comments (kept in the tree, because libxml2 keeps
//! them), and doctypes, processing instructions and other `<!…>` such as Outlook's
//! `<![if !mso]>` (read past and dropped).
//!
//! Each is read the way libxml2 reads it — an unterminated comment swallows the rest of the
//! input, a quoted doctype literal may contain `>` — since that decides where text resumes.

use super::{Parser, is_xml_char};

impl Parser<'_> {
    /// `htmlParseComment` at `<!--`. An unterminated comment swallows the rest of the input.
    pub(super) fn comment(&mut self) {
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
    pub(super) fn bogus_comment(&mut self) {
        while !self.at_end() {
            let c = self.peek();
            self.advance_char();
            if c == b'>' {
                break;
            }
        }
    }

    /// `htmlParsePI`: dropped from the tree (it never shows in GitLab's output).
    pub(super) fn processing_instruction(&mut self) {
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
    pub(super) fn doctype(&mut self) {
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
