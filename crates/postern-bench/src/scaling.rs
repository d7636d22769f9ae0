//! Throughput with 1, 2, 3… standalone instances on one PostgreSQL database: all watching one
//! pre-loaded IMAP folder (from their start until every message is an issue), or taking the
//! messages over LMTP, a fixed number of connections spread round-robin over their listeners
//! (from the first message sent until every message is an issue). With the CPU time of the
//! postern processes, of the PostgreSQL server and of the whole machine over that window, so
//! the table says what the limit was.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postern_testkit::mailserver::MailServer;

use crate::instance::{Instance, Prepared, SenderPolicy};
use crate::postgres::Postgres;

/// How long one drain may take before the run is called failed.
const DRAIN_BOUND: Duration = Duration::from_secs(900);

/// How the messages reach the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Pre-loaded into the one folder they all watch.
    Imap,
    /// Sent over this many LMTP connections at once, spread round-robin over the instances.
    Lmtp(usize),
    /// Pre-loaded into one folder that GitLab companion instances watch and deliver to a
    /// GitLab stand-in answering after this many milliseconds: the database is not the limit.
    Companion(u64),
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Imap => "imap",
            Via::Lmtp(_) => "lmtp",
            Via::Companion(_) => "companion",
        }
    }
}

/// One row of the table.
pub struct Row {
    via: Via,
    instances: usize,
    messages: usize,
    seconds: f64,
    /// CPU seconds over the drain: the postern processes, the PostgreSQL server, the machine.
    postern_cpu: f64,
    postgres_cpu: f64,
    machine_cpu: f64,
    /// The machine's busy share of all its CPUs over the drain, in percent.
    machine_busy: f64,
    lost: usize,
    duplicated: usize,
}

/// Takes `messages` small new-issue mails in with `instances` instances of `postern serve` on
/// a fresh database of `pg`.
#[allow(
    clippy::too_many_arguments,
    reason = "one row of the table, named at the call"
)]
pub async fn drain(
    postern: &Path,
    server: &MailServer,
    pg: &Postgres,
    policy: SenderPolicy,
    via: Via,
    instances: usize,
    messages: usize,
    ticks: f64,
) -> anyhow::Result<Row> {
    let keys = tempfile::tempdir()?;
    let name = format!("scale-{}-{instances}", via.name());
    let (store, pool) = pg.fresh_database(keys.path(), &name).await?;
    let folder = format!("bench-{name}");
    // The first instance creates the schema, the key and the project; the others join.
    let mut prepared = Vec::with_capacity(instances);
    let mut first = Prepared::sharing(postern, server, &folder, policy, &store)?;
    first.add_project()?;
    let address = first.address.clone();
    prepared.push(first);
    for _ in 1..instances {
        prepared.push(Prepared::sharing(postern, server, &folder, policy, &store)?);
    }
    let preloaded = if via == Via::Imap { messages } else { 0 };
    let mut sent = crate::load::preload(
        server,
        &folder,
        &address,
        preloaded,
        crate::load::SMALL_BODY,
    )
    .await?;

    // Over IMAP the watchers start fetching as the instances start, so the window begins
    // before they are launched; over LMTP it begins when they all listen.
    let mut clocks = Clocks::read(pg)?;
    let mut postern_before = 0;
    let mut started = Instant::now();
    let mut running = Vec::with_capacity(instances);
    for prepared in prepared {
        running.push(prepared.launch()?);
    }
    for instance in &mut running {
        instance.wait_listening().await?;
    }
    if let Via::Lmtp(connections) = via {
        sent = (0..messages).map(|n| format!("{folder}-{n}")).collect();
        let ports: Vec<u16> = running.iter().map(Instance::lmtp_port).collect();
        clocks = Clocks::read(pg)?;
        postern_before = postern_cpu(&running)?;
        started = Instant::now();
        tokio::time::timeout(DRAIN_BOUND, lmtp_load(&ports, &address, &sent, connections))
            .await
            .map_err(|_| anyhow::anyhow!("LMTP load not done in {DRAIN_BOUND:?}"))??;
    }
    let counted = "SELECT count(*) FROM issues";
    let seconds = wait_for_count(&pool, counted, messages, started).await?;
    // Sampled at once, before the instances go on to anything else.
    let postern_ticks = postern_cpu(&running)?.saturating_sub(postern_before);
    let cpu = clocks.since(pg, postern_ticks)?;

    let titles: Vec<(String,)> = sqlx::query_as("SELECT title FROM issues")
        .fetch_all(&pool)
        .await?;
    let titles: Vec<String> = titles.into_iter().map(|(t,)| t).collect();
    let (lost, duplicated) = crate::measure::lost_and_duplicated(&sent, &titles);
    for instance in running {
        instance.stop().await?;
    }
    pool.close().await;
    Ok(Row::measured(
        via,
        (instances, messages, seconds),
        &cpu,
        ticks,
        (lost, duplicated),
    ))
}

