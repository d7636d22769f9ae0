//! The listener over real TCP on 127.0.0.1:0, driven with raw protocol bytes. Every wait has a
//! bound so a broken server fails the test instead of hanging it; nothing asserts on timing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_inbox::listener::{
    BufferStats, DeliverError, Delivery, Listener, ListenerLimits, Protocol, Settings,
};
use postern_vocab::{Shutdown, Stopper};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const BOUND: Duration = Duration::from_secs(10);

/// What the test callback answers.
#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    /// Takes the message after 600 ms.
    SlowOk,
    Temporary,
    Permanent,
}

/// A delivered message as the test callback saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    mailbox_hint: Vec<String>,
    raw: Vec<u8>,
    from: String,
    spooled: bool,
}

struct Server {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Got>>>,
    stats: BufferStats,
    stop: Stopper,
    run: JoinHandle<()>,
    /// Keeps the spool directory alive while the server runs.
    _spool: tempfile::TempDir,
}

impl Server {
    async fn start(mut settings: Settings, outcome: Outcome) -> Self {
        let spool = tempfile::tempdir().expect("spool directory");
        settings.spool_directory = spool.path().to_path_buf();
        let listener = Listener::bind("127.0.0.1:0".parse().expect("addr"), settings)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let stats = listener.buffer_stats();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let seen = deliveries.clone();
        let (stop, stopped) = Shutdown::new();
        let run = tokio::spawn(listener.run(stopped, move |delivery: Delivery| {
            let seen = seen.clone();
            async move {
                let raw = delivery.raw.bytes().await.expect("body readable").to_vec();
                seen.lock().expect("lock").push(Got {
                    mailbox_hint: delivery.mailbox_hint,
                    raw,
                    from: delivery.from,
                    spooled: delivery.raw.is_spooled(),
                });
                match outcome {
                    Outcome::Ok => Ok(()),
                    Outcome::SlowOk => {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        Ok(())
                    }
                    Outcome::Temporary => Err(DeliverError::Temporary("db down".into())),
                    Outcome::Permanent => Err(DeliverError::Permanent("no such list".into())),
                }
            }
        }));
        Self {
            addr,
            deliveries,
            stats,
            stop,
            run,
            _spool: spool,
        }
    }

    /// Shuts down, waits for `run` to return, and gives back what was delivered.
    async fn finish(self) -> Vec<Got> {
        self.stop.stop();
        tokio::time::timeout(BOUND, self.run)
            .await
            .expect("run returns after shutdown")
            .expect("run task");
        let deliveries = self.deliveries.lock().expect("lock");
        deliveries.clone()
    }
}

