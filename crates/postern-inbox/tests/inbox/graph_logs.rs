//! What the Graph watcher logs: something for each step, and never a secret, a token or a
//! message's content. A small subscriber collects every event and span field as text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::graph_support::*;

/// Every event and span, formatted as `target level field=value …`.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_span: Arc<AtomicU64>,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
        Id::from_u64(self.next_span.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields("record".to_owned());
        values.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut fields = Fields(format!("{} {}", metadata.target(), metadata.level()));
        event.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

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
