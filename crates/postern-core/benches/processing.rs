//! `cargo bench -p postern-core`: what one message costs on the way through
//! `Processor::receive` (the processing path of `postern receive`, without process start-up).
//!
//! Prints figures; asserts nothing (timings are never asserted anywhere: shared machines are
//! noisy). The figure postern aims for is printed next to each one so a reader can compare.
//!
//! - messages/second for a 50/50 mix of replies to sent notifications and new issues by the
//!   new-issue address, built from GitLab's fixtures (`valid_reply.eml`, `valid_new_issue.eml`)
//!   with a distinct Message-ID each, into SQLite (a file in a temporary directory, default
//!   `StoreOptions`) and PostgreSQL (a fresh database on the testkit's private server; skipped
//!   with `POSTERN_SKIP_PG=1`), one at a time as the pipe does and with concurrent tasks;
//! - next to each store, its commit floor (one-row write transactions per second): on SQLite
//!   (WAL, `synchronous = FULL`) that is the disk's fsync rate, which bounds any message rate;
//!   the testkit's PostgreSQL runs with `fsync = off`, so its figures are not durable ones;
//! - the same mix on in-memory SQLite (the processing cost without the disk), and on SQLite with
//!   many projects in the instance (each message loads every project to build the custom
//!   Service Desk email table);
//! - the time of one merge request by email with 10 `git format-patch` patches, on SQLite;
//! - the peak RSS of the bench process.

use postern_core::Outcome;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use postern_core::content::UploadPolicy;
use postern_core::{Processor, ProcessorConfig, ReceiveOutcome};
use postern_git::Identity;
use postern_mail::AddressTemplate;
use postern_store::{
    InboundSource, Mailbox, NewIssue, NewProject, NewSentNotification, NewUser, Noteable, Project,
    Role, Store, StoreOptions, User, Visibility,
};
use postern_testkit::fixtures::{gitlab_email, substitute};
use postern_testkit::{BoxError, TestDb, create_database, pg};

/// Messages per timed run (half replies, half new issues).
const MESSAGES: usize = 2_000;
/// Messages processed before each timed run, so connections and statement caches are warm.
const WARM_UP: usize = 50;
/// Transactions of the commit-floor measurement.
const FLOOR_COMMITS: usize = 500;
/// Tasks of the concurrent run.
const TASKS: usize = 4;
/// Issues the replies' notifications are spread over.
const ISSUES: usize = 100;
/// Other projects in the instance for the "many projects" run, and its message count.
const MANY_PROJECTS: usize = 2_000;
const MANY_PROJECTS_MESSAGES: usize = 500;
const LIST_PROJECTS_CALLS: usize = 50;
/// Patches in the merge request mail, and timed runs per series length.
const PATCHES: usize = 10;
const MR_RUNS: usize = 5;

/// GitLab's shared-context reply key, as the reply fixture carries it.
const FIXTURE_KEY: &str = "59d8df8370b7e95c5a49fbf86aeb2c93";
const INCOMING: &str = "incoming+%{key}@appmail.adventuretime.ooo";
const README: &str = "Sample repo for testing gitlab features\n";

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())?;
    println!();
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the bench process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS of the bench process: unavailable (no /proc/self/status)"),
    }
    Ok(())
}

const SQLITE_LABEL: &str = "SQLite (file in a temporary directory, default StoreOptions)";
const POSTGRES_LABEL: &str = "PostgreSQL (fresh database on the testkit's private server, \
     default StoreOptions; the server runs with fsync=off)";

