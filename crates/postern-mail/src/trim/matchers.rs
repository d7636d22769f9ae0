//! Line classification: `EmailReplyTrimmer.identify_line_content` and the gem's matchers
//! (`lib/email_reply_trimmer/*_matcher.rb`).
//!
//! Each Ruby matcher is a list of regexes tried with `any?`. Where those regexes share their
//! shape they are joined into one alternation here (a line matches the union iff it matches one
//! of them), so that a line costs a handful of regex scans rather than sixty.

use super::on_date;
use super::ruby::{is_blank, is_word_boundary, rx, rx_ci};
use regex::Regex;
use std::sync::LazyLock;

/// `EMPTY` in the gem's pattern string.
pub(super) const EMPTY: u8 = b'e';
/// `DELIMITER`.
pub(super) const DELIMITER: u8 = b'd';
/// `SIGNATURE`.
pub(super) const SIGNATURE: u8 = b's';
/// `EMBEDDED`.
pub(super) const EMBEDDED: u8 = b'b';
/// `EMAIL_HEADER`.
pub(super) const EMAIL_HEADER: u8 = b'h';
/// `QUOTE`.
pub(super) const QUOTE: u8 = b'q';
/// `TEXT`.
pub(super) const TEXT: u8 = b't';

/// `identify_line_content(line)`: the first matcher that matches, in the gem's order.
pub(super) fn identify_line_content(line: &str) -> u8 {
    if is_empty_line(line) {
        EMPTY
    } else if is_delimiter(line) {
        DELIMITER
    } else if is_signature(line) {
        SIGNATURE
    } else if is_embedded_email(line) {
        EMBEDDED
    } else if is_email_header(line) {
        EMAIL_HEADER
    } else if is_quote(line) {
        QUOTE
    } else {
        TEXT
    }
}

/// `EmptyLineMatcher`: `/^[[:blank:]]*$/` (a line never holds a newline, so `^…$` is the whole
/// line).
pub(super) fn is_empty_line(line: &str) -> bool {
    line.chars().all(is_blank)
}

/// `DelimiterMatcher`: `/^[[:blank:]]*[-_,=+~#*ᐧ—]+[[:blank:]]*$/` — except a lone `-` or `*`
/// (GitLab's rule, `BULLET_MARKER_REGEX = /\A[[:blank:]]*[-*][[:blank:]]*\z/`): that is how a
/// plain-text bullet list item is often rendered, while real separators use at least two
/// characters (`--`, `***`, `-- `). postern also keeps a lone `#` (an empty Markdown heading,
/// or a heading marker a client wrapped onto its own line): peers report it eating the rest of
/// a person's text, and no signature or quote separator is a single `#`.
pub(super) fn is_delimiter(line: &str) -> bool {
    let core = line.trim_matches(is_blank);
    if core == "-" || core == "*" || core == "#" {
        return false;
    }
    !core.is_empty() && core.chars().all(|c| "-_,=+~#*ᐧ—".contains(c))
}

/// `QuoteMatcher`: `/^[[:blank:]]*>/`.
pub(super) fn is_quote(line: &str) -> bool {
    line.trim_start_matches(is_blank).starts_with('>')
}

/// `SignatureMatcher`'s markdown-link stripper: `/\[([^\]]+)\]\([^\)]+\)/` → `$1`.
static MARKDOWN_LINK: LazyLock<Regex> = LazyLock::new(|| rx(r"\[([^\]]+)\]\([^)]+\)"));

/// `SignatureMatcher::SIGNATURE_REGEXES` (all `/i`, all `^[[:blank:]]*…`), as one alternation.
static SIGNATURE_RE: LazyLock<Regex> = LazyLock::new(|| {
    rx_ci(concat!(
        r"(?i)^[%BLANK%]*(?:",
        // Chinese
        r"從我的 iPhone 傳送",
        // English
        r"|[%WORD%]+ from mobile",
        r"|[(<]*Sent (?:from|via|with|by) .+[)>]*",
        r"|From my .{1,20}",
        r"|Get Outlook for ",
        // French
        r"|Envoyé depuis (?:mon|Yahoo Mail)",
        // German
        r"|Von meinem .+ gesendet",
        r"|Diese Nachricht wurde von .+ gesendet",
        // Italian
        r"|Inviato da ",
        // Norwegian
        r"|Sendt fra min ",
        // Portuguese
        r"|Enviado do meu ",
        // Spanish
        r"|Enviado desde mi ",
        // Dutch
        r"|Verzonden met ",
        r"|Verstuurd vanaf mijn ",
        // Swedish
        r"|från min ",
        ")",
    ))
});

