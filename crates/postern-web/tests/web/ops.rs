//! `/health`, `/ready`, `/metrics` and `serve`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use metrics_exporter_prometheus::PrometheusBuilder;
use postern_inbox::status::SourceStatus;
use postern_store::Visibility;
use postern_testkit::both;

use axum::body::Body;
use axum::http::Request;
use postern_testkit::BoxError;

use crate::api::token_for;
use crate::support::{Reply, Web};

/// An administrator's personal access token, as a scraper would hold it.
async fn operator(web: &Web) -> Result<String, BoxError> {
    web.user("operator", true).await?;
    token_for(web, "operator").await
}

async fn get_with_token(web: &Web, path: &str, token: &str) -> Reply {
    let request = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    web.call(request).await
}

both!(health_answers_ok_without_sign_in, |db| {
    let web = Web::new(db).await?;
    let reply = web.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ok");
    Ok(())
});

both!(ready_waits_for_every_source_to_connect, |db| {
    let imap = Arc::new(SourceStatus::new(
        "incoming_email",
        "imap",
        "u@host:993/inbox",
    ));
    let lmtp = Arc::new(SourceStatus::new(
        "service_desk_email",
        "lmtp",
        "127.0.0.1:2525",
    ));
    let web = Web::with_sources(db, vec![imap.clone(), lmtp.clone()]).await?;
    let token = operator(&web).await?;

    let reply = get_with_token(&web, "/ready", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.body.contains("incoming_email (imap): Starting"),
        "{}",
        reply.body
    );

    imap.connected();
    lmtp.failed("connection refused");
    let reply = get_with_token(&web, "/ready", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply
            .body
            .contains("service_desk_email (lmtp): Reconnecting: connection refused")
    );
    assert!(
        !reply.body.contains("incoming_email (imap): "),
        "{}",
        reply.body
    );

    lmtp.connected();
    // A watcher waiting in IMAP IDLE is connected, and says so.
    imap.idle();
    let reply = get_with_token(&web, "/ready", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(json["ready"], true);
    assert_eq!(json["store"], "ok");
    assert_eq!(json["sources"][0]["state"], "idle", "{json:#}");
    Ok(())
});

both!(ready_lists_warnings_and_stays_ready, |db| {
    let web = Web::new(db).await?;
    let token = operator(&web).await?;
    let warnings = web.state.warnings();
    warnings.set(
        "incoming_email",
        &["another postern instance (00ff) watches this mailbox".to_owned()],
    );
    let reply = get_with_token(&web, "/ready", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(
        json["warnings"],
        serde_json::json!(["incoming_email: another postern instance (00ff) watches this mailbox"])
    );
    // Setting a topic again replaces its lines.
    warnings.set("incoming_email", &[]);
    let reply = get_with_token(&web, "/ready", &token).await;
    let json: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(json["warnings"], serde_json::json!([]));
    Ok(())
});

both!(ready_fails_when_the_store_does_not_answer, |db| {
    let web = Web::new(db).await?;
    let token = operator(&web).await?;
    web.store().close().await;
    // The token cannot be checked without the store either: not ready, without detail.
    let reply = get_with_token(&web, "/ready", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // Liveness does not depend on the store.
    assert_eq!(web.get("/health", None).await.status, StatusCode::OK);
    Ok(())
});

both!(metrics_show_store_counts_and_source_gauges, |db| {
    let source = Arc::new(SourceStatus::new(
        "incoming_email",
        "microsoft_graph",
        "graph",
    ));
    source.connected();
    source.set_backlog(7);
    source.failed("token expired");
    source.connected();
    source.set_token_expiry(UNIX_EPOCH + Duration::from_secs(2_000_000_000));
    let web = Web::with_sources(db, vec![source]).await?;
    let user = web.user("alice", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    // alice is no member of the private project: rejected.
    web.receive(&web.new_issue_mail(&project, &user, "one", "text"))
        .await?;
    let token = operator(&web).await?;

    let reply = get_with_token(&web, "/metrics", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = reply.body;
    assert!(
        text.contains("postern_inbound_messages{state=\"rejected\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("postern_outbox_messages{state=\"queued\"} 1"),
        "{text}"
    );
    assert!(text.contains("postern_store_up 1"));
    let labels = "{source=\"incoming_email\",kind=\"microsoft_graph\"}";
    assert!(
        text.contains(&format!("postern_source_connected{labels} 1")),
        "{text}"
    );
    assert!(text.contains(&format!("postern_source_backlog{labels} 7")));
    assert!(text.contains(&format!("postern_source_reconnects{labels} 1")));
    assert!(text.contains(&format!(
        "postern_source_token_expiry_timestamp_seconds{labels} 2000000000"
    )));
    Ok(())
});

both!(metrics_include_what_the_recorder_collected, |db| {
    let web = Web::new(db).await?;
    let recorder = PrometheusBuilder::new().build_recorder();
    let state = web.state.clone().with_metrics(recorder.handle());
    let outcome = postern_core::ReceiveOutcome {
        inbound_id: 1,
        outcome: postern_core::Outcome::Rejected,
        handler: None,
        error: Some(postern_core::ErrorKind::UserNotFound),
        reason: None,
        created: None,
        reject_notice_queued: false,
        first_outcome: None,
        authentication: Some(Box::new(
            postern_core::authentication::AuthenticationRecord {
                policy: "dmarc".into(),
                dmarc: "fail".into(),
                act_as_user: "refused".into(),
                auto_reply: false,
                verdict: serde_json::Value::Null,
            },
        )),
    };
    metrics::with_local_recorder(&recorder, || {
        postern_web::record_receive(&outcome, "incoming", Duration::from_millis(30));
    });
    let router = postern_web::router(state);
    let web = crate::support::Web { router, ..web };
    let token = operator(&web).await?;
    let text = get_with_token(&web, "/metrics", &token).await.body;
    assert!(
        text.contains("postern_messages_total{outcome=\"rejected\",error_kind=\"user_not_found\",mailbox=\"incoming\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "postern_sender_authentication_total{dmarc=\"fail\",act_as_user=\"refused\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("postern_processing_seconds_count{mailbox=\"incoming\"} 1"),
        "{text}"
    );
    Ok(())
});

both!(
    serve_answers_on_a_real_listener_and_stops_gracefully,
    |db| {
        let web = Web::new(db).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(postern_web::serve(listener, web.state.clone(), async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await??;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("content-security-policy: default-src 'none'"));
        assert!(response.ends_with("ok"));
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server).await???;
        Ok(())
    }
);

both!(ready_and_metrics_are_for_administrators_only, |db| {
    let source = Arc::new(SourceStatus::new(
        "incoming_email",
        "imap",
        "someone@mail.example:993/INBOX",
    ));
    source.failed("authentication failed for someone");
    let web = Web::with_sources(db, vec![source]).await?;
    web.user("alice", false).await?;
    let alice_token = token_for(&web, "alice").await?;
    let alice = web.login("alice").await?;
    web.user("root", true).await?;
    let root = web.login("root").await?;
    let root_token = token_for(&web, "root").await?;

    // Liveness stays open and says nothing more than that.
    let health = web.get("/health", None).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );

    for path in ["/ready", "/metrics"] {
        let anonymous = web.get(path, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            !anonymous.body.contains("someone"),
            "{path}: {}",
            anonymous.body
        );
        let bad_token = get_with_token(&web, path, "pstn-made-up").await;
        assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED, "{path}");
        let member = web.get(path, alice.cookie()).await;
        assert_eq!(member.status, StatusCode::FORBIDDEN, "{path}");
        let member_token = get_with_token(&web, path, &alice_token).await;
        assert_eq!(member_token.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!member_token.body.contains("someone"), "{path}");

        let by_session = web.get(path, root.cookie()).await;
        assert_ne!(by_session.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_ne!(by_session.status, StatusCode::FORBIDDEN, "{path}");
        let by_token = get_with_token(&web, path, &root_token).await;
        assert!(
            by_token.body.contains("incoming_email"),
            "{path}: {}",
            by_token.body
        );
    }
    Ok(())
});
