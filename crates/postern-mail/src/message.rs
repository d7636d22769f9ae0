//! Reading one raw message: the header and part views GitLab's receiver relies on.
//!
//! GitLab reads mail with Ruby's `mail` gem. Several of its routing rules depend on how that gem
//! presents a header: `To`, `Cc` and `From` come back as lists of bare addresses (display names
//! dropped), `References` as a list of message ids, and every other header as its raw value.
//! [`Email`] gives exactly those views over a [`mail_parser::Message`], so the key scan and the
//! handlers never touch MIME details.
//!
//! Parsing never fails: anything that is not a message at all is read as a message with no headers
//! whose body is the input, and every text is valid UTF-8 (undecodable bytes are replaced).

use std::borrow::Cow;

use crate::limits::{MAX_BOUNDARY_LINES, MAX_HEADER_BYTES};
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType,
};

/// One message, parsed once, with the accessors the rest of the crate needs.
///
/// Borrows from the raw bytes: parsing copies only what decoding changes.
pub struct Email<'raw> {
    message: Message<'raw>,
}

/// Leading white space is not a header block, as in Ruby's `mail` gem (`raw_source.lstrip`):
/// a message that starts with a blank line still has its headers read.
fn lstrip(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(raw.len());
    &raw[start..]
}

/// The Message-ID of `raw` (without angle brackets), as the sender wrote it: the one reader of
/// it. It reads the header block only, cut where [`cap_message`] cuts it, so it gives the same
/// value as [`Email::parse`]`(&cap_message(raw)).message_id()` without decoding a large
/// message's parts, and a header block of any size costs at most [`MAX_HEADER_BYTES`] of
/// parsing. Intake needs it for the content identity while it holds the store's write lock.
///
/// The value is the sender's text, of any length; store it through the store's identifier
/// functions, log it as [`message_id_for_log`], write it into a header only through
/// [`header_message_id`].
pub fn message_id_of(raw: &[u8]) -> Option<String> {
    let raw = lstrip(raw);
    let head = match header_end(raw) {
        end if end <= MAX_HEADER_BYTES => raw,
        _ => &raw[..line_start_within_cap(raw)],
    };
    MessageParser::default()
        .parse_headers(head)
        .and_then(|message| message.message_id().map(str::to_owned))
}

/// The Message-ID of `raw` as log lines show it: [`message_id_of`], bounded and without control
/// characters ([`postern_vocab::identifier::bounded`]), the same text the store keeps in
/// `inbound_messages.message_id`.
pub fn message_id_for_log(raw: &[u8]) -> Option<String> {
    message_id_of(raw).map(|id| postern_vocab::identifier::bounded(&id))
}

/// Where the header block of `raw` (already left-stripped) ends: after the line break that
/// precedes the first empty line, or the end of `raw`.
fn header_end(raw: &[u8]) -> usize {
    raw.windows(2)
        .position(|pair| pair == b"\n\n" || pair == b"\n\r")
        .map_or(raw.len(), |at| at + 1)
}

/// The start of the last line that begins within [`MAX_HEADER_BYTES`]: a header block over the
/// cap keeps the lines before it, and a line longer than the cap is dropped whole.
fn line_start_within_cap(raw: &[u8]) -> usize {
    raw[..raw.len().min(MAX_HEADER_BYTES)]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1)
}

/// `raw` cut to what parsing it may cost, for [`Email::parse`]:
/// - the header block to [`MAX_HEADER_BYTES`]: the header lines past that size are dropped (the
///   cut is at the start of the first line that does not fit), the blank line and body are kept;
/// - the message to [`MAX_BOUNDARY_LINES`] lines starting with `--`: every MIME part starts after
///   such a line, and a parsed part (nested multiparts above all) costs over a kilobyte, so the
///   message ends before the first line past the cap.
///
/// Borrowed, without a copy, when neither cap is reached.
pub fn cap_message(raw: &[u8]) -> Cow<'_, [u8]> {
    let raw = lstrip(raw);
    let header_end = header_end(raw);
    let mut boundary_lines = 0usize;
    let message_end = raw
        .windows(3)
        .position(|window| {
            if window[0] == b'\n' && window[1] == b'-' && window[2] == b'-' {
                boundary_lines += 1;
            }
            boundary_lines > MAX_BOUNDARY_LINES
        })
        .map_or(raw.len(), |newline| newline + 1);
    if header_end <= MAX_HEADER_BYTES {
        return match message_end < raw.len() {
            true => Cow::Owned(raw[..message_end].to_vec()),
            false => Cow::Borrowed(raw),
        };
    }
    let cut = line_start_within_cap(raw);
    let rest = &raw[header_end.min(message_end)..message_end];
    let mut capped = Vec::with_capacity(cut + rest.len());
    capped.extend_from_slice(&raw[..cut]);
    capped.extend_from_slice(rest);
    Cow::Owned(capped)
}

