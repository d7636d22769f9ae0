//! [`check_patches`]: what a mail's patches declare, read in one linear pass before git sees
//! them, against the [`PatchLimits`].
//!
//! git trusts the sizes a patch declares: it allocates what a binary hunk's `literal N` or
//! `delta N` says before it inflates the hunk, and what a delta's header says before it applies
//! it. So these are read here, exactly where and as git reads them, and refused above the caps.

use crate::limits::{PatchLimit, PatchLimits};
use crate::{Patch, PatchError};

/// Checks what the patches declare against `limits`, in one pass over their bytes (linear,
/// whatever the input; [`crate::Repository::prepare_patches`] calls it before git sees them; public
/// for fuzzing): every binary hunk's declared size (`literal N` / `delta N`, which git allocates
/// before inflating the hunk), the result size a `delta` hunk's data starts with (which git
/// allocates before applying it; read by inflating only the first bytes), the sum of all
/// these, the number of lines, and the number of files (`diff --git` headers). The encoded
/// size ([`PatchLimits::max_encoded_bytes`]) is checked by the caller, first.
///
/// Binary hunk headers are recognised where `git apply` looks for them: on the line after
/// `GIT binary patch`, and on the line after the empty line that ends the forward hunk's data
/// (the reverse hunk). Their number is read as `strtoul` does, as git does, so that no
/// spelling git accepts (leading blanks, a sign, trailing garbage) escapes the check. Carriage
/// returns before line ends are ignored, as `git mailsplit` strips them.
pub fn check_patches(patches: &[Patch], limits: &PatchLimits) -> Result<(), PatchError> {
    let over = |limit: PatchLimit| PatchError::LimitExceeded {
        limit,
        max: limit.value(limits),
    };
    let mut lines = 0usize;
    let mut files = 0usize;
    let mut binary_total = 0u64;
    let mut binary_hunks = 0usize;
    let add_binary = |size: u64, total: &mut u64| {
        if size > limits.max_binary_bytes {
            return Err(over(PatchLimit::BinaryHunk));
        }
        *total = total.saturating_add(size);
        if *total > limits.max_total_binary_bytes {
            return Err(over(PatchLimit::BinaryTotal));
        }
        Ok(())
    };
    for patch in patches {
        // Each patch is its own message for `git am`: a binary section never spans two.
        let mut state = BinaryState::Outside;
        let content = patch.content.strip_suffix(b"\n").unwrap_or(&patch.content);
        for line in content.split(|&byte| byte == b'\n') {
            lines += 1;
            if lines > limits.max_lines {
                return Err(over(PatchLimit::Lines));
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            state = match state {
                BinaryState::HunkHeader => match hunk_header(line) {
                    Some((kind, declared)) => {
                        // Each file has at most a forward and a reverse hunk; more are not
                        // patches git applies, only work for this check (a delta's probe).
                        binary_hunks += 1;
                        if binary_hunks > limits.max_files.saturating_mul(2) {
                            return Err(over(PatchLimit::Files));
                        }
                        add_binary(declared, &mut binary_total)?;
                        match kind {
                            HunkKind::Literal => BinaryState::HunkData(None),
                            HunkKind::Delta => BinaryState::HunkData(Some(DeltaProbe::new())),
                        }
                    }
                    None => BinaryState::Outside,
                },
                // An empty line ends a hunk's data; the reverse hunk's header may follow.
                BinaryState::HunkData(_) if line.is_empty() => BinaryState::HunkHeader,
                BinaryState::HunkData(Some(mut probe)) => match probe.feed(line) {
                    // The delta's result, which git allocates whole: the same caps.
                    Probe::ResultSize(size) => {
                        add_binary(size, &mut binary_total)?;
                        BinaryState::HunkData(None)
                    }
                    Probe::NeedMore => BinaryState::HunkData(Some(probe)),
                    // Data git cannot read either: it refuses the patch itself.
                    Probe::Unreadable => BinaryState::HunkData(None),
                },
                other => other,
            };
            if line == b"GIT binary patch" {
                state = BinaryState::HunkHeader;
            } else if line.starts_with(b"diff --git ") {
                files += 1;
                if files > limits.max_files {
                    return Err(over(PatchLimit::Files));
                }
            }
        }
    }
    Ok(())
}

/// Where [`check_patches`] is relative to a `GIT binary patch` section.
enum BinaryState {
    /// Not in a binary section.
    Outside,
    /// The next line may be a hunk header (`literal N` / `delta N`).
    HunkHeader,
    /// Inside a hunk's base85 data lines; for a `delta` hunk, reading the size of its result
    /// until it is known.
    HunkData(Option<DeltaProbe>),
}

/// The two kinds of binary hunk.
enum HunkKind {
    /// The whole new content, deflated; `literal N` declares its size.
    Literal,
    /// A git delta against the old content, deflated; `delta N` declares the delta's size, and
    /// the delta itself begins with the size of its result.
    Delta,
}

/// The kind and declared size of a binary hunk header, or `None` if `line` is not one.
fn hunk_header(line: &[u8]) -> Option<(HunkKind, u64)> {
    if let Some(rest) = line.strip_prefix(b"literal ") {
        return Some((HunkKind::Literal, strtoul(rest)));
    }
    let rest = line.strip_prefix(b"delta ")?;
    Some((HunkKind::Delta, strtoul(rest)))
}

/// What feeding a data line to a [`DeltaProbe`] found.
enum Probe {
    /// The delta's result size.
    ResultSize(u64),
    /// Not yet known; feed the next line.
    NeedMore,
    /// The data is not base85 or not deflate: git refuses it too.
    Unreadable,
}

/// At most two varints of ten bytes each: the two sizes at the start of a delta.
const DELTA_HEADER_BYTES: usize = 20;

/// Reads the start of a `delta` hunk's data: base85 lines, deflated, beginning with two
/// variable-length sizes (the source's, then the result's). Only the first bytes of the delta
/// are inflated, so the cost per hunk is a few lines whatever the hunk's size.
struct DeltaProbe {
    inflate: flate2::Decompress,
    /// The inflated start of the delta.
    head: Vec<u8>,
}

impl DeltaProbe {
    fn new() -> Self {
        DeltaProbe {
            inflate: flate2::Decompress::new(true),
            head: Vec::with_capacity(DELTA_HEADER_BYTES),
        }
    }

    fn feed(&mut self, line: &[u8]) -> Probe {
        let Some(compressed) = decode_base85_line(line) else {
            return Probe::Unreadable;
        };
        let mut input = compressed.as_slice();
        // Each round consumes input or produces output, or stops: at most a few rounds for a
        // line of 52 bytes.
        while !input.is_empty() && self.head.len() < DELTA_HEADER_BYTES {
            let mut out = [0u8; DELTA_HEADER_BYTES];
            let want = DELTA_HEADER_BYTES - self.head.len();
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let status =
                self.inflate
                    .decompress(input, &mut out[..want], flate2::FlushDecompress::None);
            let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(usize::MAX);
            let made = usize::try_from(self.inflate.total_out() - before_out).unwrap_or(0);
            self.head.extend_from_slice(&out[..made.min(want)]);
            input = input.get(used..).unwrap_or_default();
            match status {
                Ok(flate2::Status::Ok) if used > 0 || made > 0 => {}
                Ok(_) => break,
                Err(_) => return Probe::Unreadable,
            }
        }
        let mut rest = self.head.as_slice();
        let source = delta_size(&mut rest);
        match (source, delta_size(&mut rest)) {
            (Some(_), Some(result)) => Probe::ResultSize(result),
            _ if self.head.len() >= DELTA_HEADER_BYTES => Probe::Unreadable,
            _ => Probe::NeedMore,
        }
    }
}

/// Reads one of a delta's little-endian base-128 sizes from the front of `bytes`, as git's
/// `get_delta_hdr_size` does (saturating instead of wrapping); `None` if it is incomplete.
fn delta_size(bytes: &mut &[u8]) -> Option<u64> {
    let mut size = 0u64;
    let mut shift = 0u32;
    while let [byte, tail @ ..] = *bytes {
        *bytes = tail;
        let bits = u64::from(byte & 0x7f);
        let shifted = bits
            .checked_shl(shift)
            .filter(|value| value >> shift == bits)
            .unwrap_or(u64::MAX);
        size |= shifted;
        shift = shift.saturating_add(7);
        if byte & 0x80 == 0 {
            return Some(size);
        }
    }
    None
}

/// Decodes one line of a binary hunk: a length character (`A`–`Z` for 1–26 bytes, `a`–`z`
/// for 27–52), then base85 in groups of five characters per four bytes (git's alphabet).
/// `None` if the line is not one git would read.
fn decode_base85_line(line: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 85] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    let (&first, encoded) = line.split_first()?;
    let len = match first {
        b'A'..=b'Z' => usize::from(first - b'A') + 1,
        b'a'..=b'z' => usize::from(first - b'a') + 27,
        _ => return None,
    };
    if encoded.len() != len.div_ceil(4) * 5 {
        return None;
    }
    let mut out = Vec::with_capacity(len.div_ceil(4) * 4);
    for group in encoded.chunks(5) {
        let mut value = 0u32;
        for &ch in group {
            let digit = ALPHABET.iter().position(|&a| a == ch)?;
            value = value
                .checked_mul(85)?
                .checked_add(u32::try_from(digit).ok()?)?;
        }
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.truncate(len);
    Some(out)
}

/// C's `strtoul(text, NULL, 10)`, saturating: leading white space, an optional sign, then
/// digits up to the first non-digit (none: 0). A negative value wraps around in C, to a huge
/// number; here it is `u64::MAX`, which is over every limit too.
fn strtoul(text: &[u8]) -> u64 {
    let mut rest = text;
    while let [first, tail @ ..] = rest
        && matches!(first, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
    {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    let mut value = 0u64;
    for &byte in rest.iter().take_while(|byte| byte.is_ascii_digit()) {
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(byte - b'0'));
    }
    if negative && value != 0 {
        u64::MAX
    } else {
        value
    }
}
