//! The Microsoft Graph watcher against the stand-in (crates/postern-testkit/src/graph.rs):
//! taking messages in, acknowledging only after the intake said yes, paging, shutdown, and
//! `check`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use postern_inbox::graph::{GraphError, check};
use postern_inbox::oauth::OAuthError;
use postern_inbox::status::SourceState;
use postern_testkit::graph::Fault;

use crate::graph_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_messages_are_taken_in_then_marked_read() {
    let stand_in = stand_in().await;
    let ids: Vec<String> = (0..3)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("every message marked read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    let status = running.stop().await;

    let stored = intake.stored.lock().unwrap().clone();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            stored.get(&identity(id)),
            Some(&raw(n)),
            "message {n} stored as sent"
        );
    }
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stand_in.deleted(USER),
        vec![],
        "not deleted unless configured"
    );
    let snapshot = status.snapshot();
    assert_eq!(snapshot.messages_taken, 3);
    assert_eq!(snapshot.state, SourceState::Stopped);
    assert!(snapshot.last_error.is_none());
    assert!(snapshot.token_expires_at.unwrap() > SystemTime::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_after_delivery_deletes_what_was_taken_in() {
    let stand_in = stand_in().await;
    let ids: Vec<String> = (0..2)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    let mut settings = settings(&stand_in);
    settings.delete_after_delivery = true;
    let running = spawn(settings, Arc::default());
    wait_for("both messages deleted", || {
        stand_in.deleted(USER).len() == 2
    })
    .await;
    let intake = running.intake.clone();
    running.stop().await;

    assert!(stand_in.messages(USER, "inbox").is_empty());
    for message in stand_in.deleted(USER) {
        assert!(message.is_read, "marked read before it was deleted");
        assert!(ids.contains(&message.id));
        assert!(
            intake
                .stored
                .lock()
                .unwrap()
                .contains_key(&identity(&message.id))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_taken_in_and_none_skipped() {
    let stand_in = stand_in().await;
    let mut unread = Vec::new();
    for n in 0..11 {
        if n % 4 == 3 {
            stand_in.add_read_message(USER, "inbox", &raw(n));
        } else {
            unread.push(stand_in.add_message(USER, "inbox", &raw(n)));
        }
    }
    let mut settings = settings(&stand_in);
    settings.page_size = 2;
    let running = spawn(settings, Arc::default());
    wait_for("every message read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    running.stop().await;

    let mut taken = intake.taken_log();
    taken.sort();
    let mut expected: Vec<String> = unread.iter().map(|id| identity(id)).collect();
    expected.sort();
    assert_eq!(taken, expected, "each unread message taken exactly once");
    // Page by page: the first page's messages are marked read before the next listing, which
    // asks for the first page again (they have left it). Following `$skip` instead would pass
    // over as many unread messages as were marked read meanwhile.
    let requests = stand_in.requests();
    let listings: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.ends_with("/messages") && r.method == "GET")
        .map(|(at, _)| at)
        .collect();
    assert!(
        requests.iter().all(|r| !r.query.contains("skip")),
        "no page was reached through $skip"
    );
    let first_patch = requests.iter().position(|r| r.method == "PATCH").unwrap();
    assert!(
        first_patch < listings[1],
        "a message is acknowledged before the next page is listed"
    );
    let last_patch = requests.iter().rposition(|r| r.method == "PATCH").unwrap();
    let pages = listings.iter().filter(|&&at| at < last_patch).count();
    assert_eq!(
        pages,
        unread.len().div_ceil(2),
        "one listing per page of two, all in the first pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_messages_are_left_alone() {
    let stand_in = stand_in().await;
    let read = stand_in.add_read_message(USER, "inbox", &raw(0));
    let unread = stand_in.add_message(USER, "inbox", &raw(1));
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("the unread message read", || all_read(&stand_in)).await;
    // Let a few more passes run: the read message must still not be fetched.
    let lists = |s: &postern_testkit::graph::GraphStandIn| {
        s.requests()
            .iter()
            .filter(|r| r.path.ends_with("/messages") && r.method == "GET")
            .count()
    };
    let before = lists(&stand_in);
    wait_for("two more passes", || lists(&stand_in) >= before + 2).await;
    let intake = running.intake.clone();
    running.stop().await;

    assert_eq!(intake.taken_log(), vec![identity(&unread)]);
    // Ids end in `-x/y+z=`, sent as `-x%2Fy+z=`; the part before is unique per message.
    let read_prefix = read.split('-').next().unwrap();
    let touched_read = stand_in
        .requests()
        .iter()
        .any(|r| r.path.contains(read_prefix));
    assert!(
        !touched_read,
        "the read message was neither fetched nor changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_failure_acknowledges_nothing_and_later_takes_once() {
    let stand_in = stand_in().await;
    let ids: Vec<String> = (0..2)
        .map(|n| stand_in.add_message(USER, "inbox", &raw(n)))
        .collect();
    let intake = Arc::new(MemIntake::default());
    intake.failing.store(true, Ordering::SeqCst);
    let running = spawn(settings(&stand_in), intake.clone());
    wait_for("two failed takes", || {
        intake.failed_takes.load(Ordering::SeqCst) >= 2
    })
    .await;

    let patched = stand_in.requests().iter().any(|r| r.method == "PATCH");
    assert!(!patched, "nothing marked read while the intake fails");
    assert!(stand_in.messages(USER, "inbox").iter().all(|m| !m.is_read));
    let snapshot = running.status.snapshot();
    assert_eq!(snapshot.state, SourceState::Reconnecting);
    assert!(
        snapshot.last_error.unwrap().contains("store unavailable"),
        "the status says why"
    );

    intake.failing.store(false, Ordering::SeqCst);
    wait_for("both messages read", || all_read(&stand_in)).await;
    running.stop().await;
    let mut taken = intake.taken_log();
    taken.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| identity(id)).collect();
    expected.sort();
    assert_eq!(taken, expected, "each taken in exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_already_stored_are_only_marked_read() {
    let stand_in = stand_in().await;
    let id = stand_in.add_message(USER, "inbox", &raw(0));
    let intake = Arc::new(MemIntake::default());
    // As after a crash between `take` and the PATCH: stored, still unread on the server.
    intake.stored.lock().unwrap().insert(identity(&id), raw(0));
    let running = spawn(settings(&stand_in), intake.clone());
    wait_for("the message read", || all_read(&stand_in)).await;
    running.stop().await;

    assert!(intake.taken_log().is_empty(), "not taken in a second time");
    let fetched = stand_in
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/$value"));
    assert!(!fetched, "its body was not downloaded again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_watcher_promptly_even_while_it_waits() {
    let stand_in = stand_in().await;
    // Idle: connected and waiting for the next poll.
    let mut idle_settings = settings(&stand_in);
    idle_settings.poll_interval = Duration::from_secs(3600);
    let running = spawn(idle_settings, Arc::default());
    wait_for("connected", || {
        running.status.snapshot().state == SourceState::Connected
    })
    .await;
    let status = running.stop().await;
    assert_eq!(status.snapshot().state, SourceState::Stopped);

    // Throttled: told to come back in five minutes.
    stand_in.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after_secs: 300,
        },
    );
    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("throttled", || {
        stand_in.requests().iter().any(|r| r.status == 429)
    })
    .await;
    let status = running.stop().await;
    assert_eq!(status.snapshot().state, SourceState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_token_folder_and_counts_without_changing_anything() {
    let stand_in = stand_in().await;
    stand_in.add_message(USER, "inbox", &raw(0));
    stand_in.add_message(USER, "inbox", &raw(1));
    stand_in.add_read_message(USER, "inbox", &raw(2));

    let report = check(&settings(&stand_in)).await.unwrap();
    assert_eq!(report.folder_name, "Inbox");
    assert_eq!((report.unread, report.total), (2, 3));
    assert!(report.token_expires_at > SystemTime::now() + Duration::from_secs(3000));
    assert!(report.location.contains(USER));
    assert_eq!(
        stand_in
            .messages(USER, "inbox")
            .iter()
            .filter(|m| m.is_read)
            .count(),
        1,
        "check changes nothing"
    );

    let mut missing_folder = settings(&stand_in);
    missing_folder.folder = "no-such-folder".to_owned();
    assert!(matches!(
        check(&missing_folder).await,
        Err(GraphError::NotFound(_))
    ));

    let mut unknown_user = settings(&stand_in);
    unknown_user.user = "nobody@contoso.example".to_owned();
    let error = check(&unknown_user).await.unwrap_err();
    assert!(error.to_string().contains("ErrorInvalidUser"), "{error}");

    let mut wrong_secret = settings(&stand_in);
    wrong_secret.client_secret = "not-the-secret-xyz".into();
    let error = check(&wrong_secret).await.unwrap_err();
    assert!(
        matches!(&error, GraphError::Token(OAuthError::Rejected { status: 401, error, .. }) if error == "invalid_client"),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(!text.contains("not-the-secret-xyz") && !text.contains(SECRET));
}

/// The stand-in refuses what Azure AD and Graph refuse, so the tests above prove something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_checks_what_graph_checks() {
    let stand_in = stand_in().await;
    let id = stand_in.add_message(USER, "inbox", &raw(0));
    let http = postern_inbox::http::client(None).unwrap();
    let base = stand_in.url();
    let token_url = format!("{base}/{TENANT}/oauth2/v2.0/token");
    let ask = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let token_url = token_url.clone();
        async move {
            let response = http.post(&token_url).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let form = |grant: &str, secret: &str, scope: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("client_id", CLIENT.to_owned()),
            ("client_secret", secret.to_owned()),
            ("scope", scope.to_owned()),
        ]
    };
    let graph_scope = format!("{base}/.default");
    let (status, body) = ask(form("password", SECRET, &graph_scope)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = ask(form("client_credentials", "wrong", &graph_scope)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(body["error_codes"][0], 7000215);
    let (status, body) = ask(form("client_credentials", SECRET, &base)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let other_tenant = http
        .post(format!("{base}/other-tenant/oauth2/v2.0/token"))
        .form(&form("client_credentials", SECRET, &graph_scope))
        .send()
        .await
        .unwrap();
    assert_eq!(other_tenant.status().as_u16(), 400);

    let (status, body) = ask(form("client_credentials", SECRET, &graph_scope)).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = ask(form(
        "client_credentials",
        SECRET,
        "https://outlook.office365.com/.default",
    ))
    .await;
    let outlook_token = body["access_token"].as_str().unwrap().to_owned();

    let folder = format!("{base}/v1.0/users/{USER}/mailFolders/inbox");
    let get = |url: String, bearer: Option<String>| {
        let http = http.clone();
        async move {
            let mut request = http.get(url);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (status, body) = get(folder.clone(), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("InvalidAuthenticationToken"));
    let (status, _) = get(folder.clone(), Some(outlook_token)).await;
    assert_eq!(status, 401, "a token for another audience is refused");
    let (status, _) = get(folder.clone(), Some(token.clone())).await;
    assert_eq!(status, 200);
    let (status, _) = get(
        format!("{base}/v1.0/users/{USER}/mailFolders/archive"),
        Some(token.clone()),
    )
    .await;
    assert_eq!(status, 404);

    let message = format!(
        "{base}/v1.0/users/{USER}/messages/{}",
        id.replace('/', "%2F")
    );
    let not_json = http
        .patch(&message)
        .bearer_auth(&token)
        .body("isRead=true")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 415);
    let wrong_field = http
        .patch(&message)
        .bearer_auth(&token)
        .json(&serde_json::json!({"isRead": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_field.status().as_u16(), 400);
    assert!(!stand_in.messages(USER, "inbox")[0].is_read);

    stand_in.expire_tokens();
    let (status, body) = get(folder, Some(token)).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"));
}

/// Over HTTPS, as in production: the stand-in's private CA is trusted through
/// `extra_ca_file`, and without it the certificate is refused and the watcher keeps retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let stand_in = postern_testkit::graph::GraphStandIn::start_tls(TENANT, CLIENT, SECRET).await;
    stand_in.add_mailbox(USER);
    let id = stand_in.add_message(USER, "inbox", &raw(0));
    assert!(stand_in.url().starts_with("https://127.0.0.1:"));

    let untrusted = spawn(settings(&stand_in), Arc::default());
    wait_for("a failed attempt", || {
        untrusted.status.snapshot().last_error.is_some()
    })
    .await;
    let error = untrusted.status.snapshot().last_error.unwrap();
    assert!(error.contains("token endpoint unreachable"), "{error}");
    assert!(error.contains("certificate"), "the cause is named: {error}");
    assert!(
        stand_in.requests().is_empty(),
        "no request without a trusted certificate"
    );
    untrusted.stop().await;

    let mut trusting = settings(&stand_in);
    trusting.extra_ca_file = stand_in.ca_file().map(|p| p.to_path_buf());
    let running = spawn(trusting.clone(), Arc::default());
    wait_for("the message read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    running.stop().await;
    assert_eq!(intake.taken_log(), vec![identity(&id)]);
    assert_eq!(check(&trusting).await.unwrap().total, 1);

    let mut missing_ca = trusting;
    missing_ca.extra_ca_file = Some("/nonexistent/ca.pem".into());
    let error = check(&missing_ca).await.unwrap_err();
    assert!(
        matches!(&error, GraphError::Config(text) if text.contains("/nonexistent/ca.pem")),
        "{error:?}"
    );
}
