//! One client connection: the LMTP/SMTP command loop, DATA reading and the replies.
//!
//! Commands are parsed by `smtp-proto` (licence Apache-2.0 OR MIT) one complete line at a time;
//! this module owns the state machine, the limits and the byte handling around it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_vocab::Shutdown;
use smtp_proto::{Error as ParseError, Request};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::{Instant, timeout_at};
use tracing::Instrument as _;

use super::body::{BodySink, Budget, Discarded, MessageBody};
use super::data::DotDecoder;
use super::{DeliverError, Delivery, Protocol, Settings};

/// Read buffer per session: also the most DATA bytes decoded at once.
const READ_BUFFER: usize = 16 * 1024;
/// How much of a message is read to find its Message-ID for the log span.
const HEAD_FOR_LOG: usize = 64 * 1024;
/// Stands in for a time limit too large to add to the clock: about 30 years.
const NEVER: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
/// How long the last `421` line and the close may take when the client does not read.
const CLOSING_LIMIT: Duration = Duration::from_secs(5);

const IDLE: &str = "421 4.4.2 Idle timeout, closing connection\r\n";
const DEADLINE: &str = "421 4.4.2 Session time limit reached, closing connection\r\n";
const TOO_SLOW: &str = "421 4.4.2 Data rate too low, closing connection\r\n";
const SHUTTING_DOWN: &str = "421 4.3.2 Server shutting down\r\n";
const TOO_LARGE: &str = "552 5.3.4 Message size exceeds fixed maximum message size";

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
    /// A time limit or shutdown: say this `421` line, then close.
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
    /// The listener's memory budget, shared by all sessions.
    budget: &'a Arc<Budget>,
    /// When the whole session must be over.
    deadline: Instant,
    /// Whether LHLO (LMTP) or HELO/EHLO (SMTP) has been seen; MAIL needs it.
    greeted: bool,
    /// The envelope sender of the current transaction, `None` outside one.
    from: Option<String>,
    /// The accepted recipients of the current transaction.
    rcpts: Vec<String>,
}

/// What DATA produced.
enum Received {
    Message(MessageBody),
    Discarded(Discarded),
}

