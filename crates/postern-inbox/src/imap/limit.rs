//! A cap on what one IMAP server response may make us hold, below async-imap.
//!
//! async-imap keeps a whole response in one buffer (up to 512 MiB) and re-parses it from the
//! start after every read while a line is incomplete, so a broken or hostile server sending an
//! endless line or a huge literal would cost unbounded memory and quadratic time. This stream
//! wrapper frames responses itself — text lines ending in LF, literals announced by `{N}` (or
//! `{N+}`, `~{N}`) at the end of a line — and:
//!
//! - holds back an incomplete text line until its LF, so async-imap only ever parses whole
//!   lines (an endless line never reaches it);
//! - fails the read with [`ResponseTooLarge`] as soon as one response's text passes
//!   [`MAX_RESPONSE_TEXT`] or its literals announce more than the literal cap (the message size
//!   limit plus [`LITERAL_SLACK`]) — at the announcement, before any of it is read.
//!
//! The failure reaches the watcher as an I/O error; it reports "response too large" and
//! reconnects with back-off like after any other connection failure.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes of text (everything outside literals) in one response. A `UID SEARCH` answer
/// is the longest legitimate line: this holds about 500 000 seven-digit UIDs.
pub(crate) const MAX_RESPONSE_TEXT: usize = 4 << 20;
/// Literal bytes allowed in one response beyond the largest message fetched (a `FETCH` of one
/// message may carry a header block or other small literals besides the body).
pub(crate) const LITERAL_SLACK: u64 = 1 << 20;
/// Bytes read from the server at once.
const READ_CHUNK: usize = 16 * 1024;
/// The longest literal announcement looked at: `~{` + 20 digits + `+}` + CRLF.
const MARKER_TAIL: usize = 28;

/// The error inside the [`io::Error`] when a response goes over a cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseTooLarge(String);

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response too large: {}", self.0)
    }
}

impl std::error::Error for ResponseTooLarge {}

/// Whether `error` (from async-imap) is a cap of this module.
pub(crate) fn too_large(error: &io::Error) -> Option<&ResponseTooLarge> {
    error.get_ref()?.downcast_ref::<ResponseTooLarge>()
}

/// See the module documentation.
pub(crate) struct Capped<S> {
    inner: S,
    /// Most literal bytes in one response.
    literal_cap: u64,
    /// Bytes async-imap may have now, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The incomplete text line held back.
    line: Vec<u8>,
    /// Literal bytes still to come, passed through without looking at them.
    literal_left: u64,
    /// Text and literal bytes of the current response so far.
    text: usize,
    literals: u64,
    /// Set once a cap was hit: every later read fails the same way.
    failed: Option<ResponseTooLarge>,
    scratch: Box<[u8]>,
}

impl<S> fmt::Debug for Capped<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capped")
            .field("literal_cap", &self.literal_cap)
            .finish_non_exhaustive()
    }
}

