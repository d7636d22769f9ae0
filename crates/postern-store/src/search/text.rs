//! One small language, parsed once here ([`SearchText::parse`]) and written out for each
//! backend, so both stores answer the same query the same way:
//!
//! - words are AND-ed: `printer offline` finds issues holding both words;
//! - `"a quoted phrase"` finds the words next to each other, in that order;
//! - `-word` or `-"a phrase"` excludes the issues holding it;
//! - `word*` matches every word starting with `word`;
//! - case does not matter; anything that is not a letter or a digit separates words, so
//!   `alice@example.com` is the phrase `"alice example com"` and `foo-bar` the phrase
//!   `"foo bar"` (both stores index such text as these words, see the migrations).
//!
//! Nothing else is syntax: parentheses, `OR`, `NEAR`, `column:` prefixes, `&`, `|`, `!` and
//! quotes inside words are ordinary text (the punctuation separates words, `OR` and `NEAR` are
//! words). What reaches FTS5's `MATCH` or PostgreSQL's `to_tsquery` is built here from words
//! made of letters and digits only, each quoted, so no input can inject their syntax. A query
//! of only exclusions lists every issue without them. The parse is one pass over at most
//! [`MAX_QUERY_CHARS`] characters and keeps at most [`MAX_TERMS`] terms of at most
//! [`MAX_PHRASE_WORDS`] words; the rest is ignored.

/// Characters of a search text that are read; the rest is ignored.
pub const MAX_QUERY_CHARS: usize = 256;
/// Terms (words or phrases, included or excluded) kept from one search text.
pub const MAX_TERMS: usize = 16;
/// Words kept in one phrase (or in one word that punctuation splits, such as an address).
pub const MAX_PHRASE_WORDS: usize = 16;

/// One term of a search text: a word (one entry in `words`) or a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// Lower-case words of letters and digits only: safe inside either store's quotes.
    words: Vec<String>,
    /// The last word is a prefix (`word*`).
    prefix: bool,
    /// `-term`: issues holding it are left out.
    excluded: bool,
}

/// A parsed search text (see the module documentation for the language).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<Term>,
}

impl SearchText {
    /// Parses what a person typed. Never fails: what is not syntax is text, and text that
    /// holds no letter or digit is no term.
    pub fn parse(input: &str) -> SearchText {
        let chars: Vec<char> = input.chars().take(MAX_QUERY_CHARS).collect();
        let mut terms = Vec::new();
        let mut i = 0;
        while i < chars.len() && terms.len() < MAX_TERMS {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let excluded = chars[i] == '-';
            if excluded {
                i += 1;
            }
            let (start, end, prefix);
            if i < chars.len() && chars[i] == '"' {
                // A phrase runs to the next quote, or to the end of the text.
                start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                end = i;
                if i < chars.len() {
                    i += 1;
                }
                prefix = i < chars.len() && chars[i] == '*';
                if prefix {
                    i += 1;
                }
            } else {
                start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                end = i;
                prefix = end > start && chars[end - 1] == '*';
            }
            let words = words_of(&chars[start..end]);
            if !words.is_empty() {
                terms.push(Term {
                    words,
                    prefix,
                    excluded,
                });
            }
        }
        SearchText { terms }
    }

    /// Whether the text holds no term: nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn part(&self, excluded: bool) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(move |t| t.excluded == excluded)
    }

    /// FTS5 `MATCH` text for the included terms (AND) or the excluded ones (OR), if any.
    pub(super) fn fts5(&self, excluded: bool) -> Option<String> {
        let parts: Vec<String> = self
            .part(excluded)
            .map(|t| {
                // Words hold letters and digits only; the doubling is a second fence.
                let phrase = t.words.join(" ").replace('"', "\"\"");
                format!("\"{phrase}\"{}", if t.prefix { "*" } else { "" })
            })
            .collect();
        let joiner = if excluded { " OR " } else { " AND " };
        (!parts.is_empty()).then(|| parts.join(joiner))
    }

    /// `to_tsquery('simple', …)` text for the whole search: the included terms AND-ed, and
    /// none of the excluded ones. One condition, so a candidate is checked in one pass over
    /// its document.
    pub(super) fn tsquery(&self) -> Option<String> {
        match (self.tsquery_part(false), self.tsquery_part(true)) {
            (Some(included), Some(excluded)) => Some(format!("({included}) & !({excluded})")),
            (Some(included), None) => Some(included),
            (None, Some(excluded)) => Some(format!("!({excluded})")),
            (None, None) => None,
        }
    }

    /// `to_tsquery` text for the included terms (AND) or the excluded ones (OR).
    fn tsquery_part(&self, excluded: bool) -> Option<String> {
        let parts: Vec<String> = self
            .part(excluded)
            .map(|t| {
                let last = t.words.len().saturating_sub(1);
                let words: Vec<String> = t
                    .words
                    .iter()
                    .enumerate()
                    .map(|(n, w)| {
                        let star = if t.prefix && n == last { ":*" } else { "" };
                        format!("'{}'{star}", w.replace('\'', "''").replace('\\', ""))
                    })
                    .collect();
                format!("({})", words.join(" <-> "))
            })
            .collect();
        let joiner = if excluded { " | " } else { " & " };
        (!parts.is_empty()).then(|| parts.join(joiner))
    }
}

