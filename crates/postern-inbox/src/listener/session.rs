//! One client connection: the LMTP/SMTP command loop, DATA reading and the replies.
//!
//! Commands are parsed by `smtp-proto` (licence Apache-2.0 OR MIT) one complete line at a time;
//! this module owns the state machine, the limits and the byte handling around it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use smtp_proto::{Error as ParseError, Request};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tracing::Instrument as _;

use super::{DeliverError, Delivery, Protocol, Settings};

/// How a bounded line read ended.
enum Line {
    /// A whole line, ending in LF, is in the buffer.
    Done,
    /// The line was longer than the limit; it was read up to its LF and thrown away.
    TooLong,
    /// The client closed the connection (any partial line is dropped).
    Eof,
}

/// Why the session ends early.
enum Close {
    /// Client went away, or a write failed; nothing more can be said.
    Gone,
    /// Idle timeout or shutdown: say this `421` line, then close.
    Say(&'static str),
}

/// Reads one line ending in LF into `buf`, never holding more than `max` bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut discarding = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, found) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !discarding {
            if buf.len() + take > max {
                // Keep reading to the end of the line so the protocol stays in step.
                discarding = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if found {
            return Ok(if discarding {
                Line::TooLong
            } else {
                Line::Done
            });
        }
    }
}

/// The state of one connection, alive for as long as the client stays connected.
struct Session<'a, S> {
    /// The connection, buffered for reading; writes pass straight through.
    stream: BufReader<S>,
    /// The listener's limits, shared by all sessions.
    settings: &'a Settings,
    /// Whether LHLO (LMTP) or HELO/EHLO (SMTP) has been seen; MAIL needs it.
    greeted: bool,
    /// The envelope sender of the current transaction, `None` outside one.
    from: Option<String>,
    /// The accepted recipients of the current transaction.
    rcpts: Vec<String>,
}