impl<'raw> Email<'raw> {
    /// Reads `raw` as an RFC 5322 message. Never fails and never panics.
    pub fn parse(raw: &'raw [u8]) -> Email<'raw> {
        let raw = lstrip(raw);
        let message = MessageParser::default().parse(raw).unwrap_or_else(|| {
            // mail-parser gives up only on input without any header-like line. Keep the bytes as a
            // header-less text part so the body still reaches the reply parser and the store.
            Message {
                parts: vec![mail_parser::MessagePart {
                    headers: Vec::new(),
                    is_encoding_problem: true,
                    body: PartType::Text(String::from_utf8_lossy(raw)),
                    encoding: mail_parser::Encoding::None,
                    offset_header: 0,
                    offset_body: 0,
                    offset_end: u32::try_from(raw.len()).unwrap_or(u32::MAX),
                }],
                raw_message: raw.into(),
                ..Default::default()
            }
        });
        let mut message = message;
        repair_undecoded_parts(&mut message);
        Email { message }
    }

    /// The underlying parsed message, for the MIME walks of other modules.
    pub(crate) fn inner(&self) -> &Message<'raw> {
        &self.message
    }

    /// The raw bytes this message was read from.
    pub fn raw(&self) -> &[u8] {
        self.message.raw_message()
    }

    /// Raw values of every top-level header called `name` (case-insensitive), in message order,
    /// unfolded and trimmed, as the `mail` gem's unstructured fields give them.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.raw_header_values(name)
            .map(|bytes| unfold(&String::from_utf8_lossy(bytes)))
            .collect()
    }

    /// The raw bytes of each top-level header called `name`, lazily: a caller that wants the
    /// first value does not copy a flood of them.
    fn raw_header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        let raw = self.message.raw_message();
        self.message
            .root_part()
            .headers
            .iter()
            .filter(move |header| header.name.as_str().eq_ignore_ascii_case(name))
            .map(move |header| {
                let start = header.offset_start as usize;
                let end = (header.offset_end as usize).min(raw.len());
                raw.get(start..end).unwrap_or_default()
            })
    }

    /// The first raw value of header `name`, if present.
    pub fn header_value(&self, name: &str) -> Option<String> {
        self.raw_header_values(name)
            .next()
            .map(|bytes| unfold(&String::from_utf8_lossy(bytes)))
    }

    /// Whether any top-level header called `name` exists.
    pub fn has_header(&self, name: &str) -> bool {
        self.message
            .root_part()
            .headers
            .iter()
            .any(|header| header.name.as_str().eq_ignore_ascii_case(name))
    }

    /// Decoded `Subject` (RFC 2047 words decoded), or `None` when absent.
    pub fn subject(&self) -> Option<&str> {
        self.message.subject()
    }

    /// `Message-ID` without angle brackets.
    pub fn message_id(&self) -> Option<&str> {
        self.message.message_id()
    }

    /// The first `In-Reply-To` message id, without angle brackets.
    pub fn in_reply_to(&self) -> Option<String> {
        self.header_value("In-Reply-To")
            .and_then(|value| parse_message_ids(&value).and_then(|ids| ids.into_iter().next()))
    }

    /// Bare addresses of every `To` header, in order.
    pub fn to(&self) -> Vec<String> {
        self.addresses(HeaderName::To)
    }

    /// Bare addresses of every `Cc` header, in order.
    pub fn cc(&self) -> Vec<String> {
        self.addresses(HeaderName::Cc)
    }

    /// Bare addresses of `From`.
    pub fn from(&self) -> Vec<String> {
        self.addresses(HeaderName::From)
    }

    /// Bare addresses of `Reply-To`.
    pub fn reply_to(&self) -> Vec<String> {
        self.addresses(HeaderName::ReplyTo)
    }

    /// Bare addresses of `Sender`.
    pub fn sender(&self) -> Vec<String> {
        self.addresses(HeaderName::Sender)
    }

    /// GitLab's `from_address`: the first `Reply-To` address, else the first `From`, else `Sender`.
    pub fn from_address(&self) -> Option<String> {
        self.reply_to()
            .into_iter()
            .next()
            .or_else(|| self.from().into_iter().next())
            .or_else(|| self.sender().into_iter().next())
    }

    /// The message ids of `References`, as GitLab's receiver reads them.
    ///
    /// A header that parses as a list of `<id>` gives that list. Anything else (Exchange and iOS
    /// write `"<a@x>,<b@y>"` with quotes and commas) is scanned with GitLab's fallback: every run of
    /// characters other than `<` and `>` that is directly followed by `>`.
    pub fn references(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for value in self.header_values("References") {
            match parse_message_ids(&value) {
                Some(parsed) => ids.extend(parsed),
                None => ids.extend(scan_fallback_references(&value)),
            }
        }
        ids
    }

    /// Content type of the top-level part, lowercased `type/subtype`, if declared.
    pub fn content_type(&self) -> Option<String> {
        content_type_of(self.message.root_part())
    }

    fn addresses(&self, name: HeaderName<'static>) -> Vec<String> {
        let mut found = Vec::new();
        for header in &self.message.root_part().headers {
            if header.name != name {
                continue;
            }
            if let HeaderValue::Address(address) = &header.value {
                collect_addresses(address, &mut found);
            }
        }
        found
    }
}