async fn run() -> Result<(), BoxError> {
    println!(
        "postern-core benchmark: Processor::receive (release build, 2 runtime workers, {} cores)",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!();
    let sqlite = TestDb::sqlite().await;
    throughput(SQLITE_LABEL, sqlite.store.clone(), Some(500.0)).await?;
    println!();
    match pg::shared_admin_url() {
        pg::PgChoice::Skip => println!("PostgreSQL: skipped (POSTERN_SKIP_PG=1)"),
        pg::PgChoice::Url(admin) => {
            let url = create_database(&admin).await;
            let store = Store::connect_with(&url, &StoreOptions::default()).await?;
            throughput(POSTGRES_LABEL, store, None).await?;
        }
    }
    println!();
    in_memory().await?;
    println!();
    many_projects().await?;
    println!();
    merge_request().await
}

// ------------------------------------------------------------------------------------------
// The world: one developer, the fixtures' project, issues to reply to.

struct World {
    processor: Processor,
    project: Project,
    jake: User,
    /// Ids of the issues sent notifications point at.
    issues: Vec<i64>,
    repositories: postern_git::Repositories,
    /// Uploads and repositories; removed on drop.
    _data: tempfile::TempDir,
}

impl World {
    /// jake (developer, verified address) in `gitlabhq/gitlabhq` with [`ISSUES`] issues, and
    /// `other_projects` more projects in the instance.
    async fn new(store: Store, other_projects: usize) -> Result<World, BoxError> {
        let data = tempfile::tempdir()?;
        let mut tx = store.begin().await?;
        let mut new_jake = NewUser::new("jake", "Jake the Dog", "jake@adventuretime.ooo");
        new_jake.email_verified = true;
        let jake = tx.create_user(new_jake).await?;
        let project = tx
            .create_project(new_project("gitlabhq", "gitlabhq", "master"))
            .await?;
        tx.add_member(project.id, jake.id, Role::Developer).await?;
        let mut issues = Vec::with_capacity(ISSUES);
        for n in 0..ISSUES {
            let title = format!("Adventure Time Sux, part {n}");
            let issue = tx
                .create_issue(NewIssue::new(project.id, jake.id, &title, "description"))
                .await?;
            issues.push(issue.id);
        }
        for n in 0..other_projects {
            tx.create_project(new_project(
                &format!("group{}", n % 50),
                &format!("p{n}"),
                "main",
            ))
            .await?;
        }
        tx.commit().await?;
        let repositories = postern_git::Repositories::new(data.path().join("repositories"))
            .with_default_branch("master");
        let config = ProcessorConfig {
            incoming_address: Some(AddressTemplate::new(INCOMING)),
            service_desk_address: Some(AddressTemplate::new("support+%{key}@example.com")),
            host: "localhost".into(),
            uploads: UploadPolicy {
                directory: data.path().join("uploads"),
                max_bytes: 100 * 1024 * 1024,
            },
            sender_address: "postern@localhost".into(),
            instance_name: "postern".into(),
            reject_notice_window_seconds: 3600,
            auto_mail: postern_core::auto_mail::AutoMailLimits::default(),
            retry: postern_core::RetryPolicy::default(),
            limits: postern_core::MessageLimits::default(),
            quarantine_directory: postern_core::intake::quarantine_directory(data.path()),
            // GitLab's trimmer: these compare with GitLab's results.
            reply_trimming: postern_mail::trim::TrimMode::Gitlab,
            web_url: None,
            reply_key_max_age_days: None,
            sender_authentication: None,
        };
        Ok(World {
            processor: Processor::new(store, repositories.clone(), config),
            project,
            jake,
            issues,
            repositories,
            _data: data,
        })
    }

    /// `count` notifications sent to jake, spread over the issues; their address keys.
    async fn notifications(&self, count: usize) -> Result<Vec<String>, BoxError> {
        let mut tx = self.processor.store().begin().await?;
        let mut keys = Vec::with_capacity(count);
        for n in 0..count {
            let sent = tx
                .create_sent_notification(NewSentNotification {
                    partition: 1,
                    namespace_id: self.project.id,
                    recipient_id: self.jake.id,
                    noteable: Noteable::Issue(self.issues[n % self.issues.len()]),
                    in_reply_to_discussion_id: None,
                    reply_key: None,
                    participant_email: None,
                })
                .await?;
            keys.push(sent.address_key());
        }
        tx.commit().await?;
        Ok(keys)
    }

    /// `count` messages, alternating a reply to its own notification and a new issue; every
    /// Message-ID starts with `tag` and is distinct.
    async fn mix(&self, tag: &str, count: usize) -> Result<Vec<Message>, BoxError> {
        let keys = self.notifications(count.div_ceil(2)).await?;
        let reply = gitlab_email("valid_reply.eml");
        let new_issue = gitlab_email("valid_new_issue.eml");
        let project_id = self.project.id.to_string();
        let token = self.jake.incoming_email_token.as_str();
        let mut messages = Vec::with_capacity(count);
        for n in 0..count {
            let message_id = format!("Message-ID: <{tag}-{n}-");
            messages.push(if n % 2 == 0 {
                let key = &keys[n / 2];
                Message {
                    kind: Kind::Reply,
                    raw: substitute(
                        &reply,
                        &[
                            ("Message-ID: <", &message_id),
                            // GitLab sends replies to the incoming address; the key is also in
                            // References (`reply-KEY@localhost`).
                            (&format!("reply+{FIXTURE_KEY}"), &format!("incoming+{key}")),
                            (FIXTURE_KEY, key),
                        ],
                    ),
                }
            } else {
                Message {
                    kind: Kind::NewIssue,
                    raw: substitute(
                        &new_issue,
                        &[
                            ("Message-ID: <", &message_id),
                            (
                                "Subject: New Issue by email",
                                &format!("Subject: New Issue by email ({tag} {n})"),
                            ),
                            ("project_id", &project_id),
                            ("auth_token", token),
                        ],
                    ),
                }
            });
        }
        Ok(messages)
    }
}

fn new_project(namespace: &str, path: &str, default_branch: &str) -> NewProject {
    NewProject {
        namespace_path: namespace.into(),
        path: path.into(),
        name: path.into(),
        visibility: Visibility::Private,
        default_branch: default_branch.into(),
    }
}

// ------------------------------------------------------------------------------------------
// Throughput of the mix.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Reply,
    NewIssue,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Reply => "reply -> note",
            Kind::NewIssue => "new issue",
        }
    }
}