/// Serves one connection until QUIT, disconnect, idle timeout or shutdown.
pub(super) async fn serve<S, F, Fut>(
    stream: S,
    peer: SocketAddr,
    settings: &Settings,
    stop: watch::Receiver<bool>,
    deliver: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Result<(), DeliverError>>,
{
    tracing::debug!(%peer, "listener: connection opened");
    let mut session = Session {
        stream: BufReader::new(stream),
        settings,
        greeted: false,
        from: None,
        rcpts: Vec::new(),
    };
    match session.run(stop, deliver).await {
        Ok(()) | Err(Close::Gone) => {}
        Err(Close::Say(reply)) => {
            // Best effort: the client may already be gone.
            let _ = session.stream.get_mut().write_all(reply.as_bytes()).await;
        }
    }
    let _ = session.stream.get_mut().shutdown().await;
    tracing::debug!(%peer, "listener: connection closed");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn reply(&mut self, text: &str) -> Result<(), Close> {
        let stream = self.stream.get_mut();
        stream
            .write_all(text.as_bytes())
            .await
            .map_err(|_| Close::Gone)?;
        stream.flush().await.map_err(|_| Close::Gone)
    }

    /// One bounded read, with the idle timeout; EOF and I/O errors end the session.
    async fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Line, Close> {
        let read = read_line(&mut self.stream, buf, max);
        match tokio::time::timeout(self.settings.idle_timeout, read).await {
            Err(_) => Err(Close::Say("421 4.4.2 Idle timeout, closing connection\r\n")),
            Ok(Err(_)) | Ok(Ok(Line::Eof)) => Err(Close::Gone),
            Ok(Ok(line)) => Ok(line),
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    async fn run<F, Fut>(
        &mut self,
        mut stop: watch::Receiver<bool>,
        deliver: F,
    ) -> Result<(), Close>
    where
        F: Fn(Delivery) -> Fut,
        Fut: std::future::Future<Output = Result<(), DeliverError>>,
    {
        let (name, kind) = match self.settings.protocol {
            Protocol::Lmtp => ("LMTP", "LMTP"),
            Protocol::Smtp => ("ESMTP", "SMTP"),
        };
        let greeting = format!("220 {} {name} postern ready\r\n", self.settings.hostname);
        self.reply(&greeting).await?;
        let mut line = Vec::new();
        loop {
            // Shutdown is only observed here, between commands, so a message whose DATA or
            // delivery is under way is always finished and answered first.
            let max = self.settings.max_line_length;
            let read = tokio::select! {
                biased;
                _ = stop.wait_for(|stopping| *stopping) => {
                    return Err(Close::Say("421 4.3.2 Server shutting down\r\n"));
                }
                read = self.read(&mut line, max) => read?,
            };
            if let Line::TooLong = read {
                self.reply("500 5.5.2 Line too long\r\n").await?;
                continue;
            }
            let request = Request::parse(&mut line.iter()).map(Request::into_owned);
            match request {
                Ok(Request::Lhlo { host }) if self.settings.protocol == Protocol::Lmtp => {
                    self.hello(&host, true).await?;
                }
                Ok(Request::Ehlo { host }) if self.settings.protocol == Protocol::Smtp => {
                    self.hello(&host, true).await?;
                }
                Ok(Request::Helo { host }) if self.settings.protocol == Protocol::Smtp => {
                    self.hello(&host, false).await?;
                }
                Ok(Request::Lhlo { .. } | Request::Ehlo { .. } | Request::Helo { .. }) => {
                    let text = format!("500 5.5.1 This server speaks {kind}\r\n");
                    self.reply(&text).await?;
                }
                Ok(Request::Mail { from }) => {
                    let text = if !self.greeted {
                        "503 5.5.1 Say hello first\r\n"
                    } else if self.from.is_some() {
                        "503 5.5.1 Transaction already started\r\n"
                    } else if from.size > self.settings.max_message_size {
                        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                    } else {
                        self.from = Some(from.address);
                        "250 2.1.0 Sender OK\r\n"
                    };
                    self.reply(text).await?;
                }
                Ok(Request::Rcpt { to }) => {
                    let text = if self.from.is_none() {
                        "503 5.5.1 MAIL first\r\n"
                    } else if self.rcpts.len() >= self.settings.max_recipients {
                        "452 4.5.3 Too many recipients\r\n"
                    } else if to.address.is_empty() {
                        "501 5.1.3 Empty recipient address\r\n"
                    } else {
                        self.rcpts.push(to.address);
                        "250 2.1.5 Recipient OK\r\n"
                    };
                    self.reply(text).await?;
                }
                Ok(Request::Data) => {
                    if self.rcpts.is_empty() {
                        self.reply("503 5.5.1 RCPT first\r\n").await?;
                        continue;
                    }
                    self.reply("354 Start mail input; end with <CRLF>.<CRLF>\r\n")
                        .await?;
                    // Deliver here, not inside `data`: a `&F` held across the await would
                    // need `F: Sync`, which callers should not have to promise.
                    let message = self.data().await?;
                    // Every line about this message, the callback's included, names it.
                    let span = match &message {
                        Some(delivery) => tracing::info_span!(
                            "message",
                            message_id = crate::headers::message_id(&delivery.raw).as_deref(),
                            size = delivery.raw.len()
                        ),
                        None => tracing::Span::none(),
                    };
                    let outcome = match message {
                        Some(delivery) => Some(deliver(delivery).instrument(span.clone()).await),
                        None => None,
                    };
                    self.answer(outcome).instrument(span).await?;
                }
                Ok(Request::Rset) => {
                    self.reset();
                    self.reply("250 2.0.0 Reset\r\n").await?;
                }
                Ok(Request::Noop { .. }) => self.reply("250 2.0.0 OK\r\n").await?,
                Ok(Request::Quit) => {
                    self.reply("221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                // VRFY, EXPN, AUTH, STARTTLS, BDAT, ...: not offered, so not implemented.
                Ok(_) => self.reply("502 5.5.1 Command not implemented\r\n").await?,
                Err(ParseError::InvalidSenderAddress) => {
                    self.reply("501 5.1.7 Invalid sender address\r\n").await?;
                }
                Err(ParseError::InvalidRecipientAddress) => {
                    self.reply("501 5.1.3 Invalid recipient address\r\n")
                        .await?;
                }
                Err(ParseError::UnknownCommand) | Err(ParseError::NeedsMoreData { .. }) => {
                    self.reply("500 5.5.1 Unknown command\r\n").await?;
                }
                Err(_) => self.reply("501 5.5.4 Syntax error\r\n").await?,
            }
        }
    }

    async fn hello(&mut self, _host: &str, extended: bool) -> Result<(), Close> {
        // A new greeting also abandons any transaction in progress (RFC 5321 4.1.4).
        self.reset();
        self.greeted = true;
        let host = &self.settings.hostname;
        let text = if extended {
            // PIPELINING is safe: commands are read one line at a time from a buffer.
            format!(
                "250-{host}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {}\r\n",
                self.settings.max_message_size
            )
        } else {
            format!("250 {host}\r\n")
        };
        self.reply(&text).await
    }

    /// Reads DATA up to the `.` line; `None` if the message went over the size limit.
    async fn data(&mut self) -> Result<Option<Delivery>, Close> {
        let max = self.settings.max_message_size;
        let mut raw = Vec::new();
        let mut oversized = false;
        let mut line = Vec::new();
        loop {
            // Room for what is left of the budget plus the terminator or a stuffed dot; once
            // over the limit only the terminator matters, so a command-sized line is enough.
            let limit = if oversized {
                self.settings.max_line_length
            } else {
                max - raw.len() + 3
            };
            match self.read(&mut line, limit).await? {
                Line::TooLong => {
                    oversized = true;
                    raw = Vec::new();
                    continue;
                }
                Line::Done | Line::Eof => {}
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            if oversized {
                continue;
            }
            let content = line.strip_prefix(b".").unwrap_or(&line);
            if raw.len() + content.len() > max {
                // Free the partial message now rather than after the client finishes sending.
                oversized = true;
                raw = Vec::new();
            } else {
                raw.extend_from_slice(content);
            }
        }

        if oversized {
            tracing::info!(from = ?self.from, "listener: message over the size limit refused");
            return Ok(None);
        }
        Ok(Some(Delivery {
            mailbox_hint: self.rcpts.clone(),
            raw,
            from: self.from.clone().unwrap_or_default(),
        }))
    }

    /// Answers the end of DATA (`None`: oversized) and ends the transaction.
    async fn answer(&mut self, outcome: Option<Result<(), DeliverError>>) -> Result<(), Close> {
        let reply = match outcome {
            None => "552 5.3.4 Message size exceeds fixed maximum message size".to_owned(),
            Some(result) => match result {
                Ok(()) => "250 2.0.0 Message accepted".to_owned(),
                Err(DeliverError::Temporary(why)) => {
                    tracing::warn!(%why, "listener: temporary delivery failure");
                    format!("451 4.3.0 Temporary failure: {}", one_line(&why))
                }
                Err(DeliverError::Permanent(why)) => {
                    tracing::warn!(%why, "listener: message refused");
                    format!("550 5.0.0 Rejected: {}", one_line(&why))
                }
            },
        };
        // LMTP answers once per accepted recipient (RFC 2033 4.2), SMTP once.
        let count = match self.settings.protocol {
            Protocol::Lmtp => self.rcpts.len(),
            Protocol::Smtp => 1,
        };
        let mut text = String::new();
        for _ in 0..count {
            let _ = write!(text, "{reply}\r\n");
        }
        self.reset();
        self.reply(&text).await
    }
}

/// Keeps a callback's message from breaking the reply: printable ASCII only, bounded length.
fn one_line(why: &str) -> String {
    why.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}
