//! `--verify N`: what sender authentication costs per message once the DNS answers are cached.
//!
//! A private Knot DNS server publishes an Ed25519 and an RSA-2048 DKIM key and a DMARC
//! `p=reject` record for `bench.test`; one message is signed with each key, and one is
//! unsigned from a domain with no records at all (the answer "no such name" is cached too).
//! Each is verified once to warm the caches, then `N` times; the figure is the CPU time of the
//! verifying thread per message (a current-thread runtime, so the resolver's tasks run on it
//! too), and the wall time beside it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_auth::{AuthConfig, AuthResult, Authenticator, Connection, DnsConfig};
use postern_testkit::dkim::{domain_records, ed25519_key, rsa_key};
use postern_testkit::dns::DnsServer;

/// Runs the benchmark and prints a table.
pub fn run(iterations: usize) -> anyhow::Result<()> {
    let (ed25519, ed25519_record) = ed25519_key();
    let (rsa, rsa_record) = rsa_key();
    let mut records = domain_records("bench", "ed", &ed25519_record, "v=DMARC1; p=reject");
    // domain_records gives the DMARC record too; the RSA key only needs its selector.
    records.extend(
        domain_records("bench", "rsa", &rsa_record, "")
            .into_iter()
            .filter(|r| r.starts_with("rsa._domainkey")),
    );
    let dns = DnsServer::start("test.", &records).map_err(anyhow::Error::msg)?;
    let authenticator = Authenticator::new(&AuthConfig {
        dns: DnsConfig {
            nameservers: vec![dns.addr()],
            ..DnsConfig::default()
        },
        ..AuthConfig::default()
    })
    .context("building the authenticator")?;

    let plain = message("alice@bench.test");
    let cases = [
        (
            "DKIM Ed25519, DMARC pass",
            ed25519.sign(&plain, "bench.test", "ed"),
            AuthResult::Pass,
        ),
        (
            "DKIM RSA-2048, DMARC pass",
            rsa.sign(&plain, "bench.test", "rsa"),
            AuthResult::Pass,
        ),
        (
            "unsigned, no DMARC record",
            message("bob@unpublished.test"),
            AuthResult::None,
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!();
    println!("### Sender authentication per message, DNS answers cached ({iterations} runs each)");
    println!();
    println!("| message | DMARC | CPU µs/message | wall µs/message |");
    println!("|---|---|---|---|");
    for (name, raw, expected) in &cases {
        let connection = Connection::default();
        let warm = runtime.block_on(authenticator.verify(raw.as_bytes(), &connection));
        anyhow::ensure!(
            warm.dmarc.result == *expected,
            "{name}: DMARC {:?}, expected {expected:?}: {:?}",
            warm.dmarc.result,
            warm.reasons
        );
        let cpu_before = thread_cpu()?;
        let started = Instant::now();
        for _ in 0..iterations {
            let verdict = runtime.block_on(authenticator.verify(raw.as_bytes(), &connection));
            anyhow::ensure!(verdict.dmarc.result == *expected, "{name}: verdict changed");
        }
        let wall = started.elapsed();
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / iterations.max(1) as f64;
        println!(
            "| {name} | {} | {:.0} | {:.0} |",
            format!("{expected:?}").to_lowercase(),
            per(cpu),
            per(wall)
        );
    }
    drop(dns);
    Ok(())
}

/// A message as a mail client would send it, about 1 KB.
fn message(from: &str) -> String {
    format!(
        "From: {from}\r\nTo: incoming+abc@example.test\r\nSubject: The build is red again\r\n\
         Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <verify-bench@client.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        "The nightly job fails at the packaging step since yesterday's merge.\r\n".repeat(12)
    )
}

/// CPU time this thread has used (`/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    let nanos: u64 = text
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()
        .context("schedstat")?;
    Ok(Duration::from_nanos(nanos))
}