/// The PostgreSQL server's and the machine's CPU clocks at the start of a run.
struct Clocks {
    postgres: u64,
    machine: (u64, u64),
}

impl Clocks {
    fn read(pg: &Postgres) -> anyhow::Result<Clocks> {
        Ok(Clocks {
            postgres: pg.cpu_ticks()?,
            machine: crate::measure::machine_cpu()?,
        })
    }

    /// The ticks since these were read, with the postern processes' `postern` ticks over the
    /// same run. Read at once when the run ends, before anything else runs.
    fn since(&self, pg: &Postgres, postern: u64) -> anyhow::Result<CpuTicks> {
        let now = Clocks::read(pg)?;
        Ok(CpuTicks {
            postern,
            postgres: now.postgres.saturating_sub(self.postgres),
            machine: (
                now.machine.0.saturating_sub(self.machine.0),
                now.machine.1.saturating_sub(self.machine.1),
            ),
        })
    }
}

/// CPU clock ticks over a run: of the postern processes, of the PostgreSQL server, and the
/// machine's (busy, total of all CPUs).
struct CpuTicks {
    postern: u64,
    postgres: u64,
    machine: (u64, u64),
}

impl Row {
    /// A row from a run's `(instances, messages, seconds)`, its CPU `ticks` (`per_second` of
    /// them a second) and its `(lost, duplicated)` counts.
    fn measured(
        via: Via,
        (instances, messages, seconds): (usize, usize, f64),
        cpu: &CpuTicks,
        per_second: f64,
        (lost, duplicated): (usize, usize),
    ) -> Row {
        let (busy, total) = (cpu.machine.0 as f64, cpu.machine.1 as f64);
        Row {
            via,
            instances,
            messages,
            seconds,
            postern_cpu: cpu.postern as f64 / per_second,
            postgres_cpu: cpu.postgres as f64 / per_second,
            machine_cpu: busy / per_second,
            machine_busy: 100.0 * busy / total.max(1.0),
            lost,
            duplicated,
        }
    }
}

/// Delivers `messages` pre-loaded mails to a GitLab stand-in answering after `delay_ms`, with
/// `instances` companion instances (`serve --gitlab-config`) on a fresh database of `pg`,
/// from their start until every message is recorded as delivered. GitLab's latency, not the
/// database, is the limit here: the case where instances should add up.
pub async fn companion_drain(
    postern: &Path,
    server: &MailServer,
    pg: &Postgres,
    (instances, messages, delay_ms): (usize, usize, u64),
    ticks: f64,
) -> anyhow::Result<Row> {
    let keys = tempfile::tempdir()?;
    let name = format!("scale-companion-{instances}");
    let (store, pool) = pg.fresh_database(keys.path(), &name).await?;
    let folder = format!("bench-{name}");
    let gitlab = crate::takeover::slow_gitlab(Duration::from_millis(delay_ms)).await;
    let sent = crate::load::preload(
        server,
        &folder,
        "incoming+abc@example.test",
        messages,
        crate::load::SMALL_BODY,
    )
    .await?;
    let clocks = Clocks::read(pg)?;
    let started = Instant::now();
    let (_companions, mut children) = crate::takeover::start_companions(
        postern,
        server,
        &folder,
        &gitlab,
        (&store, &pool),
        instances,
    )
    .await?;
    let counted = "SELECT count(*) FROM inbound_messages WHERE state = 'processed'";
    let seconds = wait_for_count(&pool, counted, messages, started).await?;
    let mut postern_ticks = 0;
    for child in &children {
        if let Some(pid) = child.id() {
            postern_ticks += crate::measure::proc_cpu(pid)?.own;
        }
    }
    let cpu = clocks.since(pg, postern_ticks)?;
    let titles = crate::takeover::received_titles(&gitlab);
    let (lost, duplicated) = crate::measure::lost_and_duplicated(&sent, &titles);
    for child in &mut children {
        let _ = child.kill().await;
    }
    pool.close().await;
    let run = (instances, messages, seconds);
    Ok(Row::measured(
        Via::Companion(delay_ms),
        run,
        &cpu,
        ticks,
        (lost, duplicated),
    ))
}

