//! `cargo bench -p postern-store --bench search`: the issue search (`Tx::search_issues`, what
//! the project page and the API run) over 100 000 issues of one project, with descriptions and
//! a comment on every fifth, on SQLite (a file) and on PostgreSQL (a fresh database on the
//! testkit's private server; skipped with `POSTERN_SKIP_PG=1`). The aim: p95 under 50 ms.
//!
//! Prints p50 / p95 / max per query and the time the index took to fill (the triggers of
//! migration 0016 run on every insert; PostgreSQL is then `ANALYZE`d); asserts nothing about
//! speed. `ISSUES=…` changes the count, `RUNS=…` the timed runs per query.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark's panic is its failure report"
)]

use std::time::{Duration, Instant};

use postern_store::{
    IssueQuery, IssueSort, IssueState, IssueVisibility, NewIssue, NewNote, NewProject, NewUser,
    Noteable, SearchText, Store, StoreOptions, Visibility,
};
use postern_testkit::{TestDb, create_database, pg};

/// Issues created per transaction while filling.
const BATCH: usize = 5_000;

/// The vocabulary: the first words are the most frequent (see `Words`).
const COMMON: &[&str] = &[
    "the",
    "printer",
    "is",
    "not",
    "working",
    "paper",
    "jam",
    "network",
    "error",
    "after",
    "update",
    "login",
    "fails",
    "with",
    "invoice",
    "customer",
    "email",
    "server",
    "slow",
    "page",
    "report",
    "missing",
    "button",
    "crash",
    "when",
    "opening",
    "settings",
    "mobile",
    "app",
    "timeout",
    "password",
    "reset",
    "link",
    "broken",
    "export",
    "csv",
    "import",
    "calendar",
    "sync",
    "notification",
    "delayed",
    "search",
    "results",
    "wrong",
    "order",
    "refund",
    "shipping",
    "address",
    "label",
    "scanner",
];

/// A deterministic stream of words, skewed so that a few are common and most are rare.
struct Words(u64);

impl Words {
    fn next_u64(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self) -> String {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        // u³ crowds the picks at the front: "the" and "printer" are in most issues, each of
        // the 20 000 `wNNNNN` words in a handful.
        let index = (u * u * u * 20_050.0) as usize;
        match COMMON.get(index) {
            Some(word) => (*word).to_owned(),
            None => format!("w{index:05}"),
        }
    }

    fn text(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| self.word())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let issues: usize = env_number("ISSUES", 100_000);
    let runs: usize = env_number("RUNS", 100);
    println!("postern-store benchmark: issue search over {issues} issues, {runs} runs a query");
    println!();
    let sqlite = TestDb::sqlite().await;
    bench("SQLite", &sqlite.store, None, issues, runs).await;
    println!();
    match pg::shared_admin_url() {
        pg::PgChoice::Skip => println!("PostgreSQL: skipped (POSTERN_SKIP_PG=1)"),
        pg::PgChoice::Url(admin) => {
            let url = create_database(&admin).await;
            let store = Store::connect_with(&url, &StoreOptions::default())
                .await
                .unwrap();
            bench("PostgreSQL", &store, Some(&url), issues, runs).await;
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `postgres_url`: the database to `ANALYZE` once filled, as autovacuum does soon after a
/// large change, so the planner's statistics are those of a running instance.
async fn bench(label: &str, store: &Store, postgres_url: Option<&str>, issues: usize, runs: usize) {
    let started = Instant::now();
    let project_id = fill(store, issues).await;
    println!(
        "{label}: {issues} issues and {} comments written in {:.1} s",
        issues / 5,
        started.elapsed().as_secs_f64()
    );
    if let Some(url) = postgres_url {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    }
    let base = IssueQuery::new(project_id, IssueVisibility::All);
    let with = |change: &dyn Fn(&mut IssueQuery)| {
        let mut query = base.clone();
        change(&mut query);
        query
    };
    let text = |t: &'static str| with(&move |q: &mut IssueQuery| q.text = SearchText::parse(t));
    let cases: Vec<(&str, IssueQuery)> = vec![
        ("list, page 1", base.clone()),
        ("list, page 200", with(&|q| q.page = 200)),
        (
            "list, recently updated",
            with(&|q| q.sort = IssueSort::Updated),
        ),
        ("common word", text("printer")),
        ("two words", text("network error")),
        ("phrase", text("\"paper jam\"")),
        ("phrase of the two commonest", text("\"the printer\"")),
        ("prefix", text("sync*")),
        ("word -exclusion", text("invoice -refund")),
        ("only -exclusion", text("-printer")),
        ("rare word", text("w19000")),
        ("no match", text("nonexistentword")),
        (
            "word + open + member",
            with(&|q| {
                q.text = SearchText::parse("printer");
                q.state = Some(IssueState::Opened);
                q.visibility = IssueVisibility::Member { user_id: 1 };
            }),
        ),
        (
            "common word, page 50",
            with(&|q| {
                q.text = SearchText::parse("the");
                q.page = 50;
            }),
        ),
    ];
    println!(
        "{:<26} {:>8} {:>10} {:>10} {:>10}",
        "query", "results", "p50 ms", "p95 ms", "max ms"
    );
    for (name, query) in cases {
        let mut times = Vec::with_capacity(runs);
        let mut shown = 0;
        // One warm-up run, then the timed ones.
        for run in 0..=runs {
            let t = Instant::now();
            let mut tx = store.begin_read_only().await.unwrap();
            let page = tx.search_issues(&query).await.unwrap();
            tx.commit().await.unwrap();
            if run > 0 {
                times.push(t.elapsed());
            }
            shown = page.items.len();
        }
        times.sort();
        println!(
            "{name:<26} {shown:>8} {:>10.2} {:>10.2} {:>10.2}",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 95)),
            ms(times.last().copied().unwrap_or_default()),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// One user, one project, `issues` issues (a tenth closed) and a comment on every fifth.
async fn fill(store: &Store, issues: usize) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let author = tx
        .create_user(NewUser::new("author", "Author", "author@example.com"))
        .await
        .unwrap();
    let project = tx
        .create_project(NewProject {
            namespace_path: "bench".to_owned(),
            path: "search".to_owned(),
            name: "search".to_owned(),
            visibility: Visibility::Private,
            default_branch: "main".to_owned(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut words = Words(18);
    let mut next = 0;
    while next < issues {
        let mut tx = store.begin().await.unwrap();
        for n in next..(next + BATCH).min(issues) {
            let mut new = NewIssue::new(project.id, author.id, &words.text(6), &words.text(40));
            new.confidential = n % 17 == 0;
            let issue = tx.create_issue(new).await.unwrap();
            if n % 5 == 0 {
                tx.create_note(NewNote::new(
                    Noteable::Issue(issue.id),
                    author.id,
                    &words.text(25),
                ))
                .await
                .unwrap();
            }
            if n % 10 == 0 {
                tx.update_issue(
                    issue.id,
                    postern_store::IssueUpdate {
                        state: Some(IssueState::Closed),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
        next += BATCH;
    }
    project.id
}