struct Client<S = TcpStream> {
    stream: BufReader<S>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(BOUND, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self {
            stream: BufReader::new(stream),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("send");
    }

    /// One whole reply (all `NNN-` lines and the final `NNN ` line); empty at EOF.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(BOUND, self.stream.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            all.push_str(&line);
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn expect(&mut self, code: &str) -> String {
        let reply = self.reply().await;
        assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
        reply
    }

    /// Greeting, hello and envelope, up to the 354 after DATA.
    async fn envelope(&mut self, hello: &str, rcpts: &[&str]) {
        self.expect("220").await;
        self.send(format!("{hello} client.test\r\n").as_bytes())
            .await;
        self.expect("250").await;
        self.send(b"MAIL FROM:<alice@example.org>\r\n").await;
        self.expect("250").await;
        for rcpt in rcpts {
            self.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await;
            self.expect("250").await;
        }
        self.send(b"DATA\r\n").await;
        self.expect("354").await;
    }
}

fn lmtp() -> Settings {
    Settings::default()
}

fn lmtp_with(limits: ListenerLimits) -> Settings {
    Settings {
        limits,
        ..Settings::default()
    }
}

fn smtp() -> Settings {
    Settings {
        protocol: Protocol::Smtp,
        ..Settings::default()
    }
}

const BODY: &[u8] = b"Subject: hi\r\n\r\nline one\r\n..leading dot\r\n.\r\n";
const UNSTUFFED: &[u8] = b"Subject: hi\r\n\r\nline one\r\n.leading dot\r\n";

#[tokio::test]
async fn lmtp_two_recipients_get_two_replies_and_one_delivery() {
    let server = Server::start(lmtp(), Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test", "b@x.test"]).await;
    client.send(BODY).await;
    client.expect("250").await;
    client.expect("250").await;
    client.send(b"QUIT\r\n").await;
    client.expect("221").await;
    let deliveries = server.finish().await;
    assert_eq!(
        deliveries,
        vec![Got {
            mailbox_hint: vec!["a@x.test".into(), "b@x.test".into()],
            raw: UNSTUFFED.to_vec(),
            from: "alice@example.org".into(),
            spooled: false,
        }]
    );
}

#[tokio::test]
async fn smtp_happy_path_and_second_message_on_same_connection() {
    let server = Server::start(smtp(), Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("EHLO", &["a@x.test", "b@x.test"]).await;
    client.send(BODY).await;
    client.expect("250").await;
    // SMTP: one reply only, so the next command's reply comes next.
    client.send(b"NOOP\r\n").await;
    client.expect("250").await;
    client
        .send(b"MAIL FROM:<>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("354").await;
    client.send(b"second\r\n.\r\nQUIT\r\n").await;
    client.expect("250").await;
    client.expect("221").await;
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].raw, UNSTUFFED);
    assert_eq!(deliveries[1].from, "");
    assert_eq!(deliveries[1].raw, b"second\r\n");
}

#[tokio::test]
async fn temporary_failure_is_451_and_permanent_is_550_without_the_callback_text() {
    for (outcome, code, internal) in [
        (Outcome::Temporary, "451 4.3.0", "db down"),
        (Outcome::Permanent, "550 5.", "no such list"),
    ] {
        let server = Server::start(lmtp(), outcome).await;
        let mut client = Client::connect(server.addr).await;
        client.envelope("LHLO", &["a@x.test", "b@x.test"]).await;
        client.send(BODY).await;
        for _ in 0..2 {
            let reply = client.expect(code).await;
            assert!(!reply.contains(internal), "{reply:?}");
        }
        server.finish().await;
    }
}

#[tokio::test]
async fn oversized_message_is_552_discarded_and_the_next_message_is_delivered() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            max_message_size: 64 * 1024,
            memory_threshold: 16 * 1024,
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..20 {
        body.extend_from_slice(b"0123456789 0123456789\r\n");
    }
    // Over the limit by far, partly in one endless line: nothing of it may be kept.
    body.extend_from_slice(&vec![b'x'; 2_000_000]);
    body.extend_from_slice(b"\r\n");
    for _ in 0..20_000 {
        body.extend_from_slice(b"..more lines after the limit\r\n");
    }
    body.extend_from_slice(b".\r\n");
    client.send(&body).await;
    client.expect("552 5.3.4").await;
    // Nothing of the refused message is held any more.
    assert_eq!(server.stats.in_memory(), 0);
    // The session is still in step after the discarded message and takes the next one.
    client.send(b"NOOP\r\n").await;
    client.expect("250").await;
    client
        .send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        .await;
    for code in ["250", "250", "354"] {
        client.expect(code).await;
    }
    client.send(BODY).await;
    client.expect("250 2.0.0").await;
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].raw, UNSTUFFED);
}

#[tokio::test]
async fn declared_size_over_the_limit_is_552_at_mail_from() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            max_message_size: 1000,
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    client.send(b"LHLO c\r\n").await;
    client.expect("250").await;
    client.send(b"MAIL FROM:<a@x.test> SIZE=1001\r\n").await;
    client.expect("552 5.3.4").await;
    assert!(server.finish().await.is_empty());
}

#[tokio::test]
async fn disconnect_mid_data_delivers_nothing_and_server_keeps_running() {
    let server = Server::start(lmtp(), Outcome::Ok).await;
    let mut first = Client::connect(server.addr).await;
    first.envelope("LHLO", &["a@x.test"]).await;
    first.send(b"Subject: cut\r\n\r\nhalf a mess").await;
    drop(first);

    let mut second = Client::connect(server.addr).await;
    second.envelope("LHLO", &["b@x.test"]).await;
    second.send(BODY).await;
    second.expect("250").await;
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].mailbox_hint, vec!["b@x.test".to_owned()]);
}

