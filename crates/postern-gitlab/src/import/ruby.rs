//! The few Ruby assignments of Omnibus `gitlab.rb` that configure GitLab's mailboxes.
//!
//! Written by hand rather than with a Ruby parser crate: the crates that parse Ruby (lib-ruby-parser,
//! tree-sitter-ruby) are large, build C or generated tables, and would still leave us evaluating
//! the syntax tree. What Omnibus users write for these keys is a tiny literal language —
//! `gitlab_rails['incoming_email_port'] = 993`, quoted strings with escapes, `true`/`false`/`nil`,
//! and hashes for `inbox_options` — and anything beyond it (`ENV[...]`, `File.read`, string
//! interpolation) must be refused with the line's number anyway, because we cannot run Ruby.
//! Lines that do not assign a key we read are skipped unread, so the rest of a real `gitlab.rb`
//! (which is full Ruby) never matters.

use serde_json::{Map, Number, Value};

/// One assignment we read: `gitlab_rails['<key>'] = <value>` or `external_url '<url>'`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assignment {
    /// `gitlab_rails` key, or `external_url`.
    pub key: String,
    /// The literal's value.
    pub value: Value,
    /// 1-based line of the assignment.
    pub line: usize,
}

/// A Ruby literal we could not read, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RubyError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Whether a `gitlab_rails` key is one postern reads.
fn relevant(key: &str) -> bool {
    key.starts_with("incoming_email_")
        || key.starts_with("service_desk_email_")
        || matches!(
            key,
            "gitlab_host"
                | "gitlab_port"
                | "gitlab_https"
                | "gitlab_relative_url_root"
                | "redis_host"
                | "redis_port"
                | "redis_password"
                | "redis_database"
                | "redis_ssl"
                | "redis_socket"
                | "redis_sentinels"
        )
}

