//! Caps on the work one message can cause in this crate. Every pass over a message's bytes is
//! linear, and these bound what it keeps: past a cap the input is cut or counted, never processed
//! slowly, and the result says so.

/// Quick actions kept from one text by [`scan_quick_actions`](crate::quick_actions::scan_quick_actions)
/// and listed by `analyse`. A person writes a handful; the caller sees the full count in
/// `total` and decides (postern-core refuses more than its configured limit, 100 by default).
pub const MAX_QUICK_ACTIONS: usize = 100;

/// HTML converted to text from one message. The conversion builds libxml2's tree, which costs
/// up to 45 bytes per byte of tag-dense HTML (20 MB of HTML took 830 MB), so this keeps it near
/// 23 MB; an HTML reply's own text is at its top and rarely a hundred kilobytes, the quoted
/// thread below it is what trimming drops anyway. Longer HTML is cut at a tag boundary and the
/// text says so ([`html::cut_notice`](crate::html::cut_notice)).
pub const MAX_HTML_BYTES: usize = 512 * 1024;

/// Attachments listed by `analyse` (what `postern inspect` prints). The count of all of them is
/// given next to the list; refusing a message for having too many is the caller's limit
/// (postern-core's `max_attachments`).
pub const MAX_ATTACHMENTS_LISTED: usize = 1000;

/// Longest attachment name, in bytes, listed by `analyse` and stored by postern-core; longer
/// names are cut keeping their extension (`attachments::short_name`). File systems refuse names
/// over 255 bytes and nobody reads more.
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 128;

/// Deepest nesting of multiparts and forwarded messages walked; deeper parts are ignored rather
/// than recursed into, so hostile nesting cannot exhaust the stack or the time budget.
pub const MAX_NESTING: usize = 32;

/// Text given to the reply trimmer. The trimmer classifies every line with a dozen patterns and
/// keeps several copies of the text (about ten times its size in all, a quarter of a second per
/// megabyte); a person's reply is at the top and far shorter. Past this size the text is cut at
/// a line end: the rest counts as cut away, and a notice ends the reply when the trimmer found
/// nothing to cut before it.
pub const MAX_TRIM_BYTES: usize = 1024 * 1024;

/// Header block read by [`analyse`](crate::analyse) (see
/// [`cap_message`](crate::message::cap_message)). Parsed headers cost about seven
/// times their size; real header blocks, long `Received` chains and DKIM/ARC included, stay
/// under a hundred kilobytes (Postfix's own `header_size_limit` is 100 KB). Header lines past
/// this size are dropped, as Postfix drops them.
pub const MAX_HEADER_BYTES: usize = 512 * 1024;

/// Lines starting with `--` read by [`analyse`](crate::analyse) (see
/// [`cap_message`](crate::message::cap_message)): each may open a MIME part, and a parsed part
/// costs over a kilobyte (26 times its size when multiparts nest). Postern-core accepts 100
/// attachments; ten thousand such lines leave room for signatures, separators and patches
/// quoted in the body.
pub const MAX_BOUNDARY_LINES: usize = 10_000;

/// Where to cut `text` so it keeps at most `max` bytes: on a character boundary, and before the
/// last `stop` byte of that prefix when there is one past its start (a line end, a tag's `<`),
/// so nothing is cut in the middle of a line or a tag. `text.len()` when it is within the cap.
pub fn cut_point(text: &str, max: usize, stop: u8) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text.as_bytes()[..end].iter().rposition(|&b| b == stop) {
        Some(at) if at > 0 => at,
        _ => end,
    }
}