#[tokio::test]
async fn bare_lf_line_endings_are_accepted() {
    let server = Server::start(lmtp(), Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    client
        .send(b"LHLO client.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\nDATA\n")
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("354").await;
    client.send(b"Subject: lf\n\n..dot\nbody\n.\n").await;
    client.expect("250").await;
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].raw, b"Subject: lf\n\n.dot\nbody\n");
}

#[tokio::test]
async fn shutdown_with_an_idle_client_returns() {
    let server = Server::start(lmtp(), Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    client.send(b"LHLO client.test\r\n").await;
    client.expect("250").await;
    assert!(server.finish().await.is_empty());
    let reply = client.reply().await;
    assert!(reply.is_empty() || reply.starts_with("421"), "{reply:?}");
}

#[tokio::test]
async fn shutdown_during_data_finishes_the_message_first() {
    let server = Server::start(lmtp(), Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    let Server {
        deliveries,
        stop,
        run,
        ..
    } = server;
    stop.stop();
    client.send(BODY).await;
    client.expect("250").await;
    let reply = client.reply().await;
    assert!(reply.is_empty() || reply.starts_with("421"), "{reply:?}");
    tokio::time::timeout(BOUND, run)
        .await
        .expect("run returns after shutdown")
        .expect("run task");
    assert_eq!(deliveries.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn limits_on_lines_recipients_and_order() {
    let settings = lmtp_with(ListenerLimits {
        max_recipients: 1,
        ..ListenerLimits::default()
    });
    let server = Server::start(settings, Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    client.send(b"MAIL FROM:<a@x.test>\r\n").await;
    client.expect("503").await;
    client.send(b"EHLO c\r\n").await;
    client.expect("500").await;
    client.send(&[b'A'; 5000]).await;
    client.send(b"\r\nLHLO c\r\nMAIL FROM:<a@x.test>\r\n").await;
    client.expect("500 5.5.2").await;
    client.expect("250").await;
    client.expect("250").await;
    client
        .send(b"RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n")
        .await;
    client.expect("250").await;
    client.expect("452").await;
    client.send(b"BOGUS\r\nRSET\r\nDATA\r\n").await;
    client.expect("500").await;
    client.expect("250").await;
    client.expect("503").await;
    assert!(server.finish().await.is_empty());
}

#[tokio::test]
async fn idle_client_is_closed_with_421() {
    let settings = lmtp_with(ListenerLimits {
        idle_timeout: Duration::from_millis(200),
        ..ListenerLimits::default()
    });
    let server = Server::start(settings, Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    client.expect("421 4.4.2").await;
    server.finish().await;
}

#[tokio::test]
async fn port_in_use_is_a_bind_error() {
    let first = Listener::bind("127.0.0.1:0".parse().expect("addr"), lmtp())
        .await
        .expect("bind");
    let addr = first.local_addr().expect("addr");
    assert!(Listener::bind(addr, lmtp()).await.is_err());
}

#[tokio::test]
async fn a_client_too_slow_during_data_is_cut_with_421_and_nothing_is_delivered() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            min_data_rate: 10_000,
            data_rate_window: Duration::from_millis(300),
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    client.send(b"Subject: slow\r\n\r\n").await;
    // 10 bytes every 50 ms is 200 bytes/s, far below 10 000: the first window ends the session.
    // A write may fail once the server has closed; the loop is bounded either way.
    for _ in 0..200 {
        if client
            .stream
            .get_mut()
            .write_all(b"0123456789")
            .await
            .is_err()
        {
            break;
        }
        // Waits 50 ms, or less if the server said something (or closed).
        let pause = Duration::from_millis(50);
        if let Ok(answered) = tokio::time::timeout(pause, client.stream.fill_buf()).await {
            let _ = answered;
            break;
        }
    }
    let reply = client.expect("421 4.4.2").await;
    assert!(reply.contains("rate"), "{reply:?}");
    assert!(server.finish().await.is_empty());
}

#[tokio::test]
async fn the_session_deadline_ends_a_busy_session_with_421() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            session_deadline: Duration::from_millis(500),
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.expect("220").await;
    // Never idle, so only the deadline can end it.
    let mut last = String::new();
    for _ in 0..200 {
        client.send(b"NOOP\r\n").await;
        last = client.reply().await;
        if !last.starts_with("250") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last.starts_with("421 4.4.2"), "{last:?}");
    assert!(last.contains("time limit"), "{last:?}");
    server.finish().await;
}

#[tokio::test]
async fn the_session_deadline_ends_an_endless_fast_data_stream() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            session_deadline: Duration::from_millis(500),
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    // Always more DATA ready, as fast as the server reads: no read ever waits.
    let chunk = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(1024);
    let (read, mut write) = client.stream.get_mut().split();
    let mut read = BufReader::new(read);
    let writer = async {
        // Bounded: 20 000 x 64 KiB, far more than the server reads in the deadline.
        for _ in 0..20_000 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Wait for the reader instead of ending the race.
        std::future::pending::<()>().await;
    };
    let mut reply = String::new();
    tokio::select! {
        () = writer => {}
        read = tokio::time::timeout(BOUND, read.read_line(&mut reply)) => {
            read.expect("reply in time").expect("read");
        }
    }
    assert!(reply.starts_with("421 4.4.2"), "{reply:?}");
    assert!(reply.contains("time limit"), "{reply:?}");
    assert!(server.finish().await.is_empty());
}

#[tokio::test]
async fn a_message_taken_past_the_session_deadline_is_still_answered_250() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            session_deadline: Duration::from_millis(300),
            ..ListenerLimits::default()
        }),
        Outcome::SlowOk,
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    client.send(BODY).await;
    // The callback took it: the MTA must hear so, or it would send the message again.
    client.expect("250 2.0.0").await;
    client.send(b"NOOP\r\n").await;
    let after = client.reply().await;
    assert!(
        after.is_empty() || after.starts_with("421 4.4.2"),
        "{after:?}"
    );
    assert_eq!(server.finish().await.len(), 1);
}

