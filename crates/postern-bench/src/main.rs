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
//!
//! `--instances` (`bash bench/instances.sh`) measures several instances on one private
//! PostgreSQL: throughput with 1, 2 and 3 standalone instances draining one folder, with the
//! CPU time of postern, PostgreSQL and the machine ([`scaling`]); and the time from the SIGKILL
//! of a companion-mode instance holding claims until another process delivers what it had
//! claimed, p50/p95/max over 20 kills ([`takeover`]).

mod companion;
mod instance;
mod load;
mod mailroom;
mod measure;
mod postgres;
mod scaling;
mod sink;
mod takeover;

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
    /// `--instances` and its settings.
    instances: Option<Instances>,
}

/// The settings of `--instances`.
struct Instances {
    /// Messages each throughput run drains.
    messages: usize,
    /// Instance counts of the throughput runs.
    counts: Vec<usize>,
    /// Throughput runs over IMAP, over LMTP, in companion mode.
    imap: bool,
    lmtp: bool,
    companion: bool,
    /// LMTP connections at once in the LMTP runs.
    lmtp_connections: usize,
    policy: SenderPolicy,
    takeover: takeover::Plan,
    throughput: bool,
    takeover_runs: bool,
}

const HELP: &str = "\
postern-bench [--postern PATH] [--small N] [--large N] [--latency-messages N] [--no-mail-room] [--companion]
postern-bench [--postern PATH] --instances [--messages N] [--counts 1,2,3] [--via imap,lmtp,companion]
              [--lmtp-connections N] [--sender-auth off|dmarc] [--kills N] [--takeover-instances N] [--delay-ms N] [--backlog N]
              [--no-throughput] [--no-takeover]

Default: the intake benchmark (IMAP IDLE and LMTP latency, drains of small and 1 MB messages,
mail_room side by side when installed). --companion: GitLab companion mode against mail_room.

