//! `cargo bench -p postern-auth --bench verify`: the CPU time of one verification with a warm
//! DNS cache (the target is under 1 ms), against a private Knot server serving real
//! keys and records (postern-testkit's `dns`).
//!
//! Each case is verified once to fill the caches, then [`ROUNDS`] times; the figure is this
//! thread's CPU time (from `/proc/thread-self/schedstat`, so other processes on a shared
//! machine do not count) divided by the rounds, with the wall time beside it. Every round's
//! verdict is checked to be the expected one, so a cache that stopped working (and a verdict
//! that changed) cannot make the figure look good. Nothing is asserted about time: timings
//! are never asserted on shared machines.

#[path = "../tests/auth/common.rs"]
mod common;

use common::*;
use postern_auth::{AuthResult, Authenticator, Connection, Verdict};
use postern_testkit::dns::{DnsServer, txt_record};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 2000;

/// This thread's CPU time so far.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

struct Case {
    name: &'static str,
    raw: String,
    connection: Connection,
    expected: AuthResult,
}

fn main() {
    let (ed, ed_record) = ed25519_key();
    let (rsa, rsa_record) = rsa_key();
    let mut records = domain_records("acme.test", "ed", &ed_record, "v=DMARC1; p=reject");
    records.push(txt_record("rsa._domainkey.acme", &rsa_record));
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let body = "A reply of a few lines, as most mail to postern is.\r\n".repeat(40);
    let plain = message("alice@acme.test", "bench", &body);
    let from_mta = Connection {
        client_ip: Some(GOOD_IP.parse().expect("IP")),
        helo: Some("mail.acme.test".to_string()),
        mail_from: Some("alice@acme.test".to_string()),
    };
    let cases = [
        Case {
            name: "Ed25519 DKIM + DMARC",
            raw: ed.sign(&plain, "acme.test", "ed"),
            connection: Connection::default(),
            expected: AuthResult::Pass,
        },
        Case {
            name: "RSA-2048 DKIM + DMARC",
            raw: rsa.sign(&plain, "acme.test", "rsa"),
            connection: Connection::default(),
            expected: AuthResult::Pass,
        },
        Case {
            name: "RSA-2048 DKIM + SPF + DMARC",
            raw: rsa.sign(&plain, "acme.test", "rsa"),
            connection: from_mta,
            expected: AuthResult::Pass,
        },
        Case {
            name: "unsigned, DMARC fails",
            raw: plain.clone(),
            connection: Connection::default(),
            expected: AuthResult::Fail,
        },
    ];
    let auth = authenticator(&dns, &[]);
    println!("verification with a warm DNS cache, {ROUNDS} rounds per case");
    for case in &cases {
        run(&runtime, &auth, case);
    }
}

fn run(runtime: &tokio::runtime::Runtime, auth: &Authenticator, case: &Case) {
    let verify = |raw: &str| -> Verdict {
        runtime.block_on(auth.verify(black_box(raw.as_bytes()), &case.connection))
    };
    let warm = verify(&case.raw);
    assert_eq!(warm.dmarc.result, case.expected, "{}: {warm:?}", case.name);
    let (cpu_start, wall_start) = (thread_cpu(), Instant::now());
    for _ in 0..ROUNDS {
        let verdict = verify(&case.raw);
        assert_eq!(verdict.dmarc.result, case.expected, "{}", case.name);
    }
    let wall = wall_start.elapsed() / ROUNDS;
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(start), Some(end)) => format!(
            "{:>7.1} µs CPU",
            (end - start).as_secs_f64() * 1e6 / f64::from(ROUNDS)
        ),
        _ => "    (no schedstat)".to_string(),
    };
    println!(
        "  {:<30} {cpu}  {:>7.1} µs wall  per verification",
        case.name,
        wall.as_secs_f64() * 1e6
    );
}
