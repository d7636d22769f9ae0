//! The loop against an in-memory queue, on tokio's paused clock: every wait is virtual, so the
//! tests assert exact times without sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::{Again, Backoff, Pace, Pauses, Queue, Ran, Shutdown, StoreFailure, Worker};

const SECOND: Duration = Duration::from_secs(1);

/// An item: its name and weight.
type Item = (&'static str, u32);

#[derive(Default)]
struct Log {
    /// When each key was listed.
    listed: Vec<(&'static str, Duration)>,
    /// Each item's run: start and end, since the test began.
    runs: Vec<(&'static str, Duration, Duration)>,
    /// Each back-off of the whole queue: why (`None` for every job unrecorded) and how long.
    backoffs: Vec<(Option<String>, Duration)>,
}

struct TestQueue {
    start: Instant,
    keys: Vec<&'static str>,
    due: Mutex<HashMap<&'static str, Vec<Item>>>,
    /// Results of the next listings: `true` fails; an empty script lists.
    fail_listing: Mutex<VecDeque<bool>>,
    /// Jobs end unrecorded while this is set.
    unrecorded: Mutex<bool>,
    /// How long a job takes.
    job_time: Duration,
    /// Jobs wait here before finishing, if set.
    gate: Option<Semaphore>,
    /// Keys whose destination is down: their jobs pause them and record nothing.
    down: Vec<&'static str>,
    /// An item whose job cannot record: the store fails.
    cannot_record: Option<&'static str>,
    pauses: Option<Pauses<&'static str>>,
    in_flight: AtomicUsize,
    started: AtomicUsize,
    max_in_flight: AtomicUsize,
    log: Mutex<Log>,
}

impl TestQueue {
    fn new(due: Vec<(&'static str, Vec<Item>)>) -> TestQueue {
        TestQueue {
            start: Instant::now(),
            keys: due.iter().map(|(key, _)| *key).collect(),
            due: Mutex::new(due.into_iter().collect()),
            fail_listing: Mutex::new(VecDeque::new()),
            unrecorded: Mutex::new(false),
            job_time: SECOND,
            gate: None,
            down: Vec::new(),
            cannot_record: None,
            pauses: None,
            in_flight: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().expect("log")
    }

    fn listed(&self, key: &str) -> Vec<Duration> {
        let log = self.log();
        log.listed
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, at)| *at)
            .collect()
    }

    fn left(&self) -> usize {
        self.due.lock().expect("due").values().map(Vec::len).sum()
    }
}

impl Queue for TestQueue {
    type Key = &'static str;
    type Item = Item;
    type Tally = usize;
    type Error = String;

    fn keys(&self) -> &[&'static str] {
        &self.keys
    }

    async fn due(&self, key: &'static str, limit: i64) -> Result<Vec<Item>, String> {
        self.log.lock().expect("log").listed.push((key, self.now()));
        let fail = self.fail_listing.lock().expect("script").pop_front();
        if fail == Some(true) {
            return Err("database is down".to_owned());
        }
        let due = self.due.lock().expect("due");
        let items = due.get(key).map(Vec::as_slice).unwrap_or_default();
        let limit = usize::try_from(limit).unwrap_or(0);
        Ok(items.iter().take(limit).copied().collect())
    }

    fn weight(&self, item: &Item) -> u32 {
        item.1
    }

    async fn run(&self, key: &'static str, job: Vec<Item>) -> Result<Ran<usize>, String> {
        let began = self.now();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.started.fetch_add(1, Ordering::SeqCst);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.job_time).await;
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate").forget();
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        for item in &job {
            self.log().runs.push((item.0, began, self.now()));
        }
        if job.iter().any(|item| Some(item.0) == self.cannot_record) {
            return Err("cannot record".to_owned());
        }
        if self.down.contains(&key) {
            if let Some(pauses) = &self.pauses {
                pauses.pause(key);
            }
            return Ok(Ran::Done(0));
        }
        if *self.unrecorded.lock().expect("flag") {
            return Ok(Ran::Unrecorded);
        }
        let mut due = self.due.lock().expect("due");
        if let Some(items) = due.get_mut(key) {
            items.retain(|item| !job.contains(item));
        }
        Ok(Ran::Done(job.len()))
    }

    fn pauses(&self) -> Option<&Pauses<&'static str>> {
        self.pauses.as_ref()
    }

    fn store_failed(&self, failure: StoreFailure<'_, String>, retry_in: Duration) {
        let why = match failure {
            StoreFailure::Round(error) => Some(error.clone()),
            StoreFailure::EveryJob { .. } => None,
        };
        self.log().backoffs.push((why, retry_in));
    }
}

impl crate::Tally for usize {
    fn add(&mut self, job: usize) {
        *self += job;
    }
}

fn pace(jobs: usize) -> Pace {
    Pace {
        page: 100,
        chunk: 1,
        jobs,
        budget: None,
        poll: 100 * SECOND,
        store_backoff: Backoff::new(SECOND, 8 * SECOND).with_jitter(0.0),
        again: Again::WhenFull,
    }
}

fn items(names: &[&'static str]) -> Vec<Item> {
    names.iter().map(|name| (*name, 1)).collect()
}

/// Waits (on the paused clock) until `done` holds; a bounded loop.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition did not hold within 1000 s of virtual time");
}

#[tokio::test(start_paused = true)]
async fn no_more_jobs_than_allowed_run_at_once() {
    let names = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];
    let queue = Arc::new(TestQueue::new(vec![("k", items(&names))]));
    let worker = Worker::new(queue.clone(), pace(3));
    let round = worker.round(&Shutdown::never()).await.expect("round");
    assert_eq!(
        (round.looked_at, round.unrecorded, round.tally),
        (10, 0, 10)
    );
    assert!(!round.stopped);
    assert_eq!(queue.max_in_flight.load(Ordering::SeqCst), 3);
    assert_eq!(queue.left(), 0);
    assert_eq!(
        queue.now(),
        4 * SECOND,
        "ten jobs of a second, three at a time"
    );
}

