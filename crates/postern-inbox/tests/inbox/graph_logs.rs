//! What the Graph watcher logs: something for each step, and never a secret, a token or a
//! message's content, as collected by `log_capture::Capture`.

use std::sync::Arc;

use crate::graph_support::*;
use crate::log_capture::Capture;

// current_thread: the watcher task runs on this thread, where the subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn logs_carry_no_secret_token_or_content() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let stand_in = stand_in().await;
    let content = "Subject-Marker-7731 Body-Marker-7731";
    stand_in.add_message(
        USER,
        "inbox",
        format!("From: a@example.com\r\nSubject: {content}\r\n\r\n{content}\r\n").as_bytes(),
    );

    let wrong = "Wrong-Secret-Marker-5521";
    let mut wrong_settings = settings(&stand_in);
    wrong_settings.client_secret = wrong.into();
    let failing = spawn(wrong_settings, Arc::default());
    wait_for("a refused token request", || {
        stand_in.requests().iter().any(|r| r.status == 401)
    })
    .await;
    failing.stop().await;

    let running = spawn(settings(&stand_in), Arc::default());
    wait_for("the message read", || all_read(&stand_in)).await;
    // The watcher logs the intake once the mark-as-read call has returned, which may be after
    // the stand-in has recorded it.
    wait_for("the intake logged", || {
        capture
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("messages taken in"))
    })
    .await;
    stand_in.expire_tokens();
    let tokens = stand_in.tokens_issued();
    wait_for("a token after the 401", || {
        stand_in.tokens_issued() > tokens
    })
    .await;
    running.stop().await;

    let lines = capture.lines.lock().unwrap().clone();
    let text = lines.join("\n");
    assert!(
        text.contains("AADSTS7000215"),
        "the refusal is logged:\n{text}"
    );
    assert!(
        text.contains("messages taken in"),
        "taking in is logged:\n{text}"
    );
    for forbidden in [SECRET, wrong, "Marker-7731", "Bearer"] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} in the logs:\n{text}"
        );
    }
}
