//! Reply trimming: what the person wrote, without the quoted mail, signature or forwarded
//! message below it.
//!
//! This is a port of the Ruby gem [`email_reply_trimmer`] (Discourse, MIT licence, version
//! 0.2.0), which GitLab's `Gitlab::Email::ReplyParser` uses. It works the way the gem does:
//!
//! 1. *preprocess* the text (line endings, PGP armour, "Unsubscribe" footers, enclosed
//!    `>>>`/`<<<` quotes, `Name>` / `|` quote markers, "On … wrote:" markers split over several
//!    lines) — `preprocess.rs`;
//! 2. set fenced code blocks aside (they are never trimmed);
//! 3. classify every line with one letter — `e`mpty, `d`elimiter, `s`ignature, em`b`edded mail
//!    marker, email `h`eader, `q`uote, `t`ext — `matchers.rs`;
//! 4. run the gem's sequence of regexes over that *pattern string* to decide which lines to
//!    keep (`run` mirrors `EmailReplyTrimmer.trim` step by step, comment for comment).
//!
//! The gem's regexes are ported with Ruby's semantics (ASCII `\s`/`\w`/`\d`, Unicode POSIX
//! classes, Unicode `\b`, full case folding); where a Ruby construct has no `regex`-crate
//! equivalent (look-ahead, atomic groups, back-references) it is implemented by hand and the
//! code says which Ruby line it stands for. `ruby.rs` has the class mapping.
//!
//! GitLab-specific rule: a line holding only a single `-` or `*` (a plain-text bullet) is not a
//! delimiter; `--`, `-- `, `___` … still are.
//!
//! Deliberate differences from the gem, both about code blocks:
//! * the gem puts a random 32-hex-digit token in place of each code block and, in the *elided*
//!   part, leaves that token in; here the elided part gets the code block back;
//! * the gem re-inserts blocks with `String#gsub!(token, block)`, which treats `\\`, `\0`, `\1`,
//!   `` \` ``, `\'` in the block as replacement escapes (`C:\\dir` loses a backslash); here the
//!   block comes back byte for byte.
//!
//! Where the gem returns `nil` (blank input) [`trim`] returns an empty string, [`trim_split`]
//! two, and [`extract_embedded_email`] `None`.
//!
//! Every step is linear or close to it in the size of the text (no regex is compiled per call,
//! no step rescans the text per line), and nothing recurses on the input.
//!
//! That is [`TrimMode::Gitlab`]. [`TrimMode::Postern`] (`postern.rs`, with its data in
//! `tables.rs`) is postern's own trimmer: it fixes what people report against GitLab's (its
//! own text eaten, quoted threads in other languages kept, forwards dropped, interleaved
//! answers lost); `testdata/reply-complaints/` is its corpus. [`trim_reply`] and
//! [`trim_reply_split`] take the mode; [`trim`] and [`trim_split`] are GitLab's.
//!
//! [`email_reply_trimmer`]: https://github.com/discourse/email_reply_trimmer

mod matchers;
mod on_date;
mod postern;
mod preprocess;
mod ruby;
mod tables;
#[cfg(test)]
mod tests;

use matchers::{EMAIL_HEADER, TEXT, identify_line_content};
use preprocess::preprocess;
use regex::Regex;
use ruby::{is_blank_text, rx, split_lines, strip};
use std::sync::LazyLock;

/// Which trimmer a reply goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrimMode {
    /// GitLab's trimmer (the email_reply_trimmer port), byte for byte: what the fidelity
    /// tests compare with GitLab.
    #[default]
    Gitlab,
    /// postern's own rules (`postern.rs`): keeps what GitLab's trimmer is known to eat (Markdown
    /// rules and headings, diffs, transcripts, the sender's own quotes, forwards, interleaved
    /// answers) and recognises quoted history in many more languages and clients.
    Postern,
}

impl TrimMode {
    /// The setting's spelling: `gitlab` or `postern`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TrimMode::Gitlab => "gitlab",
            TrimMode::Postern => "postern",
        }
    }
}

impl std::str::FromStr for TrimMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gitlab" => Ok(TrimMode::Gitlab),
            "postern" => Ok(TrimMode::Postern),
            other => Err(format!(
                "unknown reply trimming mode {other:?} (expected `gitlab` or `postern`)"
            )),
        }
    }
}