struct Message {
    kind: Kind,
    raw: Vec<u8>,
}

/// What a run did: wall time, each message's latency by kind, and the outcomes seen.
#[derive(Default)]
struct Run {
    elapsed: Duration,
    latencies: BTreeMap<Kind, Vec<Duration>>,
    /// `handler outcome [error]` → count.
    outcomes: BTreeMap<String, usize>,
    /// The first outcome that was not `processed`, to show what went wrong.
    first_unexpected: Option<String>,
}

impl Run {
    fn record(&mut self, kind: Kind, latency: Duration, outcome: &ReceiveOutcome) {
        self.latencies.entry(kind).or_default().push(latency);
        let label = format!(
            "{} {}{}",
            outcome.handler.map_or("-", |handler| handler.as_str()),
            outcome.outcome,
            outcome.error.map(|e| format!(" ({e})")).unwrap_or_default()
        );
        *self.outcomes.entry(label).or_default() += 1;
        if outcome.outcome != Outcome::Processed && self.first_unexpected.is_none() {
            self.first_unexpected = Some(format!("{outcome:?}"));
        }
    }

    fn merge(&mut self, other: Run) {
        for (kind, latencies) in other.latencies {
            self.latencies.entry(kind).or_default().extend(latencies);
        }
        for (label, count) in other.outcomes {
            *self.outcomes.entry(label).or_default() += count;
        }
        if self.first_unexpected.is_none() {
            self.first_unexpected = other.first_unexpected;
        }
    }

    fn messages(&self) -> usize {
        self.latencies.values().map(Vec::len).sum()
    }

