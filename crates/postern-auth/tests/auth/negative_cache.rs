//! Answers that a name does not exist are cached, even from a resolver that sends no SOA with
//! them (RFC 2308 would then allow no caching): otherwise every message from a domain without
//! a DMARC record asks again, and a burst of mail becomes a burst of queries.
//!
//! The resolver here is a few lines of UDP that answer every question with NXDOMAIN and no
//! authority section, as some recursive resolvers do (this project's CI machines' resolver
//! among them); no packaged DNS server can be made to leave the SOA out of its answers.

use crate::common::message;
use postern_auth::{AuthConfig, AuthResult, Authenticator, Connection, DnsConfig};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Answers each query on `socket` with NXDOMAIN, echoing its question and nothing else, and
/// counts the queries; returns when the socket has been quiet for two seconds.
fn answer_nxdomain_without_soa(socket: UdpSocket, queries: Arc<AtomicUsize>) {
    let mut buffer = [0u8; 1500];
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
        let Some(question_end) = question_end(&buffer[..length]) else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let mut answer = buffer[..question_end].to_vec();
        // QR, opcode 0, RD copied, RA, RCODE 3 (NXDOMAIN); one question, no other records.
        answer[2] = 0x80 | (buffer[2] & 0x01);
        answer[3] = 0x83;
        answer[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        let _ = socket.send_to(&answer, peer);
    }
}

/// Where the first question of a DNS query ends (its name, type and class), if it is whole.
fn question_end(query: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let label = usize::from(*query.get(at)?);
        if label == 0 {
            break;
        }
        // Queries never compress their question's name.
        if label & 0xc0 != 0 {
            return None;
        }
        at += 1 + label;
    }
    let end = at + 1 + 4;
    (end <= query.len()).then_some(end)
}

#[tokio::test]
async fn an_nxdomain_without_soa_is_asked_once_for_many_messages() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding");
    let address = socket.local_addr().expect("address");
    let queries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&queries);
    let resolver = std::thread::spawn(move || answer_nxdomain_without_soa(socket, counted));
    let auth = Authenticator::new(&AuthConfig {
        dns: DnsConfig {
            nameservers: vec![address],
            timeout: Duration::from_millis(500),
            attempts: 1,
        },
        ..AuthConfig::default()
    })
    .expect("authenticator");

    let first = auth
        .verify(
            message("alice@nodmarc.test", "one", "Hello.").as_bytes(),
            &Connection::default(),
        )
        .await;
    assert_eq!(first.dmarc.result, AuthResult::None, "{first:?}");
    let asked = queries.load(Ordering::SeqCst);
    assert!(asked > 0, "the first message asked nothing");

    for n in 0..20 {
        let verdict = auth
            .verify(
                message("alice@nodmarc.test", &format!("m{n}"), "Hello.").as_bytes(),
                &Connection::default(),
            )
            .await;
        assert_eq!(verdict.dmarc.result, AuthResult::None, "{verdict:?}");
    }
    assert_eq!(
        queries.load(Ordering::SeqCst),
        asked,
        "later messages from the same domain asked the resolver again"
    );

    // Another domain is a new question.
    let other = auth
        .verify(
            message("bob@other.test", "two", "Hello.").as_bytes(),
            &Connection::default(),
        )
        .await;
    assert_eq!(other.dmarc.result, AuthResult::None, "{other:?}");
    assert!(queries.load(Ordering::SeqCst) > asked);
    drop(auth);
    resolver.join().expect("the resolver thread");
}