impl std::fmt::Display for TrimMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kept reply in `mode`.
#[must_use]
pub fn trim_reply(text: &str, mode: TrimMode) -> String {
    match mode {
        TrimMode::Gitlab => run(text, false).0,
        TrimMode::Postern => postern::run(text, false).0,
    }
}

/// (kept reply, part that was cut away) in `mode`.
#[must_use]
pub fn trim_reply_split(text: &str, mode: TrimMode) -> (String, String) {
    match mode {
        TrimMode::Gitlab => run(text, true),
        TrimMode::Postern => postern::run(text, true),
    }
}

/// [`trim_reply_split`] knowing the thread's earlier texts (e.g. the notification the reply
/// answers, newest first): in postern mode a trailing `>` quote made only of their lines is
/// history even when the sender introduced it like their own quote. GitLab's mode ignores
/// the thread.
#[must_use]
pub fn trim_reply_in_thread(text: &str, mode: TrimMode, thread: &[&str]) -> (String, String) {
    match mode {
        TrimMode::Gitlab => run(text, true),
        TrimMode::Postern => postern::run_in_thread(text, true, &postern::Thread::new(thread)),
    }
}

/// email_reply_trimmer's `trim(text)`: the kept reply.
#[must_use]
pub fn trim(text: &str) -> String {
    run(text, false).0
}

/// `trim(text, true)`: (kept reply, elided part that was cut away).
#[must_use]
pub fn trim_split(text: &str) -> (String, String) {
    run(text, true)
}

/// `extract_embedded_email(text)`: Some((embedded_email, text_before)) when a forwarded/embedded mail is found.
#[must_use]
pub fn extract_embedded_email(text: &str) -> Option<(String, String)> {
    // return if text.nil? || text =~ /\A[[:space:]]*\z/m
    if is_blank_text(text) {
        return None;
    }
    let text = preprocess(text);
    let lines = split_lines(&text);
    let pattern: String = lines
        .iter()
        .map(|l| char::from(identify_line_content(l)))
        .collect();

    // if index = pattern =~ /(?:h[eqd]*?){3,}[tq]/
    let (index, embedded) = if let Some(m) = EX_HEADERS.find(&pattern) {
        (m.start(), strip(&lines[m.start()..].join("\n")).to_owned())
    } else if let Some(m) = EX_FORWARDED.find(&pattern) {
        // Exception for email clients (macOS / iOS) which embed fwd emails in quotes:
        // lines[index + 1..-1].map { |l| l.gsub(/^>\s*/, '') }
        let index = m.start();
        let unquoted: Vec<&str> = lines[index + 1..]
            .iter()
            .map(|l| match l.strip_prefix('>') {
                Some(rest) => rest.trim_start_matches(['\t', '\n', '\x0B', '\x0C', '\r', ' ']),
                None => l,
            })
            .collect();
        (index, strip(&unquoted.join("\n")).to_owned())
    } else {
        return None;
    };

    // before = lines[0...(pattern[0...index] =~ /e*(b[eqd]*|b*[ed]*)$/)]
    // (that regex always matches, at worst with an empty match at the end)
    let cut = EX_BEFORE
        .find(&pattern[..index])
        .map_or(index, |m| m.start());
    let before = strip(&lines[..cut].join("\n")).to_owned();
    Some((embedded, before))
}

/// One line of the text being trimmed: text, or a fenced code block set aside by
/// `hoist_code_blocks` (the gem's random token; a token line always classifies as `t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Line<'a> {
    Text(&'a str),
    Block(usize),
}

/// `/^```\w*$\n.*?^```$/m` (Ruby `m` = dot matches newline).
static CODE_BLOCK: LazyLock<Regex> = LazyLock::new(|| rx(r"(?m)^```[%W%]*$\n(?s:.)*?^```$"));