/// The words of one term: runs of letters and digits, lower-cased.
fn words_of(text: &[char]) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for &c in text {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.truncate(MAX_PHRASE_WORDS);
    words
}

#[cfg(test)]
mod tests {
    use super::SearchText;

    fn both(
        input: &str,
    ) -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let text = SearchText::parse(input);
        (
            text.fts5(false),
            text.fts5(true),
            text.tsquery_part(false),
            text.tsquery_part(true),
        )
    }

    #[test]
    fn words_phrases_exclusions_and_prefixes() {
        let (fts_in, fts_out, ts_in, ts_out) =
            both(r#"Printer "paper jam" -toner off* -"out of order""#);
        assert_eq!(
            fts_in.as_deref(),
            Some(r#""printer" AND "paper jam" AND "off"*"#)
        );
        assert_eq!(fts_out.as_deref(), Some(r#""toner" OR "out of order""#));
        assert_eq!(
            ts_in.as_deref(),
            Some("('printer') & ('paper' <-> 'jam') & ('off':*)")
        );
        assert_eq!(
            ts_out.as_deref(),
            Some("('toner') | ('out' <-> 'of' <-> 'order')")
        );
    }

    #[test]
    fn postgresql_gets_one_condition_for_the_whole_search() {
        let text = |t: &str| SearchText::parse(t).tsquery();
        assert_eq!(
            text("invoice -refund -\"credit note\"").as_deref(),
            Some("(('invoice')) & !(('refund') | ('credit' <-> 'note'))")
        );
        assert_eq!(text("-refund").as_deref(), Some("!(('refund'))"));
        assert_eq!(text("invoice").as_deref(), Some("('invoice')"));
        assert_eq!(text("").as_deref(), None);
    }

    #[test]
    fn punctuation_splits_words_into_phrases() {
        let (fts_in, _, ts_in, _) = both("alice@example.com foo-bar");
        assert_eq!(
            fts_in.as_deref(),
            Some(r#""alice example com" AND "foo bar""#)
        );
        assert_eq!(
            ts_in.as_deref(),
            Some("('alice' <-> 'example' <-> 'com') & ('foo' <-> 'bar')")
        );
    }

    #[test]
    fn hostile_text_is_only_words() {
        for input in [
            r#"" OR 1=1 --"#,
            "title:secret NEAR(a b) ) ( AND OR NOT",
            "'); DROP TABLE issues; --",
            "a & !b | c <-> d:* \\' \\\"",
            "\0nul\0 byte",
            "\"unterminated phrase",
            "*",
            "-",
            "--",
            "\"\"",
            "^a +b {c} [d]",
        ] {
            let text = SearchText::parse(input);
            for term in &text.terms {
                for word in &term.words {
                    assert!(
                        word.chars().all(char::is_alphanumeric),
                        "{input:?} gave the word {word:?}"
                    );
                }
            }
            for fts in [text.fts5(false), text.fts5(true)].into_iter().flatten() {
                // Quotes only around phrases, operators only between them.
                let inner: String = fts
                    .split(" AND ")
                    .flat_map(|p| p.split(" OR "))
                    .map(|p| p.trim_end_matches('*'))
                    .map(|p| {
                        assert!(p.starts_with('"') && p.ends_with('"'), "{fts:?}");
                        p[1..p.len() - 1].to_owned()
                    })
                    .collect();
                assert!(!inner.contains('"'), "{fts:?}");
            }
        }
        assert!(SearchText::parse("( ) : * - \"\" ' \\").is_empty());
        assert_eq!(
            SearchText::parse("NEAR(a b)").fts5(false).as_deref(),
            Some(r#""near a" AND "b""#)
        );
    }

    #[test]
    fn long_input_is_capped() {
        let long = "word ".repeat(100_000);
        let text = SearchText::parse(&long);
        assert_eq!(text.terms.len(), super::MAX_TERMS);
        let one = "a".repeat(1_000_000);
        let text = SearchText::parse(&one);
        assert_eq!(text.terms[0].words[0].len(), super::MAX_QUERY_CHARS);
        let dotted = "a.".repeat(1000);
        let text = SearchText::parse(&dotted);
        assert_eq!(text.terms[0].words.len(), super::MAX_PHRASE_WORDS);
    }
}