/// `SignatureMatcher.match?`: markdown links are replaced by their text first.
pub(super) fn is_signature(line: &str) -> bool {
    let stripped = MARKDOWN_LINK.replace_all(line, "${1}");
    SIGNATURE_RE.is_match(&stripped)
}

/// `EmailHeaderMatcher`: the `…_WITH_DATE_REGEXES` (case-sensitive, need a digit) and the
/// `…_WITH_TEXT_REGEXES` (`/i`, need a word character), as one alternation.
static EMAIL_HEADER_RE: LazyLock<Regex> = LazyLock::new(|| {
    let with_date = concat!(
        "(?:Sendt|Sent|Date|Date|Le|Gesendet|Enviada em|Enviado|Fecha|Data|Datum|Skickat|发送时间)",
        r"[%BLANK%*]*:.*[0-9]",
    );
    let with_text = super::ruby::fold_ligatures(concat!(
        "(?i:(?:Fra|Til|Emne",
        "|From|To|Cc|Reply-To|Subject",
        "|De|Expéditeur|À|Destinataire|Répondre à|Objet",
        "|Von|An|Betreff",
        "|De|Para|Assunto",
        "|De|Para|Asunto",
        "|Da|Risposta|A|Oggetto",
        "|Van|Beantwoorden - Aan|Aan|Onderwerp",
        "|Från|Till|Ämne",
        "|发件人|收件人|主题)",
        r"[%BLANK%*]*:.*[%WORD%])",
    ));
    rx(&format!(r"^[%BLANK%*]*(?:{with_date}|{with_text})"))
});

/// `EmailHeaderMatcher.match?`.
pub(super) fn is_email_header(line: &str) -> bool {
    EMAIL_HEADER_RE.is_match(line)
}

/// `DATE_SOMEONE_WROTE_REGEXES` (no flags): used by the classifier and by `preprocess!`.
pub(super) static DATE_SOMEONE_WROTE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        // Russian
        rx(r"[0-9]{4}.{1,80}пользователь.{0,80}\n?.{0,80}?написал:"),
        // Polish
        rx(r"[0-9]{4}.{1,80}\n?.{0,80}?napisał\(a\):"),
        // Ukrainian
        rx(r"[0-9]{4}.{1,80}\n?.{0,80}?пише:"),
    ]
});

/// `SOMEONE_WROTE_ON_DATE_REGEXES`: `/^.+\bwrote\b[[:space:]]+\bon\b.+[^:]+:/` and the German
/// `schrieb … am` one; used by the classifier and by `preprocess!`.
///
/// Ruby's `\b` is rewritten by hand (no `\b` in the `regex` crate means Ruby's word set):
/// `.+\bwrote` = `.*` + a non-word character + `wrote`; the `\b` after `wrote` and before `on`
/// always hold (a `[[:space:]]` run is between); `on\b.+` = `on` + a non-word character + `.*`.
/// Backtracking priorities are unchanged, so `find` reports the same extent Ruby does.
pub(super) static SOMEONE_WROTE_ON_DATE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        // English
        rx(r"(?m)^.*[^%BW%\n]wrote\s+on[^%BW%\n].*[^:]+:"),
        // German
        rx(r"(?m)^.*[^%BW%\n]schrieb\s+am[^%BW%\n].*[^:]+:"),
    ]
});

/// `DATE_SOMEONE_EMAIL_REGEX` without its look-ahead:
/// `/(?!.*<img\b)\d{4}.{1,80}\s?<[^@<>]+@[^@<>.]+\.[^@<>]+>:?$/i`. The look-ahead is applied by
/// [`date_someone_email_find`].
static DATE_SOMEONE_EMAIL: LazyLock<Regex> =
    LazyLock::new(|| rx_ci(r"(?im)[0-9]{4}.{1,80}[%S%]?<[^@<>]+@[^@<>.]+\.[^@<>]+>:?$"));

/// `<img` of the look-ahead `(?!.*<img\b)` (`/i`).
static IMG_TAG: LazyLock<Regex> = LazyLock::new(|| rx(r"(?i)<img"));

