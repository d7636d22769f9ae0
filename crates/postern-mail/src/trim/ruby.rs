//! Ruby (Onigmo) regular-expression semantics, spelled in Rust `regex` syntax.
//!
//! The gem's regexes run on UTF-8 strings under Ruby's Onigmo engine, whose classes do not mean
//! what the same spelling means in the `regex` crate. The mapping below was checked code point by
//! code point against Ruby 3.1:
//!
//! | Ruby              | meaning in Ruby (UTF-8 string)         | spelled here                      |
//! |-------------------|----------------------------------------|-----------------------------------|
//! | `\s`              | ASCII only: `[ \t\n\v\f\r]`            | `%S%`                             |
//! | `\w`              | ASCII only: `[0-9A-Za-z_]`             | `%W%`                             |
//! | `\d`              | ASCII only                             | `[0-9]`                           |
//! | `[[:blank:]]`     | `\t` + Unicode `Zs`                    | `%BLANK%`                         |
//! | `[[:space:]]`     | Unicode `White_Space`                  | `\s` (the crate's `\s` is Unicode)|
//! | `[[:alpha:]]`     | Unicode `Alphabetic`                   | `%ALPHA%`                         |
//! | `[[:word:]]`      | `Alphabetic`, `M`, `Nd`, `Pc`           | `%WORD%`                          |
//! | `\b`              | Unicode: `[[:word:]]` plus `²³¹¼½¾`      | rewritten by hand where used      |
//! | `/i`              | full case folding (`ß` = `ss` …)        | `(?i)` + [`fold_ligatures`]       |
//!
//! `%NAME%` placeholders are expanded by [`rx`]; they stand for the *inside* of a bracket class so
//! they can be combined (`[%BLANK%>*]`).
//!
//! One difference remains: the Unicode *version*. The `regex` crate and `char` methods follow the
//! Unicode release of this Rust toolchain, Ruby its own (13.0 for Ruby 3.1), so characters
//! assigned or re-classified in between (e.g. U+0363…U+036F became `Alphabetic`) can classify
//! differently. On characters both versions agree on, the port matched the gem on every input of
//! a differential fuzz run.

use regex::Regex;

/// Placeholder → class contents. Kept in one table so every regex in the trimmer agrees.
const PLACEHOLDERS: &[(&str, &str)] = &[
    // Ruby `\s` is ASCII-only on UTF-8 strings (NBSP, U+2003 … are not `\s` in Ruby).
    ("%S%", r"\t\n\x0B\x0C\r "),
    // Ruby `\w` is ASCII-only.
    ("%W%", "0-9A-Za-z_"),
    // Ruby `[[:blank:]]` is Unicode: tab plus Space_Separator (NBSP, U+3000 …).
    ("%BLANK%", r"\t\p{Zs}"),
    // Ruby `[[:alpha:]]` is the Alphabetic property.
    ("%ALPHA%", r"\p{Alphabetic}"),
    // Ruby `[[:word:]]`: Alphabetic, marks, decimal digits, connector punctuation. The crate's
    // Unicode `\w` also has ZWJ/ZWNJ, which Ruby's class lacks.
    ("%WORD%", r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"),
    // The characters Ruby's `\b` treats as word characters: `[[:word:]]` plus the Latin-1
    // superscripts and fractions (Onigmo consults its single-byte ctype table below U+0100).
    (
        "%BW%",
        r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE}",
    ),
];

/// Expands the `%NAME%` placeholders of a regex written in Ruby's terms.
fn expand(src: &str) -> String {
    let mut out = src.to_owned();
    for (name, class) in PLACEHOLDERS {
        out = out.replace(name, class);
    }
    out
}

/// Compiles a regex written with the placeholders above. Only ever called on the trimmer's own
/// static patterns (never on input), from `LazyLock`s; each module's `statics_compile` test
/// forces all of its regexes, so a bad pattern fails the tests rather than a caller.
pub(super) fn rx(src: &str) -> Regex {
    let expanded = expand(src);
    match Regex::new(&expanded) {
        Ok(re) => re,
        // A static pattern that does not compile is a programming error, caught by the tests.
        Err(err) => panic!("trimmer regex {src:?} does not compile: {err}"),
    }
}

