//! A tiny IMAP4rev1 client for tests: enough to read back what a test delivered.
//!
//! Plain TCP on loopback only; `LOGIN`, `SELECT`, `UID SEARCH`, `UID FETCH n BODY.PEEK[]`,
//! `UID FETCH n FLAGS`, `APPEND` (to load a folder without an MTA) and `LOGOUT`, with literal
//! (`{n}`) parsing so message bytes come back exactly as stored. It is
//! deliberately not the production client (that is `postern-inbox`'s job): a test that reads
//! its results through the code under test would prove nothing.
//!
//! Every read is bounded: a command waits at most [`COMMAND_TIMEOUT`], a line is at most
//! [`MAX_LINE`] bytes and a literal at most [`MAX_LITERAL`] bytes.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// How long one command (including the server's whole answer) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest response line accepted, literals excluded.
pub const MAX_LINE: usize = 1 << 20;
/// The largest literal accepted.
pub const MAX_LITERAL: usize = 64 << 20;

/// One untagged server response: its text with every literal cut out (the `{n}` marker stays),
/// and the literals in order.
#[derive(Debug, Clone, Default)]
pub struct Untagged {
    /// The response's text, literals removed.
    pub text: Vec<u8>,
    /// The literals, in the order they appeared.
    pub literals: Vec<Vec<u8>>,
}

/// A connected IMAP session. Dropping it closes the connection without `LOGOUT`.
#[derive(Debug)]
pub struct ImapClient {
    stream: BufReader<TcpStream>,
    next_tag: u32,
}