#[tokio::test]
async fn connections_over_the_session_cap_get_421_at_once() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            max_sessions: 1,
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let mut first = Client::connect(server.addr).await;
    first.expect("220").await;
    // Refused at once, not queued behind `first`.
    let mut second = Client::connect(server.addr).await;
    second.expect("421 4.7.0").await;
    assert_eq!(second.reply().await, "", "closed after the 421");
    // The session holding the slot is unaffected.
    first
        .send(b"LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        .await;
    for code in ["250", "250", "250", "354"] {
        first.expect(code).await;
    }
    first.send(BODY).await;
    first.expect("250").await;
    first.send(b"QUIT\r\n").await;
    first.expect("221").await;
    drop(first);
    // The slot is given back when the session task ends, which the client cannot observe
    // directly: try a bounded number of times.
    let mut served = false;
    for _ in 0..100 {
        let mut third = Client::connect(server.addr).await;
        if third.reply().await.starts_with("220") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a new session is served once the slot is free");
    assert_eq!(server.finish().await.len(), 1);
}

/// A message of about `size` bytes with dot-stuffed lines, long lines and binary-ish bytes;
/// returns (what the client sends after DATA, what must be delivered).
fn big_message(size: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let mut wire =
        format!("Subject: big {seed}\r\nMessage-ID: <big-{seed}@x.test>\r\n\r\n").into_bytes();
    let mut expected = wire.clone();
    let mut line = 0u32;
    while expected.len() < size {
        line += 1;
        let text = match line % 4 {
            0 => format!(".leading dot {line}\r\n"),
            1 => format!("{}\r\n", "y".repeat(2000 + (line as usize % 300))),
            2 => format!("line {line} \u{e9}\u{20ac} {seed}\n"),
            _ => ".\t.\r\n".to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.first() == Some(&b'.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(bytes);
        expected.extend_from_slice(bytes);
    }
    wire.extend_from_slice(b".\r\n");
    (wire, expected)
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[tokio::test]
async fn a_large_message_is_spooled_and_delivered_intact() {
    let server = Server::start(
        lmtp_with(ListenerLimits {
            memory_threshold: 64 * 1024,
            memory_budget: 1024 * 1024,
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    let (wire, expected) = big_message(3 * 1024 * 1024, 1);
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    client.send(&wire).await;
    client.expect("250 2.0.0").await;
    assert!(server.stats.peak() <= 1024 * 1024);
    assert_eq!(server.stats.spooled_messages(), 1);
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].spooled);
    assert_eq!(deliveries[0].raw.len(), expected.len());
    assert_eq!(digest(&deliveries[0].raw), digest(&expected));
}

#[tokio::test]
async fn the_memory_budget_holds_across_concurrent_sessions() {
    const BUDGET: usize = 256 * 1024;
    const SESSIONS: usize = 8;
    let server = Server::start(
        lmtp_with(ListenerLimits {
            memory_threshold: 128 * 1024,
            memory_budget: BUDGET,
            ..ListenerLimits::default()
        }),
        Outcome::Ok,
    )
    .await;
    // Each message fits under the per-message threshold; together they are over 3x the budget.
    let messages: Vec<(Vec<u8>, Vec<u8>)> = (0..SESSIONS)
        .map(|i| big_message(100 * 1024, i as u8))
        .collect();
    let mut clients = Vec::new();
    for (wire, _) in &messages {
        let mut client = Client::connect(server.addr).await;
        client.envelope("LHLO", &["a@x.test"]).await;
        // Every session holds part of its message before any finishes.
        client.send(&wire[..wire.len() / 2]).await;
        clients.push(client);
    }
    for (client, (wire, _)) in clients.iter_mut().zip(&messages) {
        client.send(&wire[wire.len() / 2..]).await;
    }
    for client in &mut clients {
        client.expect("250 2.0.0").await;
    }
    let peak = server.stats.peak();
    assert!(peak <= BUDGET, "peak {peak} over the budget {BUDGET}");
    assert!(
        server.stats.spooled_messages() >= 1,
        "some had to be spooled"
    );
    let deliveries = server.finish().await;
    assert_eq!(deliveries.len(), SESSIONS);
    let mut got: Vec<Vec<u8>> = deliveries.iter().map(|d| digest(&d.raw)).collect();
    let mut want: Vec<Vec<u8>> = messages.iter().map(|(_, e)| digest(e)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_session_runs_over_any_stream() {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let session = tokio::spawn(async move {
        postern_inbox::listener::serve_stream(
            server_end,
            &Settings::default(),
            move |d: Delivery| {
                let sink = sink.clone();
                async move {
                    let raw = d.raw.bytes().await.expect("bytes").to_vec();
                    sink.lock().expect("lock").push(raw);
                    Ok(())
                }
            },
        )
        .await
    });
    let mut client = Client {
        stream: BufReader::new(client_end),
    };
    client.envelope("LHLO", &["a@x.test"]).await;
    client.send(BODY).await;
    client.expect("250").await;
    client.send(b"QUIT\r\n").await;
    client.expect("221").await;
    tokio::time::timeout(BOUND, session)
        .await
        .expect("session ends")
        .expect("task")
        .expect("valid settings");
    assert_eq!(*seen.lock().expect("lock"), vec![UNSTUFFED.to_vec()]);
}

#[tokio::test]
async fn time_limits_too_large_for_the_clock_are_accepted() {
    let settings = lmtp_with(ListenerLimits {
        idle_timeout: Duration::MAX,
        session_deadline: Duration::MAX,
        data_rate_window: Duration::MAX,
        ..ListenerLimits::default()
    });
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(async move {
        postern_inbox::listener::serve_stream(server_end, &settings, |_: Delivery| async { Ok(()) })
            .await
    });
    let mut client = Client {
        stream: BufReader::new(client_end),
    };
    client.envelope("LHLO", &["a@x.test"]).await;
    client.send(BODY).await;
    client.expect("250").await;
    client.send(b"QUIT\r\n").await;
    client.expect("221").await;
    tokio::time::timeout(BOUND, session)
        .await
        .expect("session ends")
        .expect("no panic")
        .expect("valid settings");
}
