//! Takeover: several GitLab companion-mode instances on one PostgreSQL store deliver a steady
//! backlog to the GitLab stand-in, which answers each POST after a delay (as under load).
//! Again and again one instance is killed with SIGKILL while it holds claims — messages it
//! committed as `processing` under its lease before delivering them — and started again as a
//! new process. Measured: how many messages each kill stranded, and the time from the kill
//! until the first (and the last) of them is delivered by another process, which can happen
//! only once the dead process's lease has expired (15 s after its last renewal, renewed every
//! 5 s: `postern_store::leases`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::gitlab::{GitlabConfig, GitlabStandIn, MailboxAuth};
use postern_testkit::mailserver::MailServer;
use sqlx::postgres::PgPool;

use crate::companion::Companion;
use crate::measure::Latency;
use crate::postgres::Postgres;

/// How long a stranded message may take to be taken over before the run is called failed
/// (four lease lifetimes).
const TAKEOVER_BOUND: Duration = Duration::from_secs(60);
/// How long an instance may take to hold claims again (start, lease, first chunk).
const BUSY_BOUND: Duration = Duration::from_secs(60);
/// How often the store is looked at.
const POLL: Duration = Duration::from_millis(20);

/// What the run is asked to do.
pub struct Plan {
    /// Instances on the store.
    pub instances: usize,
    /// Kills that stranded messages, to time.
    pub kills: usize,
    /// The stand-in's delay before answering each POST.
    pub delay: Duration,
    /// Messages kept waiting for delivery (appended to the folder as others are delivered).
    pub backlog: usize,
}

/// One kill.
struct Kill {
    stranded: usize,
    /// Kill → the first / the last stranded message delivered by another process.
    first: Duration,
    last: Duration,
}

/// Runs the kills and prints the figures.
pub async fn run(
    postern: &std::path::Path,
    server: &MailServer,
    pg: &Postgres,
    plan: &Plan,
) -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let (store, pool) = pg.fresh_database(keys.path(), "takeover").await?;
    let gitlab = slow_gitlab(plan.delay).await;
    let folder = "bench-takeover";
    crate::load::preload(server, folder, "incoming+abc@example.test", 0, 0).await?;
    let (companions, mut children) = start_companions(
        postern,
        server,
        folder,
        &gitlab,
        (&store, &pool),
        plan.instances,
    )
    .await?;

    let appended = Arc::new(AtomicUsize::new(0));
    let feeder = tokio::spawn(feed(
        server.imap_port(),
        server.password().to_owned(),
        folder.to_owned(),
        pool.clone(),
        plan.backlog,
        appended.clone(),
    ));

    let started = Instant::now();
    let mut kills = Vec::new();
    let mut idle_kills = 0;
    let mut attempt = 0;
    while kills.len() < plan.kills {
        anyhow::ensure!(
            attempt < plan.kills * 2 + 5,
            "{attempt} kills and only {} stranded anything",
            kills.len()
        );
        if feeder.is_finished() {
            anyhow::bail!("the feeder stopped: {:?}", feeder.await);
        }
        let victim = attempt % plan.instances;
        attempt += 1;
        let child = &mut children[victim];
        let pid = child.id().context("a companion instance exited")?;
        // Killed while it holds claims, which it does nearly all the time under a backlog.
        let deadline = Instant::now() + BUSY_BOUND;
        while claims(&pool, pid).await?.is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "instance pid {pid} held no claim for {BUSY_BOUND:?}"
            );
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("instance pid {pid} exited ({status})");
            }
            tokio::time::sleep(POLL).await;
        }
        child.start_kill()?;
        let killed = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .context("a killed instance did not exit")??;
        // Read after the kill: exactly what it left claimed.
        let stranded = claims(&pool, pid).await?;
        children[victim] = companions[victim].spawn()?;
        if stranded.is_empty() {
            idle_kills += 1;
            continue;
        }
        let mut first = None;
        loop {
            let delivered = delivered(&pool, &stranded).await?;
            if delivered > 0 && first.is_none() {
                first = Some(killed.elapsed());
            }
            if delivered == stranded.len() {
                break;
            }
            anyhow::ensure!(
                killed.elapsed() < TAKEOVER_BOUND,
                "{delivered} of the {} messages stranded by pid {pid} delivered after {TAKEOVER_BOUND:?}",
                stranded.len()
            );
            tokio::time::sleep(POLL).await;
        }
        let last = killed.elapsed();
        kills.push(Kill {
            stranded: stranded.len(),
            first: first.unwrap_or(last),
            last,
        });
        println!(
            "kill {} (pid {pid}): {} stranded, first taken over after {:.1} s, all after {:.1} s",
            kills.len(),
            stranded.len(),
            first.unwrap_or(last).as_secs_f64(),
            last.as_secs_f64()
        );
    }
    let elapsed = started.elapsed();
    feeder.abort();
    let _ = feeder.await;
    for mut child in children {
        // SIGTERM first: an orderly stop ends its lease instead of leaving claims to expire.
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    let (processed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM inbound_messages WHERE state = 'processed'")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    let received = gitlab.received();
    let titles = received_titles(&gitlab);
    let (_, duplicated) = crate::measure::lost_and_duplicated(&[], &titles);
    print(
        plan,
        &kills,
        idle_kills,
        elapsed,
        processed,
        received.len(),
        duplicated,
    );
    Ok(())
}

/// The holder text of an instance's deliverer lease (`postern_gitlab::Deliverer::lease`).
/// The subjects of the messages the stand-in accepted, one per POST.
pub fn received_titles(gitlab: &GitlabStandIn) -> Vec<String> {
    gitlab
        .received()
        .iter()
        .filter_map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(|s| s.trim().to_owned()))
        })
        .collect()
}