// The regexes the gem runs over the pattern string, in its order.
static P_DELIMITER: LazyLock<Regex> = LazyLock::new(|| rx("d"));
static P_REPLY_AT_END: LazyLock<Regex> = LazyLock::new(|| rx(r"^b[^t]+t[et]*$"));
static P_REPLY_START: LazyLock<Regex> = LazyLock::new(|| rx(r"t[et]*$"));
static P_EMBEDDED_NO_QUOTE: LazyLock<Regex> = LazyLock::new(|| rx(r"te*b[^q]*$"));
static P_EMBEDDED_HUGE_QUOTE: LazyLock<Regex> = LazyLock::new(|| rx(r"te*b[eqbh]*([te]*)$"));
static P_QUOTE_THEN_TEXT: LazyLock<Regex> = LazyLock::new(|| rx(r"bq[eqbh]*t"));
static P_QUOTE_AT_END: LazyLock<Regex> = LazyLock::new(|| rx(r"t?e*[qbe]+$"));
static P_HEADER_SPAN: LazyLock<Regex> = LazyLock::new(|| rx(r"h+[hte]+h+e"));
static P_HEADERS: LazyLock<Regex> = LazyLock::new(|| rx(r"t[eq]*h{3,}"));
static P_TRAILING_QUOTES: LazyLock<Regex> = LazyLock::new(|| rx(r"[eq]+$"));
static EX_HEADERS: LazyLock<Regex> = LazyLock::new(|| rx(r"(?:h[eqd]*?){3,}[tq]"));
static EX_FORWARDED: LazyLock<Regex> = LazyLock::new(|| rx(r"b(?:[eqd]*){3,}[tq]"));
static EX_BEFORE: LazyLock<Regex> = LazyLock::new(|| rx(r"e*(?:b[eqd]*|b*[ed]*)$"));

/// `EmailReplyTrimmer.trim(text, split)`; the elided part is only built when asked for.
fn run(text: &str, split: bool) -> (String, String) {
    // return if text.nil? || text =~ /\A[[:space:]]*\z/m
    if is_blank_text(text) {
        return (String::new(), String::new());
    }

    // do some cleanup
    let text = preprocess(text);

    // stash the code blocks, then work on a line-by-line basis
    let (all_lines, blocks) = hoist_and_split(&text);
    let mut lines = all_lines.clone();

    // create a string of characters, one per line, according to the line content
    let mut pattern: String = lines
        .iter()
        .map(|l| match l {
            Line::Text(s) => char::from(identify_line_content(s)),
            Line::Block(_) => char::from(TEXT),
        })
        .collect();

    // remove everything after the first delimiter, unless it is a line of underscores
    // followed (anywhere later) by an embedded email marker
    if let Some(index) = P_DELIMITER.find(&pattern).map(|m| m.start()) {
        let underscores = matches!(lines.get(index),
            Some(Line::Text(l)) if !l.is_empty() && l.bytes().all(|b| b == b'_'));
        let embedded_after = pattern[index + 1..].contains('b');
        if !(underscores && embedded_after) {
            truncate(&mut pattern, &mut lines, index);
        }
    }

    // remove all mobile signatures
    remove_all(&mut pattern, &mut lines, b's');

    // when the reply is at the end of the email
    if P_REPLY_AT_END.is_match(&pattern)
        && let Some(index) = P_REPLY_START.find(&pattern).map(|m| m.start())
    {
        // `pattern = ""` while `lines = lines[index..-1]`: from here on the two are out of
        // step, exactly as in the gem (no later step matches an empty pattern).
        pattern.clear();
        lines.drain(..index.min(lines.len()));
    }

    // if there is an embedded email marker, not followed by a quote
    // then take everything up to that marker
    if let Some(index) = P_EMBEDDED_NO_QUOTE.find(&pattern).map(|m| m.start()) {
        truncate(&mut pattern, &mut lines, index + 1);
    }

    // if there is an embedded email marker, followed by a huge quote
    // then take everything up to that marker
    let huge_quote = P_EMBEDDED_HUGE_QUOTE.captures(&pattern).and_then(|caps| {
        let texts = caps.get(1).map_or(0, |g| g.as_str().matches('t').count());
        let index = caps.get(0)?.start();
        (texts < 7 && !P_QUOTE_THEN_TEXT.is_match(&pattern)).then_some(index)
    });
    if let Some(index) = huge_quote {
        truncate(&mut pattern, &mut lines, index + 1);
    }

    // if there is some text before a huge quote ending the email,
    // then remove the quote
    if let Some(index) = P_QUOTE_AT_END.find(&pattern).map(|m| m.start()) {
        truncate(&mut pattern, &mut lines, index + 1);
    }

    // if there still are some embedded email markers, just remove them
    remove_all(&mut pattern, &mut lines, b'b');

    // fix email headers when they span over multiple lines
    if let Some(m) = P_HEADER_SPAN.find(&pattern) {
        let headers = char::from(EMAIL_HEADER).to_string().repeat(m.len());
        pattern.replace_range(m.range(), &headers);
    }

    // if there are at least 3 consecutive email headers,
    // take everything up to these headers
    if let Some(index) = P_HEADERS.find(&pattern).map(|m| m.start()) {
        truncate(&mut pattern, &mut lines, index + 1);
    }

    // if there still are some email headers, just remove them
    remove_all(&mut pattern, &mut lines, b'h');

    // remove trailing quotes when there's at least one line of text
    if pattern.contains('t')
        && let Some(index) = P_TRAILING_QUOTES.find(&pattern).map(|m| m.start())
    {
        truncate(&mut pattern, &mut lines, index);
    }

    // results (code blocks re-injected)
    let trimmed = strip(&join(&lines, &blocks)).to_owned();
    let elided = if split {
        strip(&join(&compute_elided(&all_lines, &lines), &blocks)).to_owned()
    } else {
        String::new()
    };
    (trimmed, elided)
}