#[tokio::test(start_paused = true)]
async fn the_weight_budget_bounds_what_runs_at_once_and_a_heavy_job_runs_alone() {
    let due = vec![("a", 9), ("b", 3), ("c", 1), ("d", 3), ("e", 1)];
    let queue = Arc::new(TestQueue::new(vec![("k", due)]));
    let worker = Worker::new(
        queue.clone(),
        Pace {
            budget: Some(4),
            ..pace(4)
        },
    );
    let round = worker.round(&Shutdown::never()).await.expect("round");
    assert_eq!(round.tally, 5);
    let runs = queue.log().runs.clone();
    let at = |name| {
        let (_, start, end) = runs.iter().find(|(n, _, _)| *n == name).expect("ran");
        (start.as_secs(), end.as_secs())
    };
    // "a" (over the budget) takes all of it; then 3 + 1 fit together; "d" waits for "b".
    assert_eq!(
        [at("a"), at("b"), at("c"), at("d"), at("e")],
        [(0, 1), (1, 2), (1, 2), (2, 3), (2, 3)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_finishes_the_jobs_in_hand_and_starts_no_more() {
    let names = ["1", "2", "3", "4", "5", "6"];
    let mut queue = TestQueue::new(vec![("k", items(&names))]);
    queue.gate = Some(Semaphore::new(0));
    let queue = Arc::new(queue);
    let worker = Arc::new(Worker::new(queue.clone(), pace(2)));
    let (stopper, shutdown) = Shutdown::new();
    let running = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run(shutdown, None).await }
    });
    until(|| queue.started.load(Ordering::SeqCst) == 2).await;
    stopper.stop();
    tokio::time::sleep(10 * SECOND).await;
    assert!(!running.is_finished(), "the jobs in hand are not abandoned");
    queue.gate.as_ref().expect("gate").add_permits(names.len());
    tokio::time::timeout(10 * SECOND, running)
        .await
        .expect("stops once the jobs in hand are done")
        .expect("no panic");
    assert_eq!(
        queue.started.load(Ordering::SeqCst),
        2,
        "none started after the stop"
    );
    assert_eq!((queue.log().runs.len(), queue.left()), (2, 4));
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_backs_the_whole_queue_off_and_a_success_resets_it() {
    let queue = TestQueue::new(vec![("k", Vec::new())]);
    queue
        .fail_listing
        .lock()
        .expect("script")
        .extend([true, true, true, false, true]);
    let queue = Arc::new(queue);
    let worker = Arc::new(Worker::new(queue.clone(), pace(1)));
    let wake = Arc::new(Notify::new());
    let (stopper, shutdown) = Shutdown::new();
    let running = tokio::spawn({
        let (worker, wake) = (worker.clone(), wake.clone());
        async move { worker.run(shutdown, Some(&wake)).await }
    });
    until(|| queue.listed("k").len() == 4).await;
    // 1 s, 2 s, 4 s after the failures; the success waits for the poll or a wake-up.
    let secs = |at: Vec<Duration>| at.iter().map(Duration::as_secs).collect::<Vec<_>>();
    assert_eq!(secs(queue.listed("k")), [0, 1, 3, 7]);
    tokio::time::sleep(5 * SECOND).await;
    wake.notify_one();
    until(|| queue.log().backoffs.len() == 4).await;
    assert_eq!(secs(queue.listed("k")), [0, 1, 3, 7, 12]);
    let backoffs = queue.log().backoffs.clone();
    let down = Some("database is down".to_owned());
    assert_eq!(
        backoffs,
        [
            (down.clone(), SECOND),
            (down.clone(), 2 * SECOND),
            (down.clone(), 4 * SECOND),
            (down, SECOND)
        ],
        "the back-off starts over after a success"
    );
    stopper.stop();
    running.await.expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_round_whose_every_job_is_unrecorded_backs_the_queue_off() {
    let queue = TestQueue::new(vec![("k", items(&["1", "2"]))]);
    *queue.unrecorded.lock().expect("flag") = true;
    let queue = Arc::new(queue);
    let worker = Arc::new(Worker::new(queue.clone(), pace(2)));
    let round = worker.round(&Shutdown::never()).await.expect("round");
    assert_eq!((round.looked_at, round.unrecorded, round.tally), (2, 2, 0));
    let (stopper, shutdown) = Shutdown::new();
    let running = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run(shutdown, None).await }
    });
    until(|| queue.log().backoffs.len() == 2).await;
    assert_eq!(
        queue.log().backoffs,
        [(None, SECOND), (None, 2 * SECOND)],
        "every job unrecorded: the whole queue waits"
    );
    stopper.stop();
    running.await.expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn after_progress_reads_again_at_once_and_when_full_only_after_a_full_page() {
    let names = ["1", "2", "3"];
    for (again, expected) in [
        (Again::AfterProgress, vec![0, 0, 0, 100]),
        (Again::WhenFull, vec![0, 0, 100]),
    ] {
        let mut queue = TestQueue::new(vec![("k", items(&names))]);
        queue.job_time = Duration::ZERO;
        let queue = Arc::new(queue);
        let mut paced = pace(1);
        paced.page = 2;
        paced.again = again;
        let worker = Arc::new(Worker::new(queue.clone(), paced));
        let (stopper, shutdown) = Shutdown::new();
        let running = tokio::spawn({
            let worker = worker.clone();
            async move { worker.run(shutdown, None).await }
        });
        until(|| queue.listed("k").len() == expected.len()).await;
        stopper.stop();
        running.await.expect("no panic");
        let secs: Vec<u64> = queue.listed("k").iter().map(Duration::as_secs).collect();
        assert_eq!(secs, expected, "{again:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_key_waits_for_its_back_off_while_the_others_go_on() {
    let mut queue = TestQueue::new(vec![
        ("down", items(&["d1", "d2", "d3"])),
        ("up", items(&["u1", "u2"])),
    ]);
    queue.down = vec!["down"];
    queue.pauses = Some(Pauses::new(
        Backoff::new(5 * SECOND, 60 * SECOND).with_jitter(0.0),
    ));
    let queue = Arc::new(queue);
    let worker = Arc::new(Worker::new(queue.clone(), pace(1)));
    let round = worker.round(&Shutdown::never()).await.expect("round");
    assert_eq!(
        round.looked_at, 3,
        "one job of the key that went down, then the other key"
    );
    assert_eq!(round.tally, 2);
    let (stopper, shutdown) = Shutdown::new();
    let running = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run(shutdown, None).await }
    });
    until(|| queue.listed("down").len() == 3).await;
    stopper.stop();
    running.await.expect("no panic");
    // A job takes a second: paused at 1 s for 5 s, listed again at 6 s, paused again at 7 s
    // for 10 s. The idle wait ends when the pause does, not at the poll.
    let secs = |key| {
        queue
            .listed(key)
            .iter()
            .map(Duration::as_secs)
            .collect::<Vec<_>>()
    };
    assert_eq!(secs("down"), [0, 6, 17]);
    assert_eq!(secs("up"), [1, 3, 7], "the key that works is not held up");
    assert_eq!(queue.left(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_job_that_cannot_record_ends_the_round_after_the_jobs_in_flight() {
    let mut queue = TestQueue::new(vec![("k", items(&["1", "2", "3", "4", "5"]))]);
    queue.cannot_record = Some("2");
    let queue = Arc::new(queue);
    let worker = Worker::new(queue.clone(), pace(2));
    let round = worker.round(&Shutdown::never()).await;
    assert_eq!(round, Err("cannot record".to_owned()));
    // "3" may have taken the place of "1" before the failure of "2" was seen; nothing starts
    // once it is.
    let ran: Vec<&str> = queue.log().runs.iter().map(|(name, _, _)| *name).collect();
    assert!(ran.starts_with(&["1", "2"]) && ran.len() <= 3, "{ran:?}");
    assert_eq!(
        queue.left(),
        5 - (ran.len() - 1),
        "all but the failed job recorded"
    );
}