/// Serves one connection until QUIT, disconnect, a limit or shutdown.
pub(super) async fn serve<S, F, Fut>(
    stream: S,
    peer: Option<SocketAddr>,
    settings: &Settings,
    budget: &Arc<Budget>,
    stop: Shutdown,
    deliver: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Result<(), DeliverError>>,
{
    tracing::debug!(?peer, "listener: connection opened");
    let mut session = Session {
        stream: BufReader::with_capacity(READ_BUFFER, stream),
        settings,
        budget,
        deadline: later(Instant::now(), settings.limits.session_deadline),
        greeted: false,
        from: None,
        rcpts: Vec::new(),
    };
    let said = match session.run(stop, deliver).await {
        Ok(()) | Err(Close::Gone) => None,
        Err(Close::Say(reply)) => Some(reply),
    };
    // Best effort, and bounded: the client may be gone or may not read.
    let closing = async {
        if let Some(reply) = said {
            tracing::info!(?peer, reply = reply.trim_end(), "listener: session cut");
            let _ = session.stream.get_mut().write_all(reply.as_bytes()).await;
        }
        let _ = session.stream.get_mut().shutdown().await;
    };
    let _ = tokio::time::timeout(CLOSING_LIMIT, closing).await;
    tracing::debug!(?peer, "listener: connection closed");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    /// Until when the next read may wait, and what to say if it does not finish: the idle
    /// timeout or, when sooner, the session deadline.
    fn wait_limit(&self) -> (Instant, &'static str) {
        let idle = later(Instant::now(), self.settings.limits.idle_timeout);
        if self.deadline <= idle {
            (self.deadline, DEADLINE)
        } else {
            (idle, IDLE)
        }
    }

    fn within_deadline(&self) -> Result<(), Close> {
        if Instant::now() >= self.deadline {
            return Err(Close::Say(DEADLINE));
        }
        Ok(())
    }

    /// Writes a reply, waiting at most the idle timeout for a client that does not read. Not
    /// the session deadline: the answer to a message the callback has already taken must get
    /// out even when the callback took the session past its deadline, or the MTA would send
    /// the message again.
    async fn reply(&mut self, text: &str) -> Result<(), Close> {
        let until = later(Instant::now(), self.settings.limits.idle_timeout);
        let stream = self.stream.get_mut();
        let write = async {
            stream.write_all(text.as_bytes()).await?;
            stream.flush().await
        };
        match timeout_at(until, write).await {
            Ok(Ok(())) => Ok(()),
            // A client that does not read its replies cannot be told anything more.
            Ok(Err(_)) | Err(_) => Err(Close::Gone),
        }
    }

    /// One bounded line read, with the time limits; EOF and I/O errors end the session.
    async fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Line, Close> {
        let (until, why) = self.wait_limit();
        let read = read_line(&mut self.stream, buf, max);
        match timeout_at(until, read).await {
            Err(_) => Err(Close::Say(why)),
            Ok(Err(_)) | Ok(Ok(Line::Eof)) => Err(Close::Gone),
            Ok(Ok(line)) => Ok(line),
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    async fn run<F, Fut>(&mut self, stop: Shutdown, deliver: F) -> Result<(), Close>
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
            // A client that always has the next command ready never lets a read time out, so
            // the deadline is also checked here.
            self.within_deadline()?;
            // Shutdown is only observed here, between commands, so a message whose DATA or
            // delivery is under way is always finished and answered first.
            let max = self.settings.limits.max_line_length;
            let read = tokio::select! {
                biased;
                () = stop.stopped() => {
                    return Err(Close::Say(SHUTTING_DOWN));
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
                    } else if from.size > self.settings.limits.max_message_size {
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
                    } else if self.rcpts.len() >= self.settings.limits.max_recipients {
                        // The client can clear this by sending the rest in another
                        // transaction (RFC 5321 4.5.3.1.10), hence a 4xx.
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
                    let received = self.data().await?;
                    let outcome = match received {
                        Received::Message(body) => {
                            // Every line about this message, the callback's included, names it.
                            let head = body.head(HEAD_FOR_LOG).await.unwrap_or_default();
                            let span = tracing::info_span!(
                                "message",
                                message_id = postern_mail::message_id_for_log(&head).as_deref(),
                                size = body.len(),
                                spooled = body.is_spooled()
                            );
                            let delivery = Delivery {
                                mailbox_hint: self.rcpts.clone(),
                                raw: body,
                                from: self.from.clone().unwrap_or_default(),
                            };
                            let outcome = deliver(delivery).instrument(span.clone()).await;
                            let _entered = span.enter();
                            answer_for_delivery(outcome)
                        }
                        Received::Discarded(Discarded::TooLarge) => {
                            tracing::info!(
                                from = ?self.from,
                                "listener: message over the size limit refused"
                            );
                            TOO_LARGE
                        }
                        Received::Discarded(Discarded::SpoolFailed) => {
                            "451 4.3.0 Temporary local problem, try again later"
                        }
                    };
                    self.answer(outcome).await?;
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
                self.settings.limits.max_message_size
            )
        } else {
            format!("250 {host}\r\n")
        };
        self.reply(&text).await
    }

    /// Reads DATA up to the `.` line, straight from the read buffer into the body (memory or
    /// spool file); never holds a line. Ends the session if the client is too slow, idle or
    /// over the session deadline.
    async fn data(&mut self) -> Result<Received, Close> {
        let settings = self.settings;
        let limits = &settings.limits;
        let mut sink = BodySink::new(
            self.budget,
            &settings.spool_directory,
            limits.memory_threshold,
            u64::try_from(limits.max_message_size).unwrap_or(u64::MAX),
        );
        let mut decoder = DotDecoder::new();
        let mut decoded = Vec::with_capacity(READ_BUFFER);
        let window = limits.data_rate_window;
        let rate_checked = limits.min_data_rate > 0;
        // Bytes each window must bring; a whole number of bytes, rounded down.
        let per_window = (limits.min_data_rate as f64 * window.as_secs_f64()) as u64;
        let mut window_end = later(Instant::now(), window);
        let mut window_bytes: u64 = 0;
        loop {
            // Likewise for a client that always has DATA ready.
            self.within_deadline()?;
            let (mut until, why) = self.wait_limit();
            let window_first = rate_checked && window_end < until;
            if window_first {
                until = window_end;
            }
            match timeout_at(until, self.stream.fill_buf()).await {
                // Waiting until the window's end is not a failure in itself: the rate is
                // checked below.
                Err(_) if window_first => {}
                Err(_) => return Err(Close::Say(why)),
                Ok(Err(_)) => return Err(Close::Gone),
                Ok(Ok([])) => return Err(Close::Gone),
                Ok(Ok(chunk)) => {
                    decoded.clear();
                    let end = decoder.feed(chunk, &mut decoded);
                    let used = end.unwrap_or(chunk.len());
                    self.stream.consume(used);
                    window_bytes = window_bytes.saturating_add(used as u64);
                    sink.write(&decoded).await;
                    if end.is_some() {
                        break;
                    }
                }
            }
            if rate_checked {
                let now = Instant::now();
                while now >= window_end {
                    if window_bytes < per_window {
                        tracing::info!(
                            received = window_bytes,
                            needed = per_window,
                            "listener: DATA too slow"
                        );
                        return Err(Close::Say(TOO_SLOW));
                    }
                    window_bytes = 0;
                    window_end = later(window_end, window);
                }
            }
        }
        Ok(match sink.finish().await {
            Ok(body) => Received::Message(body),
            Err(why) => Received::Discarded(why),
        })
    }

    /// Sends the answer to the end of DATA and ends the transaction.
    async fn answer(&mut self, reply: &str) -> Result<(), Close> {
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

/// `from + wait`, or a moment too far away to matter when a configured limit is so large that
/// the sum does not fit (adding would panic).
fn later(from: Instant, wait: Duration) -> Instant {
    from.checked_add(wait).unwrap_or_else(|| from + NEVER)
}

/// The reply for the callback's outcome. The callback's text goes to the log only.
fn answer_for_delivery(outcome: Result<(), DeliverError>) -> &'static str {
    match outcome {
        Ok(()) => "250 2.0.0 Message accepted",
        Err(DeliverError::Temporary(why)) => {
            tracing::warn!(%why, "listener: temporary delivery failure");
            "451 4.3.0 Temporary failure, try again later"
        }
        Err(DeliverError::Permanent(why)) => {
            tracing::warn!(%why, "listener: message refused");
            "550 5.6.0 Message refused"
        }
    }
}