/// Reads every relevant assignment of `text`, in order.
pub(crate) fn assignments(text: &str) -> Result<Vec<Assignment>, RubyError> {
    let mut out = Vec::new();
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    while p.i < p.s.len() {
        p.skip_blank_inline();
        let line = p.line;
        if p.eat_word("gitlab_rails") {
            p.skip_blank_inline();
            if p.peek() != Some(b'[') {
                p.skip_line();
                continue;
            }
            p.i += 1;
            p.skip_blank_inline();
            let key = match p.peek() {
                Some(b'\'' | b'"') => p.string()?,
                Some(b':') => p.symbol()?,
                _ => {
                    p.skip_line();
                    continue;
                }
            };
            if !relevant(&key) {
                p.skip_line();
                continue;
            }
            p.skip_blank_inline();
            if !p.eat(b']') {
                return Err(p.error(format!("expected `]` after gitlab_rails['{key}'")));
            }
            p.skip_blank_inline();
            if !p.eat(b'=') || p.peek() == Some(b'=') {
                return Err(p.error(format!(
                    "gitlab_rails['{key}'] is used but not assigned a literal; postern reads only `gitlab_rails['{key}'] = <value>`"
                )));
            }
            let value = p.value(&key)?;
            p.end_of_statement(&key)?;
            out.push(Assignment { key, value, line });
        } else if p.eat_word("external_url") {
            p.skip_blank_inline();
            let paren = p.eat(b'(');
            p.skip_blank_inline();
            let value = p.value("external_url")?;
            if paren {
                p.skip_blank_inline();
                if !p.eat(b')') {
                    return Err(p.error("expected `)` after external_url's argument".to_owned()));
                }
            }
            p.end_of_statement("external_url")?;
            out.push(Assignment {
                key: "external_url".to_owned(),
                value,
                line,
            });
        } else {
            p.skip_line();
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn error(&self, message: String) -> RubyError {
        RubyError {
            line: self.line,
            message,
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `word` if it is next and not followed by an identifier character.
    fn eat_word(&mut self, word: &str) -> bool {
        let end = self.i + word.len();
        if self.s.get(self.i..end) == Some(word.as_bytes())
            && !self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn skip_blank_inline(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }

    /// Skips blanks, newlines and comments (inside a hash or array).
    fn skip_blank_all(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.i += 1,
                Some(b'\n') => {
                    self.i += 1;
                    self.line += 1;
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                self.line += 1;
                return;
            }
        }
    }

    /// After a value: only blanks, `;` and a comment may follow on the line.
    fn end_of_statement(&mut self, key: &str) -> Result<(), RubyError> {
        self.skip_blank_inline();
        self.eat(b';');
        self.skip_blank_inline();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') | Some(b'#') => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err(self.error(format!(
                "{key}: the value is not a plain Ruby literal (string, number, true/false/nil, hash, array); postern cannot evaluate Ruby expressions"
            ))),
        }
    }

    fn value(&mut self, key: &str) -> Result<Value, RubyError> {
        self.skip_blank_all();
        let not_literal = |p: &Self| {
            p.error(format!(
                "{key}: the value is not a plain Ruby literal (string, number, true/false/nil, hash, array); postern cannot evaluate Ruby expressions"
            ))
        };
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::String(self.string()?)),
            Some(b':') => Ok(Value::String(self.symbol()?)),
            Some(b'{') => self.hash(key),
            Some(b'[') => self.array(key),
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                self.number().ok_or_else(|| not_literal(self))
            }
            _ => {
                if self.eat_word("true") {
                    Ok(Value::Bool(true))
                } else if self.eat_word("false") {
                    Ok(Value::Bool(false))
                } else if self.eat_word("nil") {
                    Ok(Value::Null)
                } else {
                    Err(not_literal(self))
                }
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        self.eat(b'-');
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == b'_' || c == b'.')
        {
            self.i += 1;
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'(')
        {
            return None;
        }
        let text: String = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .chars()
            .filter(|c| *c != '_')
            .collect();
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
    }

    /// `:name` (or `:'name'`, `:"name"`) → `name`.
    fn symbol(&mut self) -> Result<String, RubyError> {
        self.i += 1;
        if matches!(self.peek(), Some(b'\'' | b'"')) {
            return self.string();
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.error("expected a symbol name after `:`".to_owned()));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A single- or double-quoted string with Ruby's escapes; interpolation is refused.
    fn string(&mut self) -> Result<String, RubyError> {
        let quote = self.s[self.i];
        let start_line = self.line;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(RubyError {
                    line: start_line,
                    message: "unterminated string".to_owned(),
                });
            };
            self.i += 1;
            match c {
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                c if c == quote => break,
                b'#' if quote == b'"' && self.peek() == Some(b'{') => {
                    return Err(self.error(
                        "string interpolation (`#{...}`) cannot be evaluated by postern; write the value itself".to_owned(),
                    ));
                }
                b'\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.i += 1;
                    if quote == b'\'' {
                        if e != b'\\' && e != b'\'' {
                            out.push(b'\\');
                        }
                        out.push(e);
                        continue;
                    }
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b's' => out.push(b' '),
                        b'0' => out.push(0),
                        b'e' => out.push(0x1b),
                        b'a' => out.push(0x07),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'v' => out.push(0x0b),
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        b'\n' => self.line += 1,
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not valid UTF-8".to_owned()))
    }

    /// After `\u`: `XXXX` or `{X…}`.
    fn unicode_escape(&mut self) -> Result<char, RubyError> {
        let braced = self.eat(b'{');
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) && (braced || self.i - start < 4) {
            self.i += 1;
        }
        let hex = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if braced && !self.eat(b'}') {
            return Err(self.error("bad \\u{...} escape".to_owned()));
        }
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error("bad \\u escape".to_owned()))
    }

    fn hash(&mut self, key: &str) -> Result<Value, RubyError> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.skip_blank_all();
            if self.eat(b'}') {
                return Ok(Value::Object(map));
            }
            let name = match self.peek() {
                Some(b'\'' | b'"') => self.string()?,
                Some(b':') => self.symbol()?,
                Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        self.i += 1;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                }
                _ => return Err(self.error(format!("{key}: expected a hash key"))),
            };
            self.skip_blank_all();
            // `k: v` and `'k': v` are symbol keys; `k => v` any key.
            if self.eat(b':') {
            } else if self.s.get(self.i..self.i + 2) == Some(b"=>") {
                self.i += 2;
            } else {
                return Err(self.error(format!(
                    "{key}: expected `=>` or `:` after hash key `{name}`"
                )));
            }
            let value = self.value(key)?;
            map.insert(name, value);
            self.skip_blank_all();
            if self.eat(b',') {
                continue;
            }
            self.skip_blank_all();
            if self.eat(b'}') {
                return Ok(Value::Object(map));
            }
            return Err(self.error(format!("{key}: expected `,` or `}}` in hash")));
        }
    }

    fn array(&mut self, key: &str) -> Result<Value, RubyError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_blank_all();
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            items.push(self.value(key)?);
            self.skip_blank_all();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            return Err(self.error(format!("{key}: expected `,` or `]` in array")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Result<Value, RubyError> {
        assignments(text).map(|mut a| a.remove(0).value)
    }

    #[test]
    fn literals() {
        assert_eq!(
            one("gitlab_rails['incoming_email_port'] = 993").ok(),
            Some(json!(993))
        );
        assert_eq!(
            one("gitlab_rails[\"incoming_email_ssl\"] = true # yes").ok(),
            Some(json!(true))
        );
        assert_eq!(
            one("gitlab_rails['incoming_email_host'] = nil;").ok(),
            Some(json!(null))
        );
        assert_eq!(
            one(r#"gitlab_rails['incoming_email_password'] = "a\"b\\c\n\u00e9""#).ok(),
            Some(json!("a\"b\\c\né"))
        );
        assert_eq!(
            one(r"gitlab_rails['incoming_email_password'] = 'it\'s \n'").ok(),
            Some(json!("it's \\n"))
        );
    }

    #[test]
    fn hashes_of_every_key_style() {
        let text = "gitlab_rails['incoming_email_inbox_options'] = {\n  'tenant_id': 't',\n  client_id: 'c', # comment\n  'poll_interval' => 60, :x => [1, 'two'],\n}\n";
        assert_eq!(
            one(text).ok(),
            Some(json!({"tenant_id": "t", "client_id": "c", "poll_interval": 60, "x": [1, "two"]}))
        );
    }

    #[test]
    fn unrelated_lines_are_ignored() {
        let text = "nginx['x'] = File.read('/y')\nputs \"hi\"\nexternal_url 'https://gitlab.example.com'\ngitlab_rails['time_zone'] = ENV['TZ']\n";
        let a = assignments(text).ok().unwrap_or_default();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].key, "external_url");
        assert_eq!(a[0].line, 3);
    }

    #[test]
    fn expressions_are_refused_with_their_line() {
        let e = assignments("\n\ngitlab_rails['incoming_email_password'] = ENV['PW']\n").err();
        assert_eq!(e.as_ref().map(|e| e.line), Some(3));
        let e = assignments("gitlab_rails['incoming_email_password'] = \"#{x}\"\n").err();
        assert!(e.is_some_and(|e| e.message.contains("interpolation")));
        let e = assignments("gitlab_rails['incoming_email_port'] = 99 + 1\n").err();
        assert!(e.is_some());
        let e = assignments("x = gitlab_rails['incoming_email_port']\n").ok();
        assert_eq!(e.map(|a| a.len()), Some(0));
    }
}
