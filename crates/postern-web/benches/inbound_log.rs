//! Pages per second of the mail desk's inbound log with 100 000 messages in a SQLite store
//! (the aim: p95 under 50 ms per page). Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p postern-web --bench inbound_log` (MESSAGES=… to change the count).
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark's panic is its failure report"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use postern_core::content::UploadPolicy;
use postern_core::{Processor, ProcessorConfig};
use postern_store::{
    InboundFinish, InboundSource, InboundState, Mailbox, NewInbound, NewUser, Timestamp, WebSession,
};
use postern_testkit::TestDb;
use postern_web::{WebConfig, WebState};
use tower::ServiceExt;

const BATCH: usize = 5_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::var("MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let db = TestDb::sqlite().await;
    let data = tempfile::tempdir().unwrap();
    let filling = Instant::now();
    let mut next = 0;
    while next < count {
        let mut tx = db.store.begin().await.unwrap();
        for n in next..(next + BATCH).min(count) {
            let raw = format!(
                "From: sender{n}@example.com\r\nTo: incoming+key{n}@example.com\r\n\
                 Message-ID: <m{n}@example.com>\r\nSubject: message {n}\r\n\r\n{}\r\n",
                "body text ".repeat(40)
            );
            let outcome = tx
                .insert_inbound(&NewInbound {
                    mailbox: if n % 7 == 0 {
                        Mailbox::ServiceDesk
                    } else {
                        Mailbox::Incoming
                    },
                    source: InboundSource::Lmtp,
                    message_id: Some(format!("m{n}@example.com")),
                    raw: raw.into_bytes().into(),
                    source_identity: None,
                    content_identity: format!("bench-{n}"),
                    declared_size: None,
                })
                .await
                .unwrap();
            let postern_store::InsertOutcome::New(id) = outcome else {
                panic!("duplicate in bench data");
            };
            let rejected = n % 10 == 0;
            tx.finish_inbound(
                id,
                &InboundFinish {
                    state: if rejected {
                        InboundState::Rejected
                    } else {
                        InboundState::Processed
                    },
                    handler: Some(postern_store::HandlerKind::CreateNote),
                    error_kind: rejected.then_some(postern_store::ErrorKind::UserNotFound),
                    reason: rejected.then(|| {
                        "We couldn't figure out what user corresponds to the email.".into()
                    }),
                    outcome: Some(if rejected { "rejected" } else { "processed" }.into()),
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        next += BATCH;
    }
    println!(
        "filled {count} messages in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let mut tx = db.store.begin().await.unwrap();
    let mut admin = NewUser::new("root", "root", "root@example.com");
    admin.admin = true;
    let admin = tx.create_user(admin).await.unwrap();
    // A session made directly: the benchmark measures pages, not argon2.
    let id = "bench-session";
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let now = Timestamp::now();
    tx.create_session(&WebSession {
        id_hash: hash,
        user_id: admin.id,
        csrf_token: "x".into(),
        created_at: now,
        expires_at: now.plus_seconds(3600),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let processor = Arc::new(Processor::new(
        db.store.clone(),
        postern_git::Repositories::new(data.path().join("repositories")),
        ProcessorConfig {
            incoming_address: None,
            service_desk_address: None,
            host: "localhost".into(),
            uploads: UploadPolicy {
                directory: data.path().join("uploads"),
                max_bytes: 1,
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
        },
    ));
    let state = WebState::new(
        processor,
        Vec::new(),
        WebConfig::new("bench", "http://127.0.0.1"),
    );
    let router = postern_web::router(state);
    let total = i64::try_from(count).unwrap();

    for (label, make) in [
        (
            "newest page",
            Box::new(|_: i64| "/admin/mail".to_owned()) as Box<dyn Fn(i64) -> String>,
        ),
        (
            "deep page",
            Box::new(move |i: i64| format!("/admin/mail?before={}", total - (i * 997) % total)),
        ),
        (
            "state=rejected",
            Box::new(move |i: i64| {
                format!(
                    "/admin/mail?state=rejected&before={}",
                    total - (i * 997) % total
                )
            }),
        ),
        (
            "mailbox=service_desk",
            Box::new(|_: i64| "/admin/mail?mailbox=service_desk".to_owned()),
        ),
    ] {
        let mut times = Vec::new();
        let started = Instant::now();
        for i in 0..300 {
            let request = Request::get(make(i))
                .header(header::COOKIE, format!("postern_session={id}"))
                .body(Body::empty())
                .unwrap();
            let t = Instant::now();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            times.push(t.elapsed());
            assert!(body.len() > 1000);
        }
        let elapsed = started.elapsed();
        times.sort();
        let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
        println!(
            "{label:22} {:7.1} pages/s   p50 {:6.2} ms   p95 {:6.2} ms   max {:6.2} ms",
            times.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(50)),
            ms(pct(95)),
            ms(times[times.len() - 1]),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