/// The GitLab stand-in, answering each POST after `delay`.
pub async fn slow_gitlab(delay: Duration) -> GitlabStandIn {
    let gitlab = GitlabStandIn::start(GitlabConfig {
        incoming: MailboxAuth {
            secret: Some(crate::companion::SECRET.to_vec()),
            es256: None,
        },
        ..GitlabConfig::default()
    })
    .await;
    gitlab.set_delay(delay);
    gitlab
}

/// Configures `count` companion instances on `folder` and the shared store, delivering to
/// `gitlab`, and starts them: the first alone until it has created the schema and the token
/// key, which the others must find, not race for.
pub async fn start_companions(
    postern: &std::path::Path,
    server: &MailServer,
    folder: &str,
    gitlab: &GitlabStandIn,
    (store, pool): (&crate::instance::SharedStore, &PgPool),
    count: usize,
) -> anyhow::Result<(Vec<Companion>, Vec<tokio::process::Child>)> {
    let mut companions = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        companions.push(Companion::new(
            postern,
            server,
            folder,
            &gitlab.url(),
            Some(store),
        )?);
    }
    let mut children = vec![companions[0].spawn()?];
    let deadline = Instant::now() + BUSY_BOUND;
    while !store.token_key.exists() || !schema_ready(pool).await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the first companion instance never started"
        );
        tokio::time::sleep(POLL).await;
    }
    for companion in &companions[1..] {
        children.push(companion.spawn()?);
    }
    Ok((companions, children))
}

fn holder(pid: u32) -> String {
    format!("gitlab deliverer, pid {pid}")
}

/// Whether the first instance has created the store's tables (the leases' come last).
async fn schema_ready(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1 FROM leases LIMIT 1")
        .fetch_optional(pool)
        .await
        .is_ok()
}

/// The messages claimed for delivery under a lease of the process `pid`.
async fn claims(pool: &PgPool, pid: u32) -> anyhow::Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM inbound_messages WHERE state = 'processing' AND claimed_by IN \
         (SELECT id FROM leases WHERE holder = $1)",
    )
    .bind(holder(pid))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many of `ids` are delivered.
async fn delivered(pool: &PgPool, ids: &[i64]) -> anyhow::Result<usize> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM inbound_messages WHERE state = 'processed' AND id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(n)?)
}

/// Keeps `backlog` messages appended but not yet delivered, checking five times a second.
async fn feed(
    imap_port: u16,
    password: String,
    folder: String,
    pool: PgPool,
    backlog: usize,
    appended: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut client = crate::load::login(imap_port, &password).await?;
    loop {
        let (processed,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM inbound_messages WHERE state = 'processed'")
                .fetch_one(&pool)
                .await?;
        let waiting = appended
            .load(Ordering::Relaxed)
            .saturating_sub(usize::try_from(processed)?);
        for _ in waiting..backlog {
            let n = appended.fetch_add(1, Ordering::Relaxed);
            let raw = crate::load::message(
                "incoming+abc@example.test",
                &format!("takeover-{n}"),
                crate::load::SMALL_BODY,
            );
            client.append(&folder, "", &raw).await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print(
    plan: &Plan,
    kills: &[Kill],
    idle_kills: usize,
    elapsed: Duration,
    processed: i64,
    received: usize,
    duplicated: usize,
) {
    let mut first = Latency::default();
    let mut last = Latency::default();
    for kill in kills {
        first.push(kill.first);
        last.push(kill.last);
    }
    let stranded: Vec<String> = kills.iter().map(|k| k.stranded.to_string()).collect();
    println!();
    println!(
        "### Takeover: {} companion instances on one PostgreSQL store, GitLab answering after {} ms; \
         SIGKILL of one instance holding claims → its claimed messages delivered by another process",
        plan.instances,
        plan.delay.as_millis()
    );
    println!();
    println!("| kills | | p50 s | p95 s | max s |");
    println!("|---|---|---|---|---|");
    for (what, latency) in [
        ("first stranded message delivered", &first),
        ("last stranded message delivered", &last),
    ] {
        println!(
            "| {} | {what} | {:.1} | {:.1} | {:.1} |",
            kills.len(),
            latency.percentile(50.0) / 1000.0,
            latency.percentile(95.0) / 1000.0,
            latency.percentile(100.0) / 1000.0
        );
    }
    println!();
    println!(
        "(leases live 15 s after their last renewal and are renewed every 5 s: a dead instance's \
         claims are free 10 to 15 s after the kill, and taken at the next round of a live one)"
    );
    println!(
        "messages stranded per kill: {} (kills that found nothing claimed, not timed: {idle_kills})",
        stranded.join(", ")
    );
    println!(
        "over {:.0} s: {processed} messages delivered; the stand-in accepted {received} POSTs, \
         {duplicated} of them a second copy (a message GitLab had accepted when its instance was \
         killed, before the outcome was recorded: the documented webhook window)",
        elapsed.as_secs_f64()
    );
}