/// Decodes parts that mail-parser left as raw text.
///
/// mail-parser gives up on a part's transfer encoding when the part's closing MIME boundary is
/// missing (common in hand-made or truncated mail, e.g. GitLab's fixture
/// `merge_request_with_patch_and_target_branch.eml`) and keeps the undecoded bytes, so a
/// quoted-printable patch would start with `=46rom`. Ruby's `mail` gem decodes such parts, and
/// GitLab's behaviour depends on it, so they are decoded here from the raw bytes.
fn repair_undecoded_parts(message: &mut Message<'_>) {
    use mail_parser::decoders::base64::base64_decode;
    use mail_parser::decoders::charsets::map::charset_decoder;
    use mail_parser::decoders::quoted_printable::quoted_printable_decode;

    let raw = message.raw_message.clone();
    for part in message.parts.iter_mut() {
        if !part.is_encoding_problem {
            continue;
        }
        let encoding = part
            .content_transfer_encoding()
            .map(|value| value.trim().to_ascii_lowercase());
        let start = (part.offset_body as usize).min(raw.len());
        let end = (part.offset_end as usize).clamp(start, raw.len());
        let bytes = &raw[start..end];
        let decoded = match encoding.as_deref() {
            Some("quoted-printable") => quoted_printable_decode(bytes),
            Some("base64") => base64_decode(bytes),
            _ => None,
        };
        let Some(decoded) = decoded else {
            continue;
        };
        let content_type = content_type_of(part).unwrap_or_default();
        part.body = if content_type.starts_with("text/") && part.attachment_name().is_none() {
            let charset = part
                .content_type()
                .and_then(|ct| ct.attribute("charset"))
                .and_then(|name| charset_decoder(name.as_bytes()));
            let text = match charset {
                Some(decode) => decode(&decoded),
                None => String::from_utf8_lossy(&decoded).into_owned(),
            };
            if content_type == "text/html" {
                PartType::Html(text.into())
            } else {
                PartType::Text(text.into())
            }
        } else {
            PartType::Binary(decoded.into())
        };
    }
}

/// Lowercased `type/subtype` of a part, if it declares a content type.
pub(crate) fn content_type_of(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    part.content_type().map(|ct| match ct.subtype() {
        Some(subtype) => format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    })
}