/// Like [`rx`] for a pattern that is case-insensitive in Ruby (`/i`): also applies
/// [`fold_ligatures`] to its literal text.
pub(super) fn rx_ci(src: &str) -> Regex {
    rx(&fold_ligatures(src))
}

/// Ruby's `/i` uses *full* Unicode case folding, so a literal `ss` in a case-insensitive pattern
/// also matches `ß`/`ẞ`, `st` matches `ﬅ`/`ﬆ`, `ff` matches `ﬀ`, `fi` `ﬁ`, `fl` `ﬂ`. The
/// `regex` crate only does simple folding, so those pairs are rewritten as alternations.
///
/// Only literal text is rewritten: escapes (`\s`), bracket classes and `%NAME%` placeholders are
/// copied untouched. None of the trimmer's case-insensitive literals has a quantifier right after
/// such a pair, so wrapping the pair in a group does not change what a quantifier applies to.
pub(super) fn fold_ligatures(src: &str) -> String {
    const PAIRS: &[(&str, &str)] = &[
        ("ss", "(?:ss|ß)"),
        ("st", "(?:st|ﬅ|ﬆ)"),
        ("ff", "(?:ff|ﬀ)"),
        ("fi", "(?:fi|ﬁ)"),
        ("fl", "(?:fl|ﬂ)"),
    ];
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                // An escape and the character it escapes.
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
            }
            '[' => {
                // A bracket class, up to its closing bracket (escapes inside are skipped).
                let mut j = i + 1;
                while j < chars.len() && chars[j] != ']' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            '%' => {
                // A placeholder, up to its closing `%`.
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '%' {
                    j += 1;
                }
                let end = (j + 1).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            _ => {
                let pair: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let lower = pair.to_lowercase();
                if let Some((_, alt)) = PAIRS.iter().find(|(p, _)| *p == lower) {
                    out.push_str(alt);
                    i += 2;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }
    out
}

/// Ruby `[[:blank:]]`: tab or a Space_Separator (`Zs`) character.
pub(super) fn is_blank(c: char) -> bool {
    // The complete `Zs` list (it has been stable since Unicode 6.3 dropped U+180E).
    matches!(
        c,
        '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Ruby's idea of a word character for `\b` (see `%BW%`).
pub(super) fn is_boundary_word(c: char) -> bool {
    static BW: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| rx(r"\A[%BW%]\z"));
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let mut buf = [0u8; 4];
    BW.is_match(c.encode_utf8(&mut buf))
}

/// Ruby `\b` at byte offset `at` of `text` (which must be a char boundary): the characters on
/// either side differ in word-ness; the ends of the string count as non-word.
pub(super) fn is_word_boundary(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back().is_some_and(is_boundary_word);
    let after = text[at..].chars().next().is_some_and(is_boundary_word);
    before != after
}

/// Ruby `String#strip`: removes leading and trailing ASCII whitespace *and NUL*; Unicode spaces
/// such as NBSP are kept.
pub(super) fn strip(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, '\0' | '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' '))
}

/// Ruby `str.split("\n")`: like `str::split`, but trailing empty fields are dropped (so an
/// empty string gives no lines at all).
pub(super) fn split_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.split('\n').collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Ruby `str.gsub(/^/, "> ")`: prefixes every line with `> `. Ruby's `^` matches at the start of
/// the string and after every newline *except* one that ends the string.
pub(super) fn prefix_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2 + s.len() / 8);
    out.push_str("> ");
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'\n' {
            out.push_str(&s[start..=i]);
            start = i + 1;
            if start < s.len() {
                out.push_str("> ");
            }
        }
    }
    out.push_str(&s[start..]);
    out
}

/// Ruby `text =~ /\A[[:space:]]*\z/m`: empty or Unicode whitespace only.
pub(super) fn is_blank_text(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}