/// The leftmost match of `DATE_SOMEONE_EMAIL_REGEX` at or after `from`, look-ahead included.
///
/// `(?!.*<img\b)` at a start `p` fails iff an `<img` followed by a Ruby word boundary starts at
/// or after `p` on `p`'s line (`.` stops at a newline). So the starts up to the last such `<img`
/// of a line are all ruled out, and the search resumes just after it.
pub(super) fn date_someone_email_find(text: &str, from: usize) -> Option<(usize, usize)> {
    let mut pos = from;
    loop {
        let m = DATE_SOMEONE_EMAIL.find_at(text, pos)?;
        let start = m.start();
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let last_img = IMG_TAG
            .find_iter(&text[start..line_end])
            .map(|i| (start + i.start(), start + i.end()))
            .filter(|&(_, end)| is_word_boundary(text, end))
            .last();
        match last_img {
            None => return Some((start, m.end())),
            // `<` is one byte, so `img + 1` is the next character boundary.
            Some((img, _)) => pos = img + 1,
        }
    }
}

/// The rest of `EmbeddedEmailMatcher::EMBEDDED_REGEXES` — those with no look-around — as one
/// alternation. Ruby flags are kept per branch (`(?i:…)` for `/i`).
static EMBEDDED_SIMPLE: LazyLock<Regex> = LazyLock::new(|| {
    let branches: Vec<String> = vec![
        // ON_DATE_WROTE_SOMEONE_REGEXES: /^[[:blank:]>]*#{on}\s.+\s#{wrote}\s[^:]+:/ with
        // (Op, schreef), (Am, schrieb), (Den, skrev), (søn\., skrev). The last `on` is the Ruby
        // string "søn\." whose unknown escape `\.` is just ".", so its dot is a wildcard.
        r"^[%BLANK%>]*Op[%S%].+[%S%]schreef[%S%][^:]+:".into(),
        r"^[%BLANK%>]*Am[%S%].+[%S%]schrieb[%S%][^:]+:".into(),
        r"^[%BLANK%>]*Den[%S%].+[%S%]skrev[%S%][^:]+:".into(),
        r"^[%BLANK%>]*søn.[%S%].+[%S%]skrev[%S%][^:]+:".into(),
        // DATE_SOMEONE_WROTE_REGEXES
        r"[0-9]{4}.{1,80}пользователь.{0,80}\n?.{0,80}?написал:".into(),
        r"[0-9]{4}.{1,80}\n?.{0,80}?napisał\(a\):".into(),
        r"[0-9]{4}.{1,80}\n?.{0,80}?пише:".into(),
        // SOMEONE_WROTE_ON_DATE_REGEXES (see SOMEONE_WROTE_ON_DATE for the `\b` rewrite)
        r"^.*[^%BW%\n]wrote\s+on[^%BW%\n].*[^:]+:".into(),
        r"^.*[^%BW%\n]schrieb\s+am[^%BW%\n].*[^:]+:".into(),
        // ISO_DATE_SOMEONE_REGEX
        r"^[%BLANK%>]*20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9] GMT\+[0-9][0-9]:[0-9][0-9] [%W%%BLANK%]+$".into(),
        // SOMEONE_VIA_SOMETHING_WROTE_REGEXES
        r"^.+ via .+ wrote:?[%BLANK%]*$".into(),
        r"^.+ via .+ schrieb:?[%BLANK%]*$".into(),
        // SOMEONE_EMAIL_WROTE_REGEX: /^.+\b[\w.+-]+@[\w.-]+\.\w{2,}\b.+wrote:?$/ with `\b`
        // rewritten: before the local part either a non-word character then a word character,
        // or a word character then one of `.+-`; after the TLD a non-word character.
        r"^.*(?:[^%BW%\n][%W%]|[%BW%][.+-])[%W%.+-]*@[%W%.-]+\.[%W%]{2,}[^%BW%\n].*wrote:?$".into(),
        // POSTED_BY_SOMEONE_ON_DATE_REGEX
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>]*Posted by .+ on [0-9]{2}/[0-9]{2}/[0-9]{4}$)"),
        // FORWARDED_EMAIL_REGEXES
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>]*Begin forwarded message:)"),
        super::ruby::fold_ligatures(
            r"(?i:^[%BLANK%>*]*-{2,}[%BLANK%]*(?:Forwarded|Original|Reply) Message[%BLANK%]*-{2,})",
        ),
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>]*Début du message transféré :)"),
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>*]*-{2,}[%BLANK%]*Message transféré[%BLANK%]*-{2,})"),
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>*]*-{2,}[%BLANK%]*Ursprüngliche Nachricht[%BLANK%]*-{2,})"),
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>*]*-{2,}[%BLANK%]*Mensaje original[%BLANK%]*-{2,})"),
        super::ruby::fold_ligatures(r"(?i:^[%BLANK%>*]*-{2,}[%BLANK%]*原始邮件[%BLANK%]*-{2,})"),
    ];
    let joined: Vec<String> = branches.iter().map(|b| format!("(?:{b})")).collect();
    rx(&joined.join("|"))
});