fn collect_addresses(address: &Address<'_>, into: &mut Vec<String>) {
    match address {
        Address::List(list) => into.extend(
            list.iter()
                .filter_map(|addr| addr.address.as_deref())
                .map(str::to_owned),
        ),
        Address::Group(groups) => into.extend(
            groups
                .iter()
                .flat_map(|group| group.addresses.iter())
                .filter_map(|addr| addr.address.as_deref())
                .map(str::to_owned),
        ),
    }
}

/// Removes header folding (CRLF or LF followed by white space) and trims the value.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {}
            other => out.push(other),
        }
    }
    out.trim().to_owned()
}

/// Parses `<id> <id> …` (white space and comments between) into ids without brackets.
/// Returns `None` when the value is anything else, so the caller can fall back.
pub(crate) fn parse_message_ids(value: &str) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('(') {
            // A comment: skip to its end (comments in References are rare; no nesting needed).
            let end = after.find(')')?;
            rest = after[end + 1..].trim_start();
            continue;
        }
        let inner = rest.strip_prefix('<')?;
        let end = inner.find('>')?;
        let id = inner[..end].trim();
        if id.is_empty() || id.contains('<') || id.contains(char::is_whitespace) {
            return None;
        }
        ids.push(id.to_owned());
        rest = inner[end + 1..].trim_start();
    }
    if ids.is_empty() { None } else { Some(ids) }
}

/// GitLab's `scan_fallback_references`: the regex `(?!<)[^<>]+(?=>)`, written by hand because the
/// `regex` crate has no look-around. Every maximal run of characters other than `<`/`>` that ends
/// right before a `>` is an id.
pub fn scan_fallback_references(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut run_start: Option<usize> = None;
    for (index, c) in value.char_indices() {
        match c {
            '<' => run_start = None,
            '>' => {
                if let Some(start) = run_start.take() {
                    ids.push(value[start..index].to_owned());
                }
            }
            _ => {
                if run_start.is_none() {
                    run_start = Some(index);
                }
            }
        }
    }
    ids
}

/// Longest Message-ID postern writes into a header it composes (`In-Reply-To`, `References`):
/// far above real ones (under 100 bytes), far below the 998-byte line limit.
pub const MAX_HEADER_MESSAGE_ID_BYTES: usize = 255;