--instances: several instances on one private PostgreSQL (bench/instances.sh).
  Throughput: for each way in of --via (default both) and each count of --counts (default
  1,2,3), a fresh database, that many standalone `postern serve` instances and --messages
  (default 3000) small new-issue mails: imap pre-loads them into one folder all the instances
  watch, timed from their start until every message is an issue; lmtp sends them over
  --lmtp-connections (default 8) connections at once spread round-robin over the instances'
  listeners, timed from the first message sent until every message is an issue; companion
  pre-loads a fifth of them for `serve --gitlab-config` instances delivering to the GitLab
  stand-in answering after --delay-ms, timed from their start until every message is delivered
  (GitLab's latency, not the database, is the limit there). Prints msg/s, the speed-up against one instance, and CPU seconds per message of the postern
  processes, of the PostgreSQL server and of the rest of the machine, with the machine's busy %.
  --sender-auth: the instances' sender-authentication policy (default off: the figures are
  processing and the store, not DNS lookups of the test domains).
  Takeover: --takeover-instances (default 3) companion-mode instances on one database deliver a
  steady backlog (--backlog, default 200 messages) to the GitLab stand-in answering after
  --delay-ms (default 200); --kills (default 20) times one instance holding claims is killed
  (SIGKILL) and started again. Prints how many messages each kill stranded and p50/p95/max of
  the time from the kill until the first and the last of them is delivered by another process.
  Figures only: no timing is asserted. Needs dovecot-imapd and PostgreSQL's server binaries.";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        postern: PathBuf::from("target/release/postern"),
        small: 2000,
        large: 200,
        latency_messages: 50,
        mail_room: true,
        companion: false,
        instances: None,
    };
    let mut instances = Instances {
        messages: 3000,
        counts: vec![1, 2, 3],
        imap: true,
        lmtp: true,
        companion: true,
        lmtp_connections: 8,
        policy: SenderPolicy::Off,
        takeover: takeover::Plan {
            instances: 3,
            kills: 20,
            delay: Duration::from_millis(200),
            backlog: 200,
        },
        throughput: true,
        takeover_runs: true,
    };
    let mut instances_mode = false;
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
            "--instances" => instances_mode = true,
            "--messages" => instances.messages = value()?.parse()?,
            "--counts" => {
                instances.counts = value()?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            "--via" => {
                let ways = value()?;
                let ways: Vec<&str> = ways.split(',').map(str::trim).collect();
                anyhow::ensure!(
                    ways.iter()
                        .all(|way| ["imap", "lmtp", "companion"].contains(way)),
                    "--via takes imap, lmtp, companion or a list of them (imap,lmtp)"
                );
                instances.imap = ways.contains(&"imap");
                instances.lmtp = ways.contains(&"lmtp");
                instances.companion = ways.contains(&"companion");
            }
            "--lmtp-connections" => instances.lmtp_connections = value()?.parse()?,
            "--sender-auth" => {
                instances.policy = match value()?.as_str() {
                    "off" => SenderPolicy::Off,
                    "dmarc" => SenderPolicy::Dmarc,
                    other => anyhow::bail!("--sender-auth {other:?}: off or dmarc"),
                }
            }
            "--kills" => instances.takeover.kills = value()?.parse()?,
            "--takeover-instances" => instances.takeover.instances = value()?.parse()?,
            "--delay-ms" => instances.takeover.delay = Duration::from_millis(value()?.parse()?),
            "--backlog" => instances.takeover.backlog = value()?.parse()?,
            "--no-throughput" => instances.throughput = false,
            "--no-takeover" => instances.takeover_runs = false,
            "--help" | "-h" => {
                println!("{HELP}");
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
    if instances_mode {
        anyhow::ensure!(
            instances.counts.iter().all(|n| *n > 0) && instances.takeover.instances >= 2,
            "--counts takes instance counts of 1 or more, --takeover-instances 2 or more"
        );
        args.instances = Some(instances);
    }
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
        "postern {} benchmark — {} — Dovecot on 127.0.0.1:{}",
        if args.instances.is_some() {
            "multi-instance"
        } else {
            "intake"
        },
        args.postern.display(),
        server.imap_port()
    );

    if let Some(instances) = &args.instances {
        return run_instances(&args.postern, instances, server).await;
    }
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

/// Several instances on one private PostgreSQL: throughput by instance count, then takeover
/// times after kills.
async fn run_instances(
    postern: &std::path::Path,
    instances: &Instances,
    server: MailServer,
) -> anyhow::Result<()> {
    let pg = postgres::Postgres::start().await?;
    let (ticks, ticks_measured) = measure::clock_ticks_per_second();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // What else the machine is doing: the CPU figures below are only as good as its quiet.
    let before = measure::machine_cpu()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = measure::machine_cpu()?;
    println!(
        "machine CPU busy before the runs (2 s, nothing of this benchmark running yet): {:.0} % of {cpus} CPUs",
        100.0 * after.0.saturating_sub(before.0) as f64
            / after.1.saturating_sub(before.1).max(1) as f64
    );
    let mut rows = Vec::new();
    if instances.throughput {
        let ways = [
            instances.imap.then_some(scaling::Via::Imap),
            instances
                .lmtp
                .then_some(scaling::Via::Lmtp(instances.lmtp_connections)),
        ];
        for via in ways.into_iter().flatten() {
            for &count in &instances.counts {
                let row = scaling::drain(
                    postern,
                    &server,
                    &pg,
                    instances.policy,
                    via,
                    count,
                    instances.messages,
                    ticks,
                )
                .await?;
                rows.push(row);
            }
        }
        if instances.companion {
            let delay = u64::try_from(instances.takeover.delay.as_millis()).unwrap_or(u64::MAX);
            for &count in &instances.counts {
                let job = (count, instances.messages / 5, delay);
                rows.push(scaling::companion_drain(postern, &server, &pg, job, ticks).await?);
            }
        }
        println!(
            "(sender authentication: {}; {cpus} CPUs)",
            instances.policy.name()
        );
        scaling::print(&rows, cpus, ticks_measured);
    }
    if instances.takeover_runs {
        takeover::run(postern, &server, &pg, &instances.takeover).await?;
    }
    pg.stop()?;
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
