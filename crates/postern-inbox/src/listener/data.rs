//! The DATA stream decoder: removes dot-stuffing and finds the terminating `.` line, in one
//! pass over the bytes however they are split into reads, without holding any line.
//!
//! A line is anything ending in LF (bare LF is accepted as well as CRLF); one leading `.` is
//! removed from every line; a line that is just `.` (`.\r\n` or `.\n`) ends the message.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Seen a `.` at the start of a line (not copied: it is stuffing or the terminator).
    Dot,
    /// Seen `.` and CR at the start of a line.
    DotCr,
    /// Inside a line.
    Middle,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct DotDecoder {
    state: State,
}

impl DotDecoder {
    pub(crate) fn new() -> DotDecoder {
        DotDecoder {
            state: State::LineStart,
        }
    }

    /// Decodes `input`, appending the message's bytes to `out`. Returns how many bytes of
    /// `input` the terminating line used up to its LF (the rest belongs to the next command),
    /// or `None` when the message goes on past `input`.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut at = 0;
        while at < input.len() {
            match self.state {
                State::Middle => match input[at..].iter().position(|&b| b == b'\n') {
                    Some(offset) => {
                        out.extend_from_slice(&input[at..=at + offset]);
                        at += offset + 1;
                        self.state = State::LineStart;
                    }
                    None => {
                        out.extend_from_slice(&input[at..]);
                        at = input.len();
                    }
                },
                State::LineStart => {
                    if input[at] == b'.' {
                        self.state = State::Dot;
                        at += 1;
                    } else {
                        // The byte (an empty line's LF included) is copied as inside a line.
                        self.state = State::Middle;
                    }
                }
                State::Dot => match input[at] {
                    b'\r' => {
                        self.state = State::DotCr;
                        at += 1;
                    }
                    b'\n' => return Some(at + 1),
                    // The dot was stuffing: dropped, and the byte is copied.
                    _ => self.state = State::Middle,
                },
                State::DotCr => {
                    if input[at] == b'\n' {
                        return Some(at + 1);
                    }
                    // `.` CR and something else: the CR belongs to the line.
                    out.push(b'\r');
                    self.state = State::Middle;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line-by-line definition the decoder must agree with.
    fn by_lines(input: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(offset) = input[at..].iter().position(|&b| b == b'\n') {
            let line = &input[at..=at + offset];
            at += offset + 1;
            if line == b".\r\n" || line == b".\n" {
                return Some((out, at));
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        None
    }

    fn decode_in_pieces(input: &[u8], piece: usize) -> Option<(Vec<u8>, usize)> {
        let mut decoder = DotDecoder::new();
        let mut out = Vec::new();
        let mut offset = 0;
        for chunk in input.chunks(piece) {
            if let Some(used) = decoder.feed(chunk, &mut out) {
                return Some((out, offset + used));
            }
            offset += chunk.len();
        }
        None
    }

    #[test]
    fn agrees_with_the_line_definition_for_every_split() {
        let cases: [&[u8]; 9] = [
            b"Subject: hi\r\n\r\nline\r\n..dot\r\n.\r\nNOOP\r\n",
            b".\r\n",
            b".\n",
            b"a\n.\nQUIT\r\n",
            b"..\r\n.\r\r\n.x\r\n.\r\n",
            b"\r\n\n.\r.\r\n.\r\n",
            b"no end\r\n",
            b"x\r\n.",
            b"...\n.\r\n",
        ];
        for case in cases {
            for piece in 1..=case.len() {
                assert_eq!(
                    decode_in_pieces(case, piece),
                    by_lines(case),
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    #[test]
    fn pseudo_random_inputs_agree() {
        // A small linear congruential generator: deterministic, no dependency.
        let mut seed: u32 = 12345;
        let alphabet = b".\r\na";
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (seed >> 16) as usize % 24;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                input.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            for piece in 1..=input.len().max(1) {
                assert_eq!(
                    decode_in_pieces(&input, piece),
                    by_lines(&input),
                    "{input:?}"
                );
            }
        }
    }
}
