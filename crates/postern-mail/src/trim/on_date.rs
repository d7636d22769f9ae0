//! `EmbeddedEmailMatcher::ON_DATE_SOMEONE_WROTE_REGEXES`, matched by hand.
//!
//! Each of those eleven Ruby regexes has the shape (flags `/im`, so `.` also matches a newline
//! and the marker may span lines):
//!
//! ```text
//! ^[[:blank:]<>-]*START (?:(?!\b(?>FORBIDDEN…)\b).)+?(MARKER…)[[:blank:].:>-]*$
//! ```
//!
//! e.g. `On … wrote:`. The tempered dot (a negative look-ahead with an atomic group) has no
//! equivalent in the `regex` crate, so this module implements the same language directly:
//!
//! * after the prefix run and `START ` (literal space) at a line start comes a run of at least
//!   one character in which no position is *forbidden* (a forbidden position is one where one of
//!   the FORBIDDEN words starts with a Ruby `\b` on both sides; the atomic group changes nothing
//!   because no FORBIDDEN word is a prefix of another);
//! * the lazy `+?` stops at the first position `q` after that run's start where a MARKER
//!   alternative, then the trailing class run, then a line end match;
//! * so there is a match iff the first such `q` is not after the first forbidden position.
//!
//! Both kinds of position are found with forward-only cursors (`Positions`): `gsub` asks about
//! line starts in increasing order, so every part of the text is searched once per regex, and a
//! `gsub` over a 20 000-line quote chain stays linear where Ruby's backtracking may rescan (an
//! `At …` line, whose START is not FORBIDDEN, scans on to the next `wrote`).

use super::ruby::{is_blank, is_word_boundary, rx, rx_ci};
use regex::Regex;
use std::sync::LazyLock;

/// What follows a marker word before the trailing `[[:blank:].:>-]*$`.
#[derive(Clone, Copy)]
enum Tail {
    /// Nothing (`wrote`, `escreveu`, …).
    Plain,
    /// `[^:]+`, greedy, may cross lines (`schreef[^:]+`, `schrieb[^:]+`).
    NotColonRun,
    /// `(\(a\))?` (`napisał(a)`).
    OptParenA,
}

/// One of the eleven regexes.
struct Family {
    /// `\A(?i:START) ` anchored at the end of the prefix run.
    start: Regex,
    /// The FORBIDDEN words, unanchored; `\b` on both sides is checked by hand.
    forbidden: Regex,
    /// The MARKER alternatives, one capture group each, in Ruby's order.
    marker: Regex,
    /// The tail of each marker alternative (by group index − 1).
    tails: &'static [Tail],
    /// The characters START can begin with (lower case; `(?i)` folds nothing else onto them).
    first: &'static [char],
}

impl Family {
    fn new(
        first: &'static [char],
        start: &str,
        forbidden: &str,
        marker: &str,
        tails: &'static [Tail],
    ) -> Family {
        Family {
            start: rx_ci(&format!(r"\A(?i:{start}) ")),
            forbidden: rx_ci(&format!("(?i:{forbidden})")),
            marker: rx_ci(&format!("(?i:{marker})")),
            tails,
            first,
        }
    }
}

use Tail::{NotColonRun, OptParenA, Plain};

/// The eleven regexes in the gem's order (they are applied one after another by `preprocess!`).
/// Ruby `\s` is `%S%` (ASCII); `(?i)` mirrors `/i`.
static FAMILIES: LazyLock<Vec<Family>> = LazyLock::new(|| {
    vec![
        // Chinese: 在 … 写道
        Family::new(&['在'], "在", "在|写道", "(写道)", &[Plain]),
        // Dutch: Op … het volgende geschreven / schreef …
        Family::new(
            &['o'],
            "Op",
            "Op|het[%S%]volgende[%S%]geschreven|schreef",
            "(het[%S%]volgende[%S%]geschreven)|(schreef)",
            &[Plain, NotColonRun],
        ),
        // English: In message … writes
        Family::new(
            &['i'],
            "In message",
            "In message|writes",
            "(writes)",
            &[Plain],
        ),
        // English: On/At … wrote/writes/says/said
        Family::new(
            &['o', 'a'],
            "On|At",
            "On|wrote|writes|says|said",
            "(wrote)|(writes)|(says)|(said)",
            &[Plain, Plain, Plain, Plain],
        ),
        // French: Le … nous a dit / a écrit
        Family::new(
            &['l'],
            "Le",
            "Le|nous[%S%]a[%S%]dit|a[%S%]+écrit",
            "(nous[%S%]a[%S%]dit)|(a[%S%]+écrit)",
            &[Plain, Plain],
        ),
        // German: Am … schrieben Sie
        Family::new(
            &['a'],
            "Am",
            "Am|schrieben[%S%]Sie",
            "(schrieben[%S%]Sie)",
            &[Plain],
        ),
        // German: Am … geschrieben / schrieb …
        Family::new(
            &['a'],
            "Am",
            "Am|geschrieben",
            "(geschrieben)|(schrieb)",
            &[Plain, NotColonRun],
        ),
        // Italian: Il … ha scritto
        Family::new(
            &['i'],
            "Il",
            "Il|ha[%S%]scritto",
            "(ha[%S%]scritto)",
            &[Plain],
        ),
        // Polish: Dnia/Dňa … napisał(a)
        Family::new(
            &['d'],
            "Dnia|Dňa",
            "Dnia|Dňa|napisał",
            "(napisał)",
            &[OptParenA],
        ),
        // Portuguese: Em … escreveu
        Family::new(&['e'], "Em", "Em|escreveu", "(escreveu)", &[Plain]),
        // Spanish: El … escribió
        Family::new(&['e'], "El", "El|escribió", "(escribió)", &[Plain]),
    ]
});

