//! The Microsoft Graph watcher against a stand-in that throttles as Graph does under a backlog:
//! every few calls, deterministically or at random from a fixed seed, a call is refused with
//! `429` (`Retry-After` in seconds), `503` (`Retry-After` as an HTTP date) or `509` (none), and
//! tokens live 20 s. A backlog of 500 messages must drain completely, each message taken in
//! and marked read exactly once, no call sent inside a `Retry-After` window, at most four calls
//! at once, and tokens renewed only as their lifetime requires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_testkit::graph::Throttling;

use crate::graph_support::*;

const BACKLOG: usize = 500;
const TOKEN_LIFETIME: Duration = Duration::from_secs(20);
/// Far above the expected minute: a watcher that stalls fails here instead of hanging CI.
const DEADLINE: Duration = Duration::from_secs(240);

async fn drain_under(plan: Throttling) {
    let stand_in = stand_in().await;
    stand_in.set_token_lifetime(TOKEN_LIFETIME);
    stand_in.set_latency(Duration::from_millis(5));
    let ids: Vec<String> = (0..BACKLOG)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    stand_in.throttle(plan);
    let mut settings = settings(&stand_in);
    settings.page_size = 50;

    let started = Instant::now();
    let running = spawn(settings, Arc::default());
    wait_within("the backlog drained", DEADLINE, || all_read(&stand_in)).await;
    let elapsed = started.elapsed();
    let intake = running.intake.clone();
    let status = running.stop().await;

    let mut taken = intake.taken_log();
    taken.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| identity(id)).collect();
    expected.sort();
    assert_eq!(taken, expected, "every message taken in exactly once");
    for message in stand_in.messages(USER, "inbox") {
        assert_eq!(message.read_marks, 1, "{} marked read once", message.id);
    }
    let refusals = stand_in.throttle_refusals();
    assert!(refusals >= 10, "the stand-in throttled ({refusals} times)");
    let violations = stand_in.throttle_violations();
    assert!(
        violations.is_empty(),
        "calls inside a Retry-After window: {violations:?}"
    );
    let in_flight = stand_in.max_in_flight();
    assert!(in_flight <= 4, "{in_flight} calls at once");
    assert!(in_flight >= 2, "messages are worked on concurrently");
    let tokens = stand_in.tokens_issued();
    let allowed = 2.0 * elapsed.as_secs_f64() / TOKEN_LIFETIME.as_secs_f64() + 1.0;
    assert!(
        tokens as f64 <= allowed,
        "{tokens} tokens in {elapsed:?}, at most {allowed:.1} allowed"
    );
    assert!(
        stand_in.requests().iter().all(|r| r.status != 401),
        "Graph never saw an expired token"
    );
    assert_eq!(status.snapshot().messages_taken, BACKLOG as u64);
    eprintln!(
        "drained {BACKLOG} messages in {elapsed:.1?}: {refusals} throttles, {tokens} tokens, \
         at most {in_flight} calls at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_while_every_25th_call_is_throttled() {
    drain_under(Throttling {
        every: 25,
        chance: 0.0,
        seed: 0,
        retry_after_secs: 1,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_while_calls_are_throttled_at_random() {
    drain_under(Throttling {
        every: 0,
        chance: 0.04,
        seed: 0x1905_2026,
        retry_after_secs: 1,
    })
    .await;
}