/// `EmbeddedEmailMatcher.match?`.
pub(super) fn is_embedded_email(line: &str) -> bool {
    EMBEDDED_SIMPLE.is_match(line)
        || on_date::is_match(line)
        // (`DATE_SOMEONE_EMAIL_REGEX` needs an `@`; the check just skips a regex scan.)
        || (line.contains('@') && date_someone_email_find(line, 0).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statics_compile() {
        for re in [
            &*MARKDOWN_LINK,
            &*SIGNATURE_RE,
            &*EMAIL_HEADER_RE,
            &*DATE_SOMEONE_EMAIL,
            &*IMG_TAG,
            &*EMBEDDED_SIMPLE,
        ] {
            assert!(!re.as_str().is_empty());
        }
        assert_eq!(DATE_SOMEONE_WROTE.len(), 3);
        assert_eq!(SOMEONE_WROTE_ON_DATE.len(), 2);
    }

    #[test]
    fn ruby_word_boundary() {
        // Ruby's `\b` counts `²` as a word character and ZWJ as not one.
        assert!(!is_word_boundary("a\u{b2}", 1));
        assert!(is_word_boundary("a\u{200d}", 1));
        assert!(is_word_boundary("é x", 3));
        assert!(!is_word_boundary("éa", 2));
    }

    fn kind(line: &str) -> char {
        char::from(identify_line_content(line))
    }

    #[test]
    fn classifies_like_the_gem() {
        assert_eq!(kind(""), 'e');
        assert_eq!(kind(" \t\u{a0}"), 'e');
        assert_eq!(kind("--"), 'd');
        assert_eq!(kind("-- "), 'd');
        assert_eq!(kind("___"), 'd');
        assert_eq!(kind("  ---  "), 'd');
        assert_eq!(kind("—"), 'd');
        assert_eq!(kind("Sent from my iPhone"), 's');
        assert_eq!(kind("[Sent](x) from my iPhone"), 's');
        assert_eq!(kind("On Mon, Bob wrote:"), 'b');
        assert_eq!(kind("Bob <bob@example.com> wrote:"), 'b');
        assert_eq!(kind("-----Original Message-----"), 'b');
        assert_eq!(kind("2016-03-03 17:21 GMT+01:00 Some One"), 'b');
        assert_eq!(kind("From: Bob"), 'h');
        assert_eq!(kind("Sent: 12 May"), 'h');
        assert_eq!(kind("> quoted"), 'q');
        assert_eq!(kind("hello"), 't');
    }

    #[test]
    fn lone_bullet_is_not_a_delimiter() {
        for line in ["-", "*", "#", "   -", "\t*  ", "\u{a0}-", " # "] {
            assert!(!is_delimiter(line), "{line:?}");
        }
        for line in ["--", "**", "-*", "-- ", "   ---", "___", "+", "##", "="] {
            assert!(is_delimiter(line), "{line:?}");
        }
    }

    #[test]
    fn date_someone_email_lookahead() {
        assert!(is_embedded_email(
            "2015-10-18 0:17 GMT+03:00 Matt Palmer <info@discourse.org>:"
        ));
        // An <img> later on the line vetoes every start before it.
        assert!(!is_embedded_email("2015 x <img src=\"a\"> y <a@b.c>"));
        assert!(is_embedded_email(
            "<img src=x> 2015 Matt <info@discourse.org>"
        ));
        // `<imgs` is not `<img\b`.
        assert!(is_embedded_email("2015 x <imgs> y <a@b.c>"));
    }
}