/// Waits until `count_sql` (one `count(*)`) reaches `messages`; returns the seconds since
/// `started`. An error after [`DRAIN_BOUND`].
async fn wait_for_count(
    pool: &sqlx::PgPool,
    count_sql: &'static str,
    messages: usize,
    started: Instant,
) -> anyhow::Result<f64> {
    let target = i64::try_from(messages)?;
    loop {
        let (done,): (i64,) = sqlx::query_as(count_sql).fetch_one(pool).await?;
        if done >= target {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < DRAIN_BOUND,
            "only {done} of {messages} messages done in {DRAIN_BOUND:?} ({count_sql})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CPU ticks the instances' processes have used so far.
fn postern_cpu(running: &[Instance]) -> anyhow::Result<u64> {
    let mut ticks = 0;
    for instance in running {
        ticks += crate::measure::proc_cpu(instance.pid())?.own;
    }
    Ok(ticks)
}

/// Sends a message titled after each of `titles` to `to` over `connections` LMTP connections at
/// once, the n-th connection to `ports[n % ports.len()]`, each sending its next message when the
/// last one was answered.
async fn lmtp_load(
    ports: &[u16],
    to: &str,
    titles: &[String],
    connections: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let titles: Arc<[String]> = titles.into();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..connections.max(1) {
        let port = ports[n % ports.len()];
        let (next, titles, to) = (next.clone(), titles.clone(), to.to_owned());
        tasks.spawn(async move {
            let mut session = crate::load::LmtpSession::open(port).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(title) = titles.get(n) else {
                    break;
                };
                let raw = crate::load::message(&to, title, crate::load::SMALL_BODY);
                session.deliver(&to, &raw).await?;
            }
            session.quit().await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Prints the table; each speed-up is against the row with one instance and the same way in.
pub fn print(rows: &[Row], cpus: usize, ticks_measured: bool) {
    println!();
    println!(
        "### Throughput: N instances on one PostgreSQL database (standalone, IMAP: start → every \
         message an issue; standalone, LMTP: first message sent → every message an issue; \
         companion: start → every message delivered to GitLab)"
    );
    println!();
    println!(
        "| via | instances | messages | seconds | msg/s | speed-up vs 1 | postern CPU s/msg | \
         PostgreSQL CPU s/msg | PostgreSQL CPUs busy | other CPU s/msg | machine CPU busy % | \
         lost | dup |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let rate = |row: &Row| row.messages as f64 / row.seconds.max(1e-9);
    for row in rows {
        let one = rows
            .iter()
            .find(|one| one.instances == 1 && one.via == row.via)
            .map(rate);
        let per = |cpu: f64| cpu / row.messages.max(1) as f64;
        let other = (row.machine_cpu - row.postern_cpu - row.postgres_cpu).max(0.0);
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {:.5} | {:.5} | {:.2} | {:.5} | {:.0} | {} | {} |",
            match row.via {
                Via::Imap => "IMAP, one folder".to_owned(),
                Via::Lmtp(connections) => format!("LMTP, {connections} connections"),
                Via::Companion(delay) => format!("companion, GitLab answering in {delay} ms"),
            },
            row.instances,
            row.messages,
            row.seconds,
            rate(row),
            one.map_or("–".to_owned(), |one| format!("{:.2}×", rate(row) / one)),
            per(row.postern_cpu),
            per(row.postgres_cpu),
            row.postgres_cpu / row.seconds.max(1e-9),
            per(other),
            row.machine_busy,
            row.lost,
            row.duplicated,
        );
    }
    println!();
    println!(
        "CPU time from /proc (utime+stime; PostgreSQL: the postmaster and its children, exited \
         ones included; \"CPUs busy\": its CPU seconds per second of the run); \"other\" is the rest of the machine's busy time (Dovecot, this \
         benchmark, anything else running). Machine busy % is of all {cpus} CPUs: near 100 % the \
         CPU is the limit, not the database. Clock ticks: {}.",
        if ticks_measured {
            "getconf CLK_TCK"
        } else {
            "getconf failed, 100 a second assumed"
        }
    );
}