impl<S> Capped<S> {
    /// Wraps `inner`, allowing literals of up to `largest_message` bytes (plus slack).
    pub(crate) fn new(inner: S, largest_message: u64) -> Capped<S> {
        Capped {
            inner,
            literal_cap: largest_message.saturating_add(LITERAL_SLACK),
            out: Vec::new(),
            out_pos: 0,
            line: Vec::new(),
            literal_left: 0,
            text: 0,
            literals: 0,
            failed: None,
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The stream underneath. Only valid between responses (for STARTTLS): anything held
    /// back would be lost, and nothing is held back after a complete response.
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }

    fn fail(&mut self, what: String) -> io::Error {
        let error = ResponseTooLarge(what);
        self.failed = Some(error.clone());
        self.line = Vec::new();
        self.out = Vec::new();
        self.out_pos = 0;
        io::Error::other(error)
    }

    /// Frames `input` (just read from the server) into `out` and `line`.
    fn frame(&mut self, mut input: &[u8]) -> Result<(), io::Error> {
        while !input.is_empty() {
            if self.literal_left > 0 {
                let take = usize::try_from(self.literal_left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                self.out.extend_from_slice(&input[..take]);
                self.literal_left -= take as u64;
                input = &input[take..];
                continue;
            }
            let (take, ended) = match input.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (input.len(), false),
            };
            self.text = self.text.saturating_add(take);
            if self.text > MAX_RESPONSE_TEXT {
                return Err(self.fail(format!(
                    "the server sent a response line over {MAX_RESPONSE_TEXT} bytes"
                )));
            }
            self.line.extend_from_slice(&input[..take]);
            input = &input[take..];
            if !ended {
                continue;
            }
            let announced = literal_announced(&self.line);
            self.out.append(&mut self.line);
            match announced {
                Some(size) => {
                    self.literals = self.literals.saturating_add(size);
                    if self.literals > self.literal_cap {
                        return Err(self.fail(format!(
                            "the server announced {size} bytes in a response that may hold at \
                             most {}",
                            self.literal_cap
                        )));
                    }
                    self.literal_left = size;
                }
                None => {
                    // A line without a literal at its end closes the response.
                    self.text = 0;
                    self.literals = 0;
                }
            }
        }
        Ok(())
    }
}

/// The size of the literal announced at the end of `line` (`{N}`, `{N+}`, `~{N}` before the
/// line ending), if any.
fn literal_announced(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let tail = &line[line.len().saturating_sub(MARKER_TAIL)..];
    let inside = tail.strip_suffix(b"}")?;
    let open = inside.iter().rposition(|&b| b == b'{')?;
    let digits = &inside[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for a u64 is certainly over any cap.
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(u64::MAX),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = &this.failed {
                return Poll::Ready(Err(io::Error::other(error.clone())));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                // End of stream: hand over a partial line so async-imap reports the cut.
                if this.line.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.out.append(&mut this.line);
                continue;
            }
            // Taken out for the call, so framing can borrow the rest of `this`.
            let scratch = std::mem::take(&mut this.scratch);
            let framed = this.frame(&scratch[..n]);
            this.scratch = scratch;
            framed?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    async fn read_all(server: &[u8], largest: u64) -> io::Result<Vec<u8>> {
        let mut capped = Capped::new(server, largest);
        let mut all = Vec::new();
        capped.read_to_end(&mut all).await?;
        Ok(all)
    }

    #[test]
    fn literal_markers() {
        assert_eq!(literal_announced(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_announced(b"A1 APPEND x {5+}\r\n"), Some(5));
        assert_eq!(literal_announced(b"* 1 FETCH (BINARY[] ~{7}\n"), Some(7));
        assert_eq!(literal_announced(b"* OK {x}\r\n"), None);
        assert_eq!(literal_announced(b"* OK done\r\n"), None);
        assert_eq!(literal_announced(b"{}\r\n"), None);
        assert_eq!(
            literal_announced(b"* {99999999999999999999999}\r\n"),
            Some(u64::MAX)
        );
    }

    #[tokio::test]
    async fn ordinary_responses_pass_unchanged() {
        let server =
            b"* OK ready\r\n* 1 FETCH (UID 5 BODY[] {12}\r\nline\r\n{3}\r\nx\r\n)\r\nA1 OK\r\n";
        assert_eq!(read_all(server, 100).await.expect("passes"), server);
    }

    #[tokio::test]
    async fn a_huge_literal_fails_at_its_announcement() {
        let server = b"* 1 FETCH (UID 5 BODY[] {999999999}\r\nabc";
        let error = read_all(server, 1000).await.expect_err("too large");
        assert!(too_large(&error).is_some());
        assert!(error.to_string().contains("response too large"), "{error}");
    }

    #[tokio::test]
    async fn literals_add_up_within_one_response() {
        let mut server = b"* 1 FETCH (BODY[1] {600}\r\n".to_vec();
        server.extend_from_slice(&[b'a'; 600]);
        server.extend_from_slice(b" BODY[2] {600}\r\n");
        server.extend_from_slice(&[b'a'; 600]);
        server.extend_from_slice(b")\r\n");
        assert!(
            read_all(&server, 0).await.is_ok(),
            "1200 bytes are under the slack"
        );
        // Each literal fits under 1000; together they do not.
        let mut capped = Capped::new(&server[..], 0);
        capped.literal_cap = 1000;
        let mut all = Vec::new();
        assert!(capped.read_to_end(&mut all).await.is_err());
    }

    #[tokio::test]
    async fn an_endless_line_fails_without_reaching_the_parser() {
        let mut server = b"* SEARCH".to_vec();
        while server.len() <= MAX_RESPONSE_TEXT {
            server.extend_from_slice(b" 1234567");
        }
        let mut capped = Capped::new(&server[..], 1000);
        let mut first = [0u8; 64];
        let error = capped.read(&mut first).await.expect_err("too large");
        assert!(too_large(&error).is_some());
    }
}