/// `hoist_code_blocks` followed by `text.split("\n")`: fenced blocks (which always start at a
/// line start and end at a line end) become one [`Line::Block`] each.
fn hoist_and_split(text: &str) -> (Vec<Line<'_>>, Vec<&str>) {
    let blocks: Vec<(usize, usize)> = CODE_BLOCK
        .find_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut lines = Vec::new();
    let mut next_block = 0;
    let mut pos = 0;
    loop {
        while next_block < blocks.len() && blocks[next_block].0 < pos {
            next_block += 1; // cannot happen (blocks start at line starts); kept for safety
        }
        let end = match blocks.get(next_block) {
            Some(&(start, end)) if start == pos => {
                lines.push(Line::Block(next_block));
                next_block += 1;
                end
            }
            _ => {
                let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
                lines.push(Line::Text(&text[pos..end]));
                end
            }
        };
        if end >= text.len() {
            break;
        }
        pos = end + 1;
    }
    // Ruby's split drops trailing empty fields.
    while lines.last() == Some(&Line::Text("")) {
        lines.pop();
    }
    let blocks = blocks.iter().map(|&(s, e)| &text[s..e]).collect();
    (lines, blocks)
}

/// `lines.join("\n")` with code blocks put back.
fn join(lines: &[Line<'_>], blocks: &[&str]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(match line {
            Line::Text(s) => s,
            Line::Block(b) => blocks.get(*b).copied().unwrap_or_default(),
        });
    }
    out
}

/// `pattern = pattern[0...len]; lines = lines[0...len]`.
fn truncate(pattern: &mut String, lines: &mut Vec<Line<'_>>, len: usize) {
    pattern.truncate(len.min(pattern.len()));
    lines.truncate(len);
}

/// `while pattern =~ /x/; index = …; pattern.slice!(index); lines.slice!(index); end`, in one
/// pass (the Ruby loop is quadratic; removing every `x` at once gives the same result).
fn remove_all(pattern: &mut String, lines: &mut Vec<Line<'_>>, letter: u8) {
    let kinds = pattern.as_bytes();
    if !kinds.contains(&letter) {
        return;
    }
    let mut i = 0;
    lines.retain(|_| {
        let keep = kinds.get(i) != Some(&letter);
        i += 1;
        keep
    });
    pattern.retain(|c| c != char::from(letter));
}

/// `compute_elided(text, lines)`: walks the original lines, skipping those that match the kept
/// lines in order, and collects the rest.
fn compute_elided<'a>(text: &[Line<'a>], lines: &[Line<'a>]) -> Vec<Line<'a>> {
    let mut elided = Vec::new();
    let (mut t, mut l) = (0, 0);
    while t < text.len() {
        while l < lines.len() && t < text.len() && text[t] == lines[l] {
            t += 1;
            l += 1;
        }
        // Ruby appends `text[t]` even when it is past the end (`nil`, which joins as "" and is
        // then stripped away), so skipping it changes nothing.
        if let Some(line) = text.get(t) {
            elided.push(*line);
        }
        t += 1;
    }
    elided
}