/// `(\(a\))?` under `/i`.
static PAREN_A: LazyLock<Regex> = LazyLock::new(|| rx(r"\A(?i:\(a\))"));

/// `[[:blank:]<>-]`, the class before START.
fn is_prefix_char(c: char) -> bool {
    is_blank(c) || matches!(c, '<' | '>' | '-')
}

/// `[[:blank:].:>-]`, the class after MARKER.
fn is_trailing_char(c: char) -> bool {
    is_blank(c) || matches!(c, '.' | ':' | '>' | '-')
}

/// From `at`, skips a run of trailing-class characters; `Some(end)` if the run ends at a line
/// end (`$`: before `\n` or at the end of the text).
fn trailing_to_eol(text: &str, at: usize) -> Option<usize> {
    let rest = &text[at..];
    let run = rest
        .char_indices()
        .find(|&(_, c)| !is_trailing_char(c))
        .map_or(rest.len(), |(i, _)| i);
    let end = at + run;
    (end == text.len() || text.as_bytes()[end] == b'\n').then_some(end)
}

/// The forbidden and marker positions of one family over one text, found lazily.
///
/// `gsub` asks about line starts in increasing order, so each kind of position is kept as a
/// cursor: the next hit at or after the last query, and where to search on from. Every part of
/// the text is searched at most once per family, however many starts there are.
struct Positions<'f, 't> {
    family: &'f Family,
    text: &'t str,
    /// Next forbidden start found, and the offset to search on from (`usize::MAX`: no more).
    forbidden: Option<usize>,
    forbidden_from: usize,
    /// Next `(q, end)` found (a marker at `q` completing the match at `end`), and where to
    /// search on from.
    marker: Option<(usize, usize)>,
    marker_from: usize,
    /// For `[^:]+`: the last colon looked up, `(r, colon)`, and the run end found for it.
    colon: Option<(usize, usize)>,
    colon_run: Option<(usize, ColonRun)>,
}

impl<'f, 't> Positions<'f, 't> {
    fn new(family: &'f Family, text: &'t str) -> Self {
        Positions {
            family,
            text,
            forbidden: None,
            forbidden_from: 0,
            marker: None,
            marker_from: 0,
            colon: None,
            colon_run: None,
        }
    }

    /// The first forbidden position at or after `s` (`usize::MAX` if none).
    fn first_forbidden(&mut self, s: usize) -> usize {
        if let Some(f) = self.forbidden
            && f >= s
        {
            return f;
        }
        let text = self.text;
        let mut pos = self.forbidden_from.max(s);
        while pos <= text.len() {
            let Some(m) = self.family.forbidden.find_at(text, pos) else {
                break;
            };
            pos = m.start() + char_len_at(text, m.start());
            // Every FORBIDDEN word begins and ends with a word character, so `\b` on both
            // sides is exactly Ruby's `\b(?>…)\b`.
            if is_word_boundary(text, m.start()) && is_word_boundary(text, m.end()) {
                self.forbidden = Some(m.start());
                self.forbidden_from = pos;
                return m.start();
            }
        }
        self.forbidden = None;
        self.forbidden_from = usize::MAX;
        usize::MAX
    }

