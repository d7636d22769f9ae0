//! The listener over real TCP on 127.0.0.1:0, driven with raw protocol bytes. Every wait has a
//! bound so a broken server fails the test instead of hanging it; nothing asserts on timing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_inbox::listener::{DeliverError, Delivery, Listener, Protocol, Settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const BOUND: Duration = Duration::from_secs(10);

/// What the test callback answers.
#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    Temporary,
    Permanent,
}

struct Server {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    stop: oneshot::Sender<()>,
    run: JoinHandle<()>,
}

impl Server {
    async fn start(settings: Settings, outcome: Outcome) -> Self {
        let listener = Listener::bind("127.0.0.1:0".parse().expect("addr"), settings)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let seen = deliveries.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(listener.run(
            async move {
                let _ = stopped.await;
            },
            move |delivery: Delivery| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("lock").push(delivery);
                    match outcome {
                        Outcome::Ok => Ok(()),
                        Outcome::Temporary => Err(DeliverError::Temporary("db down".into())),
                        Outcome::Permanent => Err(DeliverError::Permanent("no such list".into())),
                    }
                }
            },
        ));
        Self {
            addr,
            deliveries,
            stop,
            run,
        }
    }

    /// Shuts down, waits for `run` to return, and gives back what was delivered.
    async fn finish(self) -> Vec<Delivery> {
        let _ = self.stop.send(());
        tokio::time::timeout(BOUND, self.run)
            .await
            .expect("run returns after shutdown")
            .expect("run task");
        let deliveries = self.deliveries.lock().expect("lock");
        deliveries.clone()
    }
}

struct Client {
    stream: BufReader<TcpStream>,
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
        vec![Delivery {
            mailbox_hint: vec!["a@x.test".into(), "b@x.test".into()],
            raw: UNSTUFFED.to_vec(),
            from: "alice@example.org".into(),
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
async fn temporary_failure_is_451_and_permanent_is_550() {
    for (outcome, code) in [
        (Outcome::Temporary, "451 4.3.0"),
        (Outcome::Permanent, "550 5."),
    ] {
        let server = Server::start(lmtp(), outcome).await;
        let mut client = Client::connect(server.addr).await;
        client.envelope("LHLO", &["a@x.test", "b@x.test"]).await;
        client.send(BODY).await;
        client.expect(code).await;
        client.expect(code).await;
        server.finish().await;
    }
}

#[tokio::test]
async fn oversized_message_is_552_and_not_delivered() {
    let settings = Settings {
        max_message_size: 64,
        ..lmtp()
    };
    let server = Server::start(settings, Outcome::Ok).await;
    let mut client = Client::connect(server.addr).await;
    client.envelope("LHLO", &["a@x.test"]).await;
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..20 {
        body.extend_from_slice(b"0123456789 0123456789\r\n");
    }
    body.extend_from_slice(&vec![b'x'; 10_000]);
    body.extend_from_slice(b"\r\n.\r\n");
    client.send(&body).await;
    client.expect("552 5.3.4").await;
    // The session is still in step after the discarded message.
    client.send(b"NOOP\r\n").await;
    client.expect("250").await;
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
    stop.send(()).expect("listener still running");
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
async fn clients_over_the_cap_wait_instead_of_failing() {
    let settings = Settings {
        max_connections: 1,
        ..lmtp()
    };
    let server = Server::start(settings, Outcome::Ok).await;
    let mut first = Client::connect(server.addr).await;
    first.expect("220").await;
    // Connects (the kernel backlog holds it) but is not served while `first` holds the slot.
    let mut second = Client::connect(server.addr).await;
    first
        .send(b"LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        .await;
    for code in ["250", "250", "250", "354"] {
        first.expect(code).await;
    }
    first.send(BODY).await;
    first.expect("250").await;
    let mut probe = [0u8; 1];
    assert!(
        second.stream.get_ref().try_read(&mut probe).is_err(),
        "no greeting while the only slot is taken"
    );
    first.send(b"QUIT\r\n").await;
    first.expect("221").await;
    drop(first);

    second.envelope("LHLO", &["c@x.test"]).await;
    second.send(BODY).await;
    second.expect("250").await;
    assert_eq!(server.finish().await.len(), 2);
}

#[tokio::test]
async fn limits_on_lines_recipients_and_order() {
    let settings = Settings {
        max_recipients: 1,
        ..lmtp()
    };
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
    let settings = Settings {
        idle_timeout: Duration::from_millis(200),
        ..lmtp()
    };
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