    fn print(&mut self, label: &str, target: Option<f64>) {
        let count = self.messages();
        let rate = count as f64 / self.elapsed.as_secs_f64();
        let target = target
            .map(|t| format!("   (target >= {t:.0} messages/s)"))
            .unwrap_or_default();
        println!(
            "  {label}: {count} messages in {:.2} s = {rate:.0} messages/s{target}",
            self.elapsed.as_secs_f64()
        );
        for (kind, latencies) in &mut self.latencies {
            latencies.sort();
            println!(
                "    {:<14} {:>5} messages, latency p50 {:>6.2} ms, p90 {:>6.2} ms, p99 {:>6.2} ms, max {:>7.2} ms",
                kind.label(),
                latencies.len(),
                millis(percentile(latencies, 50)),
                millis(percentile(latencies, 90)),
                millis(percentile(latencies, 99)),
                millis(latencies.last().copied().unwrap_or_default()),
            );
        }
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(label, count)| format!("{label} x{count}"))
            .collect();
        println!("    outcomes: {}", outcomes.join(", "));
        if let Some(first) = &self.first_unexpected {
            println!("    WARNING: not every message was processed; first: {first}");
        }
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn receive(processor: &Processor, raw: &[u8]) -> Result<ReceiveOutcome, BoxError> {
    Ok(processor
        .receive(raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?)
}

/// One message after another, as `postern receive` does per pipe.
async fn sequential(processor: &Processor, messages: &[Message]) -> Result<Run, BoxError> {
    let mut run = Run::default();
    let start = Instant::now();
    for message in messages {
        let one = Instant::now();
        let outcome = receive(processor, &message.raw).await?;
        run.record(message.kind, one.elapsed(), &outcome);
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// `TASKS` tasks, each taking every `TASKS`-th message (so each has the same mix).
async fn concurrent(processor: &Processor, messages: Vec<Message>) -> Result<Run, BoxError> {
    let mut shares: Vec<Vec<Message>> = (0..TASKS).map(|_| Vec::new()).collect();
    for (n, message) in messages.into_iter().enumerate() {
        shares[n % TASKS].push(message);
    }
    let start = Instant::now();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let processor = processor.clone();
            tokio::spawn(async move {
                let mut run = Run::default();
                for message in &share {
                    let one = Instant::now();
                    let outcome = receive(&processor, &message.raw).await?;
                    run.record(message.kind, one.elapsed(), &outcome);
                }
                Ok::<Run, BoxError>(run)
            })
        })
        .collect();
    let mut run = Run::default();
    for handle in handles {
        run.merge(handle.await??);
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// The floor under any message: one durable write transaction (`BEGIN`, an upsert of one
/// settings row, `COMMIT`), repeated.
async fn commit_floor(store: &Store) -> Result<(), BoxError> {
    let start = Instant::now();
    for n in 0..FLOOR_COMMITS {
        let mut tx = store.begin().await?;
        tx.set_setting("bench.commit_floor", &n.to_string()).await?;
        tx.commit().await?;
    }
    let elapsed = start.elapsed();
    println!(
        "  commit floor: {FLOOR_COMMITS} one-row write transactions in {:.2} s = {:.0} commits/s ({:.2} ms each)",
        elapsed.as_secs_f64(),
        FLOOR_COMMITS as f64 / elapsed.as_secs_f64(),
        millis(elapsed) / FLOOR_COMMITS as f64
    );
    Ok(())
}

async fn throughput(label: &str, store: Store, target: Option<f64>) -> Result<(), BoxError> {
    println!("{label}");
    commit_floor(&store).await?;
    let world = World::new(store, 0).await?;
    println!(
        "  mix: 50% replies to sent notifications (valid_reply.eml, one notification each, over {ISSUES} issues),"
    );
    println!(
        "       50% new issues by the new-issue address (valid_new_issue.eml); every Message-ID distinct"
    );
    sequential(&world.processor, &world.mix("warm-seq", WARM_UP).await?).await?;
    let messages = world.mix("seq", MESSAGES).await?;
    sequential(&world.processor, &messages)
        .await?
        .print("sequential (one at a time)", target);

    sequential(&world.processor, &world.mix("warm-par", WARM_UP).await?).await?;
    let messages = world.mix("par", MESSAGES).await?;
    concurrent(&world.processor, messages)
        .await?
        .print(&format!("{TASKS} concurrent tasks"), target);
    Ok(())
}

/// The same mix, sequentially, on in-memory SQLite: no disk, so what is left is the CPU cost of
/// parsing, deciding and the queries themselves.
async fn in_memory() -> Result<(), BoxError> {
    let store = Store::connect("sqlite::memory:").await?;
    println!("SQLite in memory (no file, no fsync: the processing cost without the disk)");
    commit_floor(&store).await?;
    let world = World::new(store, 0).await?;
    sequential(&world.processor, &world.mix("warm", WARM_UP).await?).await?;
    let messages = world.mix("mem", MESSAGES).await?;
    sequential(&world.processor, &messages)
        .await?
        .print("sequential (one at a time)", None);
    Ok(())
}

/// The same mix, sequentially, in an instance with many projects: `CustomEmails::load` reads
/// every project for every message.
async fn many_projects() -> Result<(), BoxError> {
    let db = TestDb::sqlite().await;
    let world = World::new(db.store.clone(), MANY_PROJECTS).await?;
    println!(
        "SQLite with {} projects in the instance (the same mix, sequential)",
        MANY_PROJECTS + 1
    );
    sequential(&world.processor, &world.mix("warm", WARM_UP).await?).await?;
    let messages = world.mix("many", MANY_PROJECTS_MESSAGES).await?;
    sequential(&world.processor, &messages)
        .await?
        .print("sequential (one at a time)", Some(500.0));
    println!("    (compare with the sequential SQLite figure with 1 project above)");
    // What `CustomEmails::load` (in `Processor::decide`) runs for every message.
    let mut tx = world.processor.store().begin_read_only().await?;
    let start = Instant::now();
    let mut rows = 0;
    for _ in 0..LIST_PROJECTS_CALLS {
        rows = tx.list_projects().await?.len();
    }
    let elapsed = start.elapsed();
    tx.commit().await?;
    println!(
        "  Tx::list_projects() alone ({rows} rows), as CustomEmails::load runs it per message: {:.2} ms per call",
        millis(elapsed) / LIST_PROJECTS_CALLS as f64
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------
// A merge request by email with a series of patches.

/// `count` patches as `git format-patch` writes them, applying in sequence onto `README`:
/// patch n adds `docs/part-NN.md` (20 lines) and appends a line to `README`. File name and
/// content of each.
fn patch_series(count: usize) -> Vec<(String, String)> {
    let mut readme: Vec<String> = README.lines().map(str::to_owned).collect();
    let mut patches = Vec::with_capacity(count);
    for n in 1..=count {
        let title = format!("Add part {n} of the guide");
        let file = format!("docs/part-{n:02}.md");
        let lines: Vec<String> = (1..=20)
            .map(|i| {
                format!("Part {n}, line {i}: postern turns email into issue-tracker activity.")
            })
            .collect();
        let context_start = readme.len().saturating_sub(3);
        let context = &readme[context_start..];
        let added = format!("See {file} for part {n}.");
        let mut text = format!(
            "From {:040x} Mon Sep 17 00:00:00 2001\n\
             From: Patch User <patchuser@gitlab.org>\n\
             Date: Thu, 18 Oct 2018 13:{:02}:35 +0200\n\
             Subject: [PATCH {n:02}/{count:02}] {title}\n\
             \n\
             Part {n} of the guide, and a pointer to it from the README.\n\
             \n\
             Signed-off-by: Patch User <patchuser@gitlab.org>\n\
             ---\n \
             README{:width$} |  1 +\n \
             {file} | 20 ++++++++++++++++++++\n \
             2 files changed, 21 insertions(+)\n \
             create mode 100644 {file}\n\
             \n\
             diff --git a/README b/README\n\
             --- a/README\n\
             +++ b/README\n\
             @@ -{start},{old} +{start},{new} @@\n",
            0x5eed_0000_u64 + n as u64,
            n % 60,
            "",
            width = file.len() - "README".len(),
            start = context_start + 1,
            old = context.len(),
            new = context.len() + 1,
        );
        for line in context {
            text.push_str(&format!(" {line}\n"));
        }
        text.push_str(&format!("+{added}\n"));
        text.push_str(&format!(
            "diff --git a/{file} b/{file}\n\
             new file mode 100644\n\
             --- /dev/null\n\
             +++ b/{file}\n\
             @@ -0,0 +1,{} @@\n",
            lines.len()
        ));
        for line in &lines {
            text.push_str(&format!("+{line}\n"));
        }
        text.push_str("-- \n2.47.3\n\n");
        readme.push(added);
        let slug = title.replace(' ', "-");
        patches.push((format!("{n:04}-{slug}.patch"), text));
    }
    patches
}

/// A `multipart/mixed` mail to the project's new-merge-request address with `patches` as
/// attachments (odd ones base64, even ones plain text) and `branch` as the subject.
fn merge_request_mail(
    world: &World,
    branch: &str,
    message_id: &str,
    patches: &[(String, String)],
) -> Vec<u8> {
    const BOUNDARY: &str = "=_postern_bench_boundary_=";
    let mut mail = format!(
        "From: \"Jake the Dog\" <jake@adventuretime.ooo>\n\
         To: incoming+{}-{}-{}-merge-request@appmail.adventuretime.ooo\n\
         Subject: {branch}\n\
         Date: Wed, 24 Oct 2018 16:39:49 +0200\n\
         Message-ID: <{message_id}>\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\n\
         \n\
         --{BOUNDARY}\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         A ten-part guide, one patch per part.\n\
         \n",
        world.project.full_path_slug, world.project.id, world.jake.incoming_email_token,
    );
    for (n, (filename, content)) in patches.iter().enumerate() {
        mail.push_str(&format!(
            "--{BOUNDARY}\n\
             Content-Type: text/x-patch; charset=utf-8; name=\"{filename}\"\n\
             Content-Disposition: attachment; filename=\"{filename}\"\n"
        ));
        if n % 2 == 0 {
            mail.push_str("Content-Transfer-Encoding: base64\n\n");
            mail.push_str(&base64(content.as_bytes()));
        } else {
            mail.push_str("Content-Transfer-Encoding: 8bit\n\n");
            mail.push_str(content);
        }
        mail.push('\n');
    }
    mail.push_str(&format!("--{BOUNDARY}--\n"));
    mail.into_bytes()
}

/// Standard base64 with 76-character lines.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for (n, chunk) in data.chunks(3).enumerate() {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let word = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(word >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
        if (n + 1) % 19 == 0 {
            out.push('\n');
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Median, fastest and slowest of `MR_RUNS` merge requests with `patches`, each on a new branch
/// with a new Message-ID; also the number of commits of the last one.
async fn time_merge_requests(
    world: &World,
    label: &str,
    patches: &[(String, String)],
) -> Result<(Duration, Duration, Duration, usize), BoxError> {
    let mut times = Vec::with_capacity(MR_RUNS);
    let mut commits = 0;
    // One untimed run first: the first `git` calls of a process are slower (page cache).
    for run in 0..=MR_RUNS {
        let branch = format!("{label}-series-{run}");
        let raw = merge_request_mail(world, &branch, &format!("{branch}@bench.postern"), patches);
        let start = Instant::now();
        let outcome = receive(&world.processor, &raw).await?;
        let elapsed = start.elapsed();
        if outcome.outcome != Outcome::Processed {
            println!("  WARNING: merge request not processed: {outcome:?}");
        }
        if run > 0 {
            times.push(elapsed);
        }
        if let Some(iid) = outcome.created.and_then(|c| c.iid) {
            let mut tx = world.processor.store().begin().await?;
            commits = tx
                .merge_request_by_iid(world.project.id, iid)
                .await?
                .map_or(0, |mr| mr.commits.len());
            tx.commit().await?;
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let fastest = times[0];
    let slowest = times[times.len() - 1];
    Ok((median, fastest, slowest, commits))
}

async fn merge_request() -> Result<(), BoxError> {
    let db = TestDb::sqlite().await;
    let world = World::new(db.store.clone(), 0).await?;
    let repository = world.repositories.repository(world.project.id)?;
    let author = Identity::new("Dmitriy Zaporozhets", "dmitriy.zaporozhets@gmail.com");
    repository.commit_files(
        "master",
        &[("README", README.as_bytes())],
        "Initial commit",
        &author,
    )?;
    let series = patch_series(PATCHES);
    let size = merge_request_mail(&world, "size-probe", "size@bench.postern", &series).len();
    println!(
        "merge request by email on SQLite: {PATCHES} format-patch attachments onto master ({:.1} KiB mail), median of {MR_RUNS}",
        size as f64 / 1024.0
    );
    let (median, fastest, slowest, commits) = time_merge_requests(&world, "ten", &series).await?;
    println!(
        "  {PATCHES} patches: {:.1} ms (fastest {:.1} ms, slowest {:.1} ms), {commits} commits on the branch; per patch {:.1} ms",
        millis(median),
        millis(fastest),
        millis(slowest),
        millis(median) / PATCHES as f64
    );
    let one = patch_series(1);
    let (median_one, fastest_one, slowest_one, _) =
        time_merge_requests(&world, "one", &one).await?;
    println!(
        "  1 patch:    {:.1} ms (fastest {:.1} ms, slowest {:.1} ms); marginal cost per extra patch {:.1} ms",
        millis(median_one),
        millis(fastest_one),
        millis(slowest_one),
        (millis(median) - millis(median_one)) / (PATCHES - 1) as f64
    );
    Ok(())
}

/// `VmHWM` of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