    /// The first marker position at or after `from` whose match completes, with its end.
    fn first_marker(&mut self, from: usize) -> Option<(usize, usize)> {
        if let Some((q, end)) = self.marker
            && q >= from
        {
            return Some((q, end));
        }
        let text = self.text;
        let mut pos = self.marker_from.max(from);
        while pos <= text.len() {
            // Every start is visited (`find_at` reports the leftmost one), overlapping ones too:
            // `schrieb` inside `geschrieben` matters when `geschrieben` itself fails.
            let Some(caps) = self.family.marker.captures_at(text, pos) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            pos = whole.start() + char_len_at(text, whole.start());
            let alt = (1..caps.len()).find(|&g| caps.get(g).is_some());
            let tail = alt
                .and_then(|g| self.family.tails.get(g - 1))
                .copied()
                .unwrap_or(Plain);
            let r = whole.end();
            let end = match tail {
                Plain => trailing_to_eol(text, r),
                OptParenA => match PAREN_A.find(&text[r..]) {
                    // Greedy `?`: with "(a)" first, then without.
                    Some(p) => {
                        trailing_to_eol(text, r + p.end()).or_else(|| trailing_to_eol(text, r))
                    }
                    None => trailing_to_eol(text, r),
                },
                NotColonRun => self.not_colon_run(r),
            };
            if let Some(end) = end {
                self.marker = Some((whole.start(), end));
                self.marker_from = pos;
                return self.marker;
            }
        }
        self.marker = None;
        self.marker_from = usize::MAX;
        None
    }

    /// `[^:]+[[:blank:].:>-]*$` from `r` with Ruby's backtracking: the greedy run goes up to
    /// the first `:` (or the end); the longest prefix `e` of it from which the trailing class
    /// reaches a line end wins. Only two `e` can: the colon itself (or the end of the text), or
    /// the last newline before it (any other `e` on the colon's line would have to run through
    /// the colon and then fail the same way). Lookups are cached: `r` only grows.
    fn not_colon_run(&mut self, r: usize) -> Option<usize> {
        let text = self.text;
        let colon = match self.colon {
            Some((_, c)) if c >= r => c,
            _ => {
                let c = text[r..].find(':').map_or(text.len(), |i| r + i);
                self.colon = Some((r, c));
                c
            }
        };
        if colon == r {
            return None; // `[^:]+` needs one character
        }
        let run = match self.colon_run {
            Some((c, run)) if c == colon => run,
            _ => {
                let run = match trailing_to_eol(text, colon) {
                    Some(end) => ColonRun::Eol(end),
                    // Only newlines after `r` can end a non-empty run; `r` grows and a new
                    // colon is only looked up past the previous one, so these searches do
                    // not overlap.
                    None => match text[r..colon].rfind('\n') {
                        Some(i) => ColonRun::Newline(r + i),
                        None => ColonRun::Fails,
                    },
                };
                self.colon_run = Some((colon, run));
                run
            }
        };
        match run {
            ColonRun::Eol(end) => Some(end),
            // The run is `text[r..newline]`, which must not be empty.
            ColonRun::Newline(nl) => (nl > r).then_some(nl),
            ColonRun::Fails => None,
        }
    }
}

/// Where `[^:]+[[:blank:].:>-]*$` can end for a given first colon (see `not_colon_run`).
#[derive(Clone, Copy)]
enum ColonRun {
    /// The trailing class runs from the colon (or the end of the text) to a line end.
    Eol(usize),
    /// It does not; the last newline before the colon is the best end.
    Newline(usize),
    /// Neither.
    Fails,
}

/// Length of the character at byte offset `at` (1 at the end of the text).
fn char_len_at(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(1, char::len_utf8)
}

/// A line start that could begin a match: where its `[[:blank:]<>-]*` prefix ends, and the
/// (ASCII-lower-cased) character there.
#[derive(Clone, Copy)]
struct Head {
    line_start: usize,
    at: usize,
    first: char,
}

/// The [`Head`] of the line starting at `line_start`, unless the line is only prefix.
fn head(text: &str, line_start: usize) -> Option<Head> {
    let rest = &text[line_start..];
    // ASCII fast path (long `> > > …` prefixes are the common case), then the general one.
    let ascii_prefix = rest
        .bytes()
        .position(|b| !matches!(b, b' ' | b'\t' | b'<' | b'>' | b'-'))
        .unwrap_or(rest.len());
    rest[ascii_prefix..]
        .char_indices()
        .find(|&(_, c)| !is_prefix_char(c))
        .filter(|&(_, c)| c != '\n')
        .map(|(i, c)| Head {
            line_start,
            at: line_start + ascii_prefix + i,
            first: c.to_ascii_lowercase(),
        })
}

/// After the prefix, `START ` of `family`: the offset just after it, if it is there.
fn after_start(family: &Family, text: &str, head: Head) -> Option<usize> {
    family
        .start
        .find(&text[head.at..])
        .map(|m| head.at + m.end())
}

