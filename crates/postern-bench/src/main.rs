//! The intake benchmark: how fast and how lean `postern serve` takes mail
//! in from a private Dovecot (IMAP IDLE) and through its own LMTP listener, and — where Debian's
//! `ruby-mail-room` is installed — mail_room on the same messages into a local HTTP sink.
//!
//! Run it with `bash bench/intake.sh` (release build). It prints tables of latency
//! p50/p95/max, drain rates, peak and idle RSS, lost and duplicated counts, one row per client
//! and case. Timing here is measurement, never a test assertion.
//!
//! `--companion` instead compares GitLab companion mode (`serve --gitlab-config`, webhook to a
//! local sink) with mail_room (postback to the same sink) on the same folders and sizes.

mod companion;
mod instance;
mod load;
mod mailroom;
mod measure;
mod sink;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::mailserver::MailServer;

use crate::instance::{Instance, Prepared, SenderPolicy};
use crate::measure::{Drain, Latency};

struct Args {
    postern: PathBuf,
    small: usize,
    large: usize,
    latency_messages: usize,
    mail_room: bool,
    companion: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        postern: PathBuf::from("target/release/postern"),
        small: 2000,
        large: 200,
        latency_messages: 50,
        mail_room: true,
        companion: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().context(format!("{arg} needs a value"));
        match arg.as_str() {
            "--postern" => args.postern = PathBuf::from(value()?),
            "--small" => args.small = value()?.parse()?,
            "--large" => args.large = value()?.parse()?,
            "--latency-messages" => args.latency_messages = value()?.parse()?,
            "--no-mail-room" => args.mail_room = false,
            "--companion" => args.companion = true,
            "--help" | "-h" => {
                println!(
                    "postern-bench [--postern PATH] [--small N] [--large N] [--latency-messages N] [--no-mail-room] [--companion]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    anyhow::ensure!(
        args.postern.is_file(),
        "{} is not built (cargo build --release -p postern)",
        args.postern.display()
    );
    // Instances run in their own directories.
    args.postern = args.postern.canonicalize()?;
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let server = MailServer::start_dovecot_only()
        .context("POSTERN_SKIP_MAILSERVER is set; the benchmark needs Dovecot")?;
    println!(
        "postern intake benchmark — {} — Dovecot on 127.0.0.1:{}",
        args.postern.display(),
        server.imap_port()
    );

    if args.companion {
        return run_companion(&args, server).await;
    }
    let mut latencies: Vec<(String, String, Latency)> = Vec::new();
    let mut drains: Vec<Drain> = Vec::new();
    // Per drain: what a bare client fetches in how long, the ceiling the drain is measured against.
    let mut floors = Vec::new();

    // Latency: one postern watching a folder, messages appended one at a time; and LMTP.
    let floor = load::imap_idle_floor(&server, "bench-floor", args.latency_messages).await?;
    latencies.push(("raw IMAP client".into(), "imap idle".into(), floor));
    // The folder exists before postern starts, so its first SELECT succeeds and no sample waits
    // out a reconnect back-off.
    load::preload(
        &server,
        "bench-latency",
        "nobody@example.test",
        0,
        load::SMALL_BODY,
    )
    .await?;
    let instance =
        Instance::start(&args.postern, &server, "bench-latency", SenderPolicy::Dmarc).await?;
    let idle_rss = instance.wait_idle_rss(Duration::from_secs(3)).await?;
    let imap =
        load::imap_latency(&server, &instance, "bench-latency", args.latency_messages).await?;
    latencies.push(("postern".into(), "imap idle".into(), imap));
    let lmtp = load::lmtp_latency(&instance, args.latency_messages).await?;
    latencies.push(("postern".into(), "lmtp".into(), lmtp));
    let counts = instance.counts().await?;
    instance.stop().await?;

    // Drains of a pre-loaded folder.
    for (label, count, size) in [
        ("small", args.small, load::SMALL_BODY),
        ("1 MB", args.large, load::LARGE_BODY),
    ] {
        if count == 0 {
            continue;
        }
        // The same messages under the default policy and with verification off, one after
        // the other on the same machine: the ratio is the cost of sender authentication.
        for policy in [SenderPolicy::Dmarc, SenderPolicy::Off] {
            let folder = format!("bench-drain-{}-{}", label.replace(' ', ""), policy.name());
            let prepared = Prepared::new(&args.postern, &server, &folder, policy).await?;
            let titles = load::preload(&server, &folder, &prepared.address, count, size).await?;
            if policy == SenderPolicy::Dmarc {
                let (fetched, floor) = load::imap_fetch_floor(&server, &folder).await?;
                floors.push((label, fetched, size, floor));
            }
            let started = Instant::now();
            let instance = prepared.spawn().await?;
            let done = instance
                .wait_processed(count, Duration::from_secs(600))
                .await?;
            let peak = instance.peak_rss()?;
            let idle = instance.wait_idle_rss(Duration::from_secs(3)).await?;
            let seen = instance.titles().await?;
            let left = load::messages_left(&server, &folder).await?;
            instance.stop().await?;
            let client = match policy {
                SenderPolicy::Dmarc => "postern (sender auth dmarc)",
                SenderPolicy::Off => "postern (sender auth off)",
            };
            drains.push(Drain::new(
                client,
                label,
                count,
                size,
                done.duration_since(started),
                peak,
                idle,
                &titles,
                &seen,
                left,
            ));
        }
        if args.mail_room && mailroom::available() {
            let to = "incoming@example.test";
            let folder = format!("bench-drain-{}", label.replace(' ', ""));
            drains.extend(mail_room_drain(&server, &folder, to, label, count, size).await?);
        }
    }
    if args.mail_room && !mailroom::available() {
        println!(
            "(mail_room not installed: apt-get install ruby-mail-room ruby-faraday to run it side by side)"
        );
    }

    measure::print_latency(&latencies);
    println!(
        "postern idle RSS before load: {:.1} MB; latency run: {} messages processed, {} issues",
        idle_rss, counts.0, counts.1
    );
    measure::print_drains(
        "Drain of a pre-loaded folder (spawn → last message stored and processed)",
        &drains,
    );
    print_ceilings(&floors);
    server.stop().map_err(anyhow::Error::msg)?;
    Ok(())
}

/// GitLab companion mode against mail_room: both deliver by webhook to the same kind of sink.
async fn run_companion(args: &Args, server: MailServer) -> anyhow::Result<()> {
    let mut drains: Vec<Drain> = Vec::new();
    let mut floors = Vec::new();
    for (label, count, size) in [
        ("small", args.small, load::SMALL_BODY),
        ("1 MB", args.large, load::LARGE_BODY),
    ] {
        if count == 0 {
            continue;
        }
        let folder = format!("bench-companion-{}", label.replace(' ', ""));
        let to = "incoming+abc@example.test";
        let titles = load::preload(&server, &folder, to, count, size).await?;
        let (fetched, floor) = load::imap_fetch_floor(&server, &folder).await?;
        floors.push((label, fetched, size, floor));
        match companion::drain(&args.postern, &server, &folder, count).await {
            Ok(run) => drains.push(Drain::new(
                "postern --gitlab-config",
                label,
                count,
                size,
                run.elapsed,
                run.peak_rss,
                run.idle_rss,
                &titles,
                &run.titles,
                run.left,
            )),
            Err(e) => println!("postern companion run failed: {e:#}"),
        }
        if args.mail_room && mailroom::available() {
            drains.extend(mail_room_drain(&server, &folder, to, label, count, size).await?);
        }
    }
    measure::print_drains(
        "GitLab companion mode vs mail_room: drain of a pre-loaded folder by webhook to a local sink (spawn → last POST)",
        &drains,
    );
    print_ceilings(&floors);
    server.stop().map_err(anyhow::Error::msg)?;
    Ok(())
}

/// mail_room's drain of the same messages in `<folder>-mailroom`, or `None` (said why) when it
/// failed to run.
async fn mail_room_drain(
    server: &MailServer,
    folder: &str,
    to: &str,
    label: &'static str,
    count: usize,
    size: usize,
) -> anyhow::Result<Option<Drain>> {
    let folder = format!("{folder}-mailroom");
    let titles = load::preload(server, &folder, to, count, size).await?;
    match mailroom::drain(server, &folder, count).await {
        Ok(run) => Ok(Some(Drain::new(
            "mail_room",
            label,
            count,
            size,
            run.elapsed,
            run.peak_rss,
            run.idle_rss,
            &titles,
            &run.titles,
            run.left,
        ))),
        Err(e) => {
            println!("mail_room run failed: {e:#}");
            Ok(None)
        }
    }
}

/// The machine's ceiling for each drain: what a bare client fetched, in how long.
fn print_ceilings(floors: &[(&str, usize, usize, Duration)]) {
    for (label, fetched, size, elapsed) in floors {
        println!(
            "ceiling: a bare IMAP client fetches the {fetched} {label} messages ({size} bytes) in \
             {:.2} s, {:.0} msg/s (one UID FETCH 1:* BODY.PEEK[], nothing stored)",
            elapsed.as_secs_f64(),
            *fetched as f64 / elapsed.as_secs_f64().max(1e-9)
        );
    }
}
