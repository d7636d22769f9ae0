//! The Microsoft Graph watcher when things go wrong: tokens that expire, a wrong client secret,
//! throttling with `Retry-After`, unavailable service and dropped connections. Every wait is
//! bounded (graph_support::wait_for).

use std::sync::Arc;
use std::time::Duration;

use postern_inbox::status::SourceState;
use postern_testkit::graph::Fault;

use crate::graph_support::*;

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_and_no_message_lost() {
    let stand_in = stand_in().await;
    let mut ids: Vec<String> = (0..2)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("the first messages read", || all_read(&stand_in)).await;
    assert_eq!(stand_in.tokens_issued(), 1);

    // As if the hour had passed while the watcher still holds its token.
    stand_in.expire_tokens();
    ids.extend((2..5).map(|n| stand_in.add_message(USER, "inbox", &raw(n))));
    wait_for("the later messages read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    let status = running.stop().await;

    assert!(
        stand_in.requests().iter().any(|r| r.status == 401),
        "the old token was refused"
    );
    assert_eq!(stand_in.tokens_issued(), 2, "one new token after the 401");
    assert_eq!(
        sorted(intake.taken_log()),
        sorted(ids.iter().map(|id| identity(id)).collect()),
        "every message taken in exactly once"
    );
    assert_eq!(status.snapshot().messages_taken, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_renewed_before_it_expires() {
    let stand_in = stand_in().await;
    stand_in.set_token_lifetime(Duration::from_secs(5));
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("a second token", || stand_in.tokens_issued() >= 2).await;
    let first_expiry = running.status.snapshot().token_expires_at.unwrap();
    running.stop().await;

    let token_requests: Vec<_> = stand_in
        .requests()
        .into_iter()
        .filter(|r| r.is_token_request())
        .collect();
    let renewed_after = token_requests[1].at - token_requests[0].at;
    assert!(
        renewed_after < Duration::from_secs(5),
        "renewed {renewed_after:?} after the first, before its 5 s ran out"
    );
    // At 80 % of the lifetime: not before every poll (every 200 ms here) because the token is
    // short.
    assert!(
        renewed_after >= Duration::from_millis(3900),
        "renewed only {renewed_after:?} after the first, long before it was due"
    );
    assert!(
        stand_in.requests().iter().all(|r| r.status != 401),
        "Graph never saw an expired token"
    );
    assert!(first_expiry > std::time::UNIX_EPOCH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_reported_without_the_secret_and_retried() {
    let stand_in = stand_in().await;
    stand_in.add_message(USER, "inbox", &raw(0));
    let wrong = "Wrong~Secret.value-123";
    let mut settings = settings(&stand_in);
    settings.client_secret = wrong.into();
    let running = spawn(settings, Arc::default());
    let token_requests = || {
        stand_in
            .requests()
            .iter()
            .filter(|r| r.is_token_request())
            .count()
    };
    wait_for("a second token request", || token_requests() >= 2).await;

    let snapshot = running.status.snapshot();
    assert_eq!(snapshot.state, SourceState::Reconnecting);
    let error = snapshot.last_error.unwrap();
    assert!(
        error.contains("AADSTS7000215") && error.contains("invalid_client"),
        "{error}"
    );
    assert!(!error.contains(wrong) && !error.contains(SECRET), "{error}");
    assert_eq!(stand_in.tokens_issued(), 0);
    assert!(
        stand_in.requests().iter().all(|r| r.is_token_request()),
        "no Graph call without a token"
    );
    let status = running.stop().await;
    assert_eq!(status.snapshot().messages_taken, 0);
    assert!(!format!("{:?}", status.snapshot()).contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_waits_for_retry_after() {
    let stand_in = stand_in().await;
    let id = stand_in.add_message(USER, "inbox", &raw(0));
    stand_in.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after_secs: 2,
        },
    );
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("the message read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    running.stop().await;

    let graph_calls: Vec<_> = stand_in
        .requests()
        .into_iter()
        .filter(|r| !r.is_token_request())
        .collect();
    assert_eq!(graph_calls[0].status, 429);
    let waited = graph_calls[1].at - graph_calls[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "the next call came {waited:?} after a 429 with Retry-After: 2"
    );
    assert_eq!(intake.taken_log(), vec![identity(&id)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_service_and_dropped_connections_are_retried() {
    let stand_in = stand_in().await;
    let ids: Vec<String> = (0..3)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    stand_in.fail_next(1, Fault::Unavailable);
    stand_in.fail_next(1, Fault::CloseConnection);
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("every message read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    let status = running.stop().await;

    let statuses: Vec<u16> = stand_in
        .requests()
        .iter()
        .filter(|r| !r.is_token_request())
        .map(|r| r.status)
        .take(2)
        .collect();
    assert_eq!(statuses, vec![503, 0], "both faults were served");
    assert_eq!(
        sorted(intake.taken_log()),
        sorted(ids.iter().map(|id| identity(id)).collect())
    );
    assert!(status.snapshot().reconnects <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_acknowledgement_does_not_take_a_message_in_twice() {
    let stand_in = stand_in().await;
    let ids: Vec<String> = (0..2)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    stand_in.fail_next_method("PATCH", 1, Fault::Unavailable);
    stand_in.fail_next_method("PATCH", 1, Fault::CloseConnection);
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("every message read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    running.stop().await;

    let patches: Vec<u16> = stand_in
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        &patches[..2],
        &[503, 0],
        "the first acknowledgements failed"
    );
    assert_eq!(
        sorted(intake.taken_log()),
        sorted(ids.iter().map(|id| identity(id)).collect()),
        "stored once although acknowledging failed at first"
    );
    let downloads = stand_in
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/$value"))
        .count();
    assert_eq!(downloads, 2, "stored messages are not downloaded again");
}