/// Can START of `family` begin with `first`? Lets almost every line skip the regex.
fn could_start(family: &Family, first: char) -> bool {
    family.first.contains(&first)
}

/// The [`Head`]s of every line of `text`.
fn line_heads(text: &str) -> Vec<Head> {
    let mut heads = Vec::new();
    let mut line_start = 0;
    loop {
        heads.extend(head(text, line_start));
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return heads,
        }
    }
}

/// All matches of one family in `text`, non-overlapping, left to right (as `gsub` finds them).
/// `heads` is [`line_heads`] of `text`.
fn family_matches(family: &Family, text: &str, heads: &[Head]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut positions: Option<Positions<'_, '_>> = None;
    // `gsub` resumes at a match's end; no line start before it can match again.
    let mut resume = 0;
    for &head in heads {
        if head.line_start < resume || !could_start(family, head.first) {
            continue;
        }
        let Some(s) = after_start(family, text, head) else {
            continue;
        };
        if s >= text.len() {
            continue; // the lazy run needs one character
        }
        let pos = positions.get_or_insert_with(|| Positions::new(family, text));
        let first_forbidden = pos.first_forbidden(s);
        let earliest = s + char_len_at(text, s);
        if let Some((q, end)) = pos.first_marker(earliest)
            && q <= first_forbidden
        {
            found.push((head.line_start, end));
            resume = end;
        }
    }
    found
}

/// Does any of the eleven regexes match the single line `line`?
pub(super) fn is_match(line: &str) -> bool {
    let Some(head) = head(line, 0) else {
        return false;
    };
    FAMILIES
        .iter()
        .any(|f| could_start(f, head.first) && !family_matches(f, line, &[head]).is_empty())
}

/// `text.gsub!(r) { … }` for each of the eleven regexes in turn, `replace` giving the
/// replacement of one match.
pub(super) fn gsub_all(mut text: String, replace: impl Fn(&str) -> String) -> String {
    let mut heads = line_heads(&text);
    for family in FAMILIES.iter() {
        if !heads.iter().any(|h| could_start(family, h.first)) {
            continue;
        }
        let matches = family_matches(family, &text, &heads);
        if matches.is_empty() {
            continue;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (s, e) in matches {
            out.push_str(&text[last..s]);
            out.push_str(&replace(&text[s..e]));
            last = e;
        }
        out.push_str(&text[last..]);
        text = out;
        heads = line_heads(&text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statics_compile() {
        assert_eq!(FAMILIES.len(), 11);
        assert!(PAREN_A.is_match("(A)"));
    }

    fn m(line: &str) -> bool {
        is_match(line)
    }

    #[test]
    fn english_markers() {
        assert!(m("On Wed, Sep 25, 2013, at 03:57 PM, jorge_castro wrote:"));
        assert!(m("> On 10/12/15 12:30, Jeff Atwood wrote:"));
        assert!(m(
            "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam Saffron&lt;info@discourse.org&gt; wrote ----"
        ));
        assert!(m("At 6/16/2016 08:32 PM, you wrote:"));
        assert!(m("on monday bob WROTE:"));
        // A second "On" word in between forbids the match.
        assert!(!m("On Monday on the beach Bob wrote:"));
        // Text after the marker.
        assert!(!m("On Monday Bob wrote: hello"));
        // The run needs at least one character.
        assert!(!m("On wrote:"));
        // "wrote" glued to a word is not forbidden, and still a marker.
        assert!(m("On Monday Bobwrote:"));
    }

    #[test]
    fn other_languages() {
        assert!(m(
            "Le 4 janv. 2016 19:03, \"Neil Lalonde\" <info@discourse.org> a écrit :"
        ));
        assert!(m(
            "Dnia 14 lip 2015 o godz. 00:25 Michael Downey <info@discourse.org> napisał(a):"
        ));
        assert!(m(
            "Em seg, 27 de jul de 2015 17:13, Neil Lalonde <info@discourse.org> escreveu:"
        ));
        assert!(m(
            "El jueves, 21 de noviembre de 2013, codinghorror escribió:"
        ));
        assert!(m(
            "Op 24 aug. 2013 om 16:48 heeft ven88 via Discourse Meta <info@discourse.org> het volgende geschreven:"
        ));
        assert!(m(
            "Am 03.02.2016 3:35 nachm. schrieb Max Mustermann <mail@example.com>:"
        ));
    }

    #[test]
    fn multi_line_gsub() {
        let text = "Hi\n\nOn Mon, Bob\n> wrote:\n> quoted";
        let out = gsub_all(text.to_owned(), |m| m.replace('\n', " "));
        assert_eq!(out, "Hi\n\nOn Mon, Bob > wrote:\n> quoted");
    }
}