impl ImapClient {
    /// Connects to `127.0.0.1:port` and reads the greeting.
    pub async fn connect(port: u16) -> io::Result<ImapClient> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut client = ImapClient {
            stream: BufReader::new(stream),
            next_tag: 1,
        };
        let greeting = tokio::time::timeout(COMMAND_TIMEOUT, client.read_response())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "IMAP greeting"))??;
        if !greeting.text.starts_with(b"* OK") {
            return Err(protocol(format!(
                "unexpected greeting {:?}",
                String::from_utf8_lossy(&greeting.text)
            )));
        }
        Ok(client)
    }

    /// `LOGIN user password`.
    pub async fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await
            .map(drop)
    }

    /// `SELECT mailbox`.
    pub async fn select(&mut self, mailbox: &str) -> io::Result<()> {
        self.command(&format!("SELECT {}", quote(mailbox)))
            .await
            .map(drop)
    }

    /// `UID SEARCH criteria` (e.g. `ALL`, `HEADER Message-ID "<x@y>"`): the matching UIDs.
    pub async fn uid_search(&mut self, criteria: &str) -> io::Result<Vec<u32>> {
        let responses = self.command(&format!("UID SEARCH {criteria}")).await?;
        let mut uids = Vec::new();
        for r in responses {
            if let Some(rest) = r.text.strip_prefix(b"* SEARCH") {
                for word in String::from_utf8_lossy(rest).split_ascii_whitespace() {
                    uids.push(
                        word.parse().map_err(|_| {
                            protocol(format!("bad UID {word:?} in SEARCH response"))
                        })?,
                    );
                }
            }
        }
        uids.sort_unstable();
        Ok(uids)
    }

    /// `UID FETCH uid BODY.PEEK[]`: the whole message, byte for byte, without setting `\Seen`.
    pub async fn uid_fetch_body(&mut self, uid: u32) -> io::Result<Vec<u8>> {
        let responses = self
            .command(&format!("UID FETCH {uid} BODY.PEEK[]"))
            .await?;
        responses
            .into_iter()
            .find(|r| contains(&r.text, b" FETCH ") && contains(&r.text, b"BODY[]"))
            .and_then(|r| r.literals.into_iter().next())
            .ok_or_else(|| protocol(format!("no BODY[] literal for UID {uid}")))
    }

    /// `APPEND mailbox (flags) {n+}` with `raw` as a non-synchronising literal (LITERAL+), so a
    /// test can put a message into any folder, with any flags (e.g. `\\Seen`), without an MTA.
    pub async fn append(&mut self, mailbox: &str, flags: &str, raw: &[u8]) -> io::Result<()> {
        let mut command =
            format!("APPEND {} ({flags}) {{{}+}}\r\n", quote(mailbox), raw.len()).into_bytes();
        command.extend_from_slice(raw);
        self.command_bytes(&command).await.map(drop)
    }

    /// The `FLAGS` of message `uid` as the server lists them (`\\Seen \\Deleted`), or `None`
    /// when no message has that UID (any more).
    pub async fn uid_flags(&mut self, uid: u32) -> io::Result<Option<String>> {
        let responses = self
            .command(&format!("UID FETCH {uid} (UID FLAGS)"))
            .await?;
        Ok(responses.into_iter().find_map(|r| {
            let text = String::from_utf8_lossy(&r.text).into_owned();
            let start = text.find("FLAGS (")? + "FLAGS (".len();
            let end = start + text[start..].find(')')?;
            Some(text[start..end].to_owned())
        }))
    }

    /// `LOGOUT`, then closes the connection.
    pub async fn logout(mut self) -> io::Result<()> {
        self.command("LOGOUT").await.map(drop)
    }

    /// Sends one tagged command and collects the untagged responses until its tagged
    /// completion, which must be `OK`.
    pub async fn command(&mut self, command: &str) -> io::Result<Vec<Untagged>> {
        self.command_bytes(command.as_bytes()).await
    }

    /// [`ImapClient::command`] for a command that carries raw bytes (a literal).
    async fn command_bytes(&mut self, command: &[u8]) -> io::Result<Vec<Untagged>> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        let name = String::from_utf8_lossy(command.split(|&b| b == b' ').next().unwrap_or(b""))
            .into_owned();
        let exchange = async {
            let mut line = format!("{tag} ").into_bytes();
            line.extend_from_slice(command);
            line.extend_from_slice(b"\r\n");
            self.stream.get_mut().write_all(&line).await?;
            self.stream.get_mut().flush().await?;
            let mut untagged = Vec::new();
            loop {
                let response = self.read_response().await?;
                if let Some(status) = response.text.strip_prefix(format!("{tag} ").as_bytes()) {
                    return if status.starts_with(b"OK") {
                        Ok(untagged)
                    } else {
                        Err(protocol(format!(
                            "{name} answered {}",
                            String::from_utf8_lossy(status)
                        )))
                    };
                }
                untagged.push(response);
            }
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "IMAP command timed out"))?
    }

    /// One response: a line, and whenever it ends in `{n}`, n literal bytes and the line's
    /// continuation.
    async fn read_response(&mut self) -> io::Result<Untagged> {
        let mut response = Untagged::default();
        loop {
            let mut line = Vec::new();
            let n = (&mut self.stream)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "IMAP server closed the connection",
                ));
            }
            if !line.ends_with(b"\n") {
                return Err(protocol("IMAP response line too long".to_owned()));
            }
            let line = line
                .strip_suffix(b"\r\n")
                .or_else(|| line.strip_suffix(b"\n"))
                .unwrap_or(&line);
            response.text.extend_from_slice(line);
            match literal_size(line) {
                Some(size) if size > MAX_LITERAL => {
                    return Err(protocol(format!("literal of {size} bytes is too large")));
                }
                Some(size) => {
                    let mut literal = vec![0; size];
                    self.stream.read_exact(&mut literal).await?;
                    response.literals.push(literal);
                }
                None => return Ok(response),
            }
        }
    }
}

/// `n` when `line` ends in `{n}` (or the non-synchronising `{n+}`).
fn literal_size(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `s` as an IMAP quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn protocol(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sizes() {
        assert_eq!(literal_size(b"* 1 FETCH (UID 7 BODY[] {123}"), Some(123));
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {0}"), Some(0));
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {12+}"), Some(12));
        assert_eq!(literal_size(b"* OK [UIDVALIDITY 5] {x}"), None);
        assert_eq!(literal_size(b"* OK done"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