/// `id` if it can be written back into a header as a msg-id: printable ASCII without white
/// space or angle brackets, and at most [`MAX_HEADER_MESSAGE_ID_BYTES`]. An inbound Message-ID
/// is the sender's text; copied byte for byte it could fold, inject a header (CR, LF) or make
/// the line too long, so a composed mail names only an identifier that passes this check.
pub fn header_message_id(id: &str) -> Option<&str> {
    let fits = !id.is_empty()
        && id.len() <= MAX_HEADER_MESSAGE_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fits.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_references_split_comma_joined_ids() {
        let ids = scan_fallback_references(
            "<issue_1@localhost> <reply-59d8@localhost>,<exchange@microsoft.com>",
        );
        assert_eq!(
            ids,
            [
                "issue_1@localhost",
                "reply-59d8@localhost",
                "exchange@microsoft.com"
            ]
        );
    }

    #[test]
    fn the_message_id_reader_cuts_the_header_block_where_parsing_does() {
        let filler = "X-Filler: ".to_owned() + &"f".repeat(70) + "\r\n";
        let many = filler.repeat(MAX_HEADER_BYTES / filler.len() + 10);
        let before = format!("Message-ID: <first@x>\r\n{many}\r\nbody\r\n");
        let after = format!("{many}Message-ID: <late@x>\r\n\r\nbody\r\n");
        for raw in [before.as_bytes(), after.as_bytes()] {
            let parsed = Email::parse(&cap_message(raw))
                .message_id()
                .map(str::to_owned);
            assert_eq!(message_id_of(raw), parsed);
        }
        assert_eq!(message_id_of(before.as_bytes()).as_deref(), Some("first@x"));
        assert_eq!(message_id_of(after.as_bytes()), None, "past the cap");
        assert_eq!(
            message_id_of(b"\r\nSubject: s\r\nMessage-ID: <lead@x>\r\n\r\nb").as_deref(),
            Some("lead@x")
        );
    }

    #[test]
    fn the_logged_message_id_is_bounded_and_printable() {
        assert_eq!(
            message_id_for_log(b"From: a@x\r\nMessage-ID: <m-1@x>\r\n\r\nBody").as_deref(),
            Some("m-1@x")
        );
        assert_eq!(
            message_id_for_log(b"From: a@x\r\n\r\nMessage-ID: <b@x>\r\n"),
            None
        );
        let raw = format!("Message-ID: <{}\u{1b}[31m@x>\r\n\r\n", "a".repeat(5000));
        let id = message_id_for_log(raw.as_bytes()).expect("an id");
        assert!(id.len() <= 255 && !id.contains('\u{1b}'), "{id}");
    }

    #[test]
    fn message_ids_parse_strictly() {
        assert_eq!(
            parse_message_ids("<a@x> (c) <b@y>"),
            Some(vec!["a@x".to_owned(), "b@y".to_owned()])
        );
        assert_eq!(parse_message_ids("\"<a@x>,<b@y>\""), None);
        assert_eq!(parse_message_ids(""), None);
    }

    #[test]
    fn encoded_words_in_legacy_charsets_are_decoded() {
        let raw = b"Subject: =?iso-8859-2?Q?=A9koda?= =?Shift_JIS?B?g2WDWINn?=\r\n\
                    From: =?ISO-8859-2?Q?Pavel_=A9imek?= <pavel@example.cz>\r\n\r\nbody";
        let email = Email::parse(raw);
        assert_eq!(email.subject(), Some("\u{160}kodaテスト"));
        assert_eq!(email.from(), ["pavel@example.cz"]);
    }

    #[test]
    fn leading_blank_lines_do_not_hide_the_headers() {
        let email = Email::parse(b"\r\n\nSubject: hi\r\n\r\nbody");
        assert_eq!(email.subject(), Some("hi"));
    }

    #[test]
    fn undecoded_last_part_is_decoded_from_its_transfer_encoding() {
        // No closing boundary: mail-parser keeps the quoted-printable bytes as they are.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                    Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
                    Content-Type: text/x-patch; name=a.patch\r\n\
                    Content-Disposition: attachment; filename=a.patch\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                    =46rom 1234 Mon Sep 17 00:00:00 2001\r\n";
        let email = Email::parse(raw);
        let attachments = crate::attachments(&email);
        assert_eq!(attachments.len(), 1);
        assert!(
            attachments[0].content.starts_with(b"From 1234"),
            "{:?}",
            String::from_utf8_lossy(attachments[0].content)
        );
    }

    #[test]
    fn header_blocks_past_the_cap_lose_their_last_lines_not_the_body() {
        let mut raw = b"From: a@b.c\r\nSubject: s\r\n".to_vec();
        while raw.len() < crate::limits::MAX_HEADER_BYTES + 1000 {
            raw.extend_from_slice(b"Received: from x by y\r\n");
        }
        raw.extend_from_slice(b"X-Late: dropped\r\n\r\nthe body\r\n");
        let capped = cap_message(&raw);
        assert!(capped.len() < crate::limits::MAX_HEADER_BYTES + 20);
        let email = Email::parse(&capped);
        assert_eq!(email.subject(), Some("s"));
        assert!(!email.has_header("X-Late"));
        assert!(email.raw().ends_with(b"\r\n\r\nthe body\r\n"));
        // A flood of MIME parts ends at the cap.
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..crate::limits::MAX_BOUNDARY_LINES + 10 {
            raw.extend_from_slice(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        let capped = cap_message(&raw);
        let parts = capped.windows(3).filter(|w| w == b"\n--").count();
        assert_eq!(parts, crate::limits::MAX_BOUNDARY_LINES);
        assert!(capped.ends_with(b"x\r\n"));
        // Within the caps nothing is copied.
        assert!(matches!(cap_message(b"A: b\r\n\r\nbody"), Cow::Borrowed(_)));
    }

    #[test]
    fn garbage_is_still_a_message() {
        let email = Email::parse(b"\x00\x01 not a mail");
        assert!(email.to().is_empty());
        let empty = Email::parse(b"");
        assert!(empty.subject().is_none());
    }
}
