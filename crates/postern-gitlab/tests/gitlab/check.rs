//! `postern check --gitlab-config`: the service and process checks, and the delivery path —
//! a JWT GitLab accepts (proved without delivering a message), a wrong secret reported, Redis
//! reachable or not.

use std::path::Path;

use postern_gitlab::{
    CheckStatus, ConfigFormat, DeliveryMethod, GitlabMailboxes, MailboxSettings, RedisSettings,
    WebhookSecret, check,
};
use postern_store::Mailbox;
use postern_testkit::gitlab::write_secret_file;

use crate::common::*;

fn config(
    gitlab_url: &str,
    secret_file: &Path,
    method: DeliveryMethod,
    redis: &str,
) -> GitlabMailboxes {
    let mut incoming = MailboxSettings::with_defaults(Mailbox::Incoming, method);
    incoming.enabled = true;
    incoming.address = Some("incoming+%{key}@example.com".to_owned());
    incoming.secret = Some(WebhookSecret::File(secret_file.to_owned()));
    GitlabMailboxes {
        format: ConfigFormat::GitlabYml,
        incoming: Some(incoming),
        service_desk: None,
        gitlab_host: Some("127.0.0.1".to_owned()),
        gitlab_url: Some(gitlab_url.to_owned()),
        redis: RedisSettings::new(redis),
    }
}

/// A systemd folder with postern's unit, and a /proc with one `postern serve`.
fn host(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let systemd = dir.join("systemd");
    std::fs::create_dir_all(&systemd).unwrap();
    std::fs::write(systemd.join("postern-gitlab.service"), "[Unit]\n").unwrap();
    let proc_dir = dir.join("proc");
    std::fs::create_dir_all(proc_dir.join("4242")).unwrap();
    std::fs::write(
        proc_dir.join("4242/cmdline"),
        b"/usr/bin/postern\0serve\0--gitlab-config\0x\0",
    )
    .unwrap();
    (systemd, proc_dir)
}

#[tokio::test]
async fn the_right_secret_is_proved_without_delivering_mail() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let secret = dir.path().join("secret");
    write_secret_file(&secret, &INCOMING_SECRET);
    let (systemd, proc_dir) = host(dir.path());
    let lines = check(
        &config(
            &gitlab.url(),
            &secret,
            DeliveryMethod::Webhook,
            "redis://127.0.0.1:1",
        ),
        &[&systemd],
        &proc_dir,
    )
    .await;
    for line in &lines {
        // This configuration names no Redis: arbitration between instances is not checked.
        let expected = if line.name == "Deliveries arbitrated between postern instances?" {
            CheckStatus::Skipped
        } else {
            CheckStatus::Ok
        };
        assert_eq!(line.status, expected, "{line:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.name.starts_with("JWT accepted by http://127.0.0.1"))
    );
    // The probe with a random key was refused; the real token carried an empty body, which
    // GitLab's worker drops without a reply to anyone.
    assert_eq!(gitlab.unauthorized(), 1);
    let received = gitlab.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].body.is_empty());
}

#[tokio::test]
async fn a_secret_gitlab_does_not_have_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let secret = dir.path().join("secret");
    write_secret_file(&secret, &SERVICE_DESK_SECRET);
    let (systemd, proc_dir) = host(dir.path());
    let lines = check(
        &config(
            &gitlab.url(),
            &secret,
            DeliveryMethod::Webhook,
            "redis://127.0.0.1:1",
        ),
        &[&systemd],
        &proc_dir,
    )
    .await;
    let jwt = lines
        .iter()
        .find(|l| l.name.starts_with("JWT accepted"))
        .unwrap();
    assert_eq!(jwt.status, CheckStatus::Failed);
    assert!(
        jwt.reason
            .as_deref()
            .unwrap_or("")
            .contains("refused postern's token"),
        "{jwt:?}"
    );
    assert!(gitlab.received().is_empty());

    // A secret file GitLab itself would not load fails the configuration check.
    std::fs::write(&secret, "too short\n").unwrap();
    let lines = check(
        &config(
            &gitlab.url(),
            &secret,
            DeliveryMethod::Webhook,
            "redis://127.0.0.1:1",
        ),
        &[&systemd],
        &proc_dir,
    )
    .await;
    let configured = lines
        .iter()
        .find(|l| l.name == "Delivery to GitLab configured?")
        .unwrap();
    assert_eq!(configured.status, CheckStatus::Failed);
    assert!(
        configured
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("Base64"),
        "{configured:?}"
    );
}

#[tokio::test]
async fn service_and_processes_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir_all(proc_dir.join("77")).unwrap();
    std::fs::write(
        proc_dir.join("77/cmdline"),
        b"ruby\0/usr/bin/mail_room\0-c\0mail_room.yml\0",
    )
    .unwrap();
    let secret = dir.path().join("secret");
    write_secret_file(&secret, &INCOMING_SECRET);
    let mut c = config(
        "http://127.0.0.1:1",
        &secret,
        DeliveryMethod::Webhook,
        "redis://127.0.0.1:1",
    );
    c.incoming.as_mut().unwrap().enabled = false;
    let lines = check(&c, &[&empty], &proc_dir).await;
    let status = |name: &str| lines.iter().find(|l| l.name == name).map(|l| l.status);
    assert_eq!(status("Incoming Email"), Some(CheckStatus::Skipped));
    assert_eq!(
        lines[0].reason.as_deref(),
        Some("Reply by email is disabled in config/gitlab.yml")
    );
    assert_eq!(status("postern-gitlab enabled?"), Some(CheckStatus::Failed));
    assert_eq!(status("postern running?"), Some(CheckStatus::Failed));
    assert_eq!(status("mail_room stopped?"), Some(CheckStatus::Failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reachable_or_not() {
    let Some(mut server) = postern_testkit::redis::RedisServer::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (systemd, proc_dir) = host(dir.path());
    let secret = dir.path().join("secret");
    let c = config(
        "http://127.0.0.1:1",
        &secret,
        DeliveryMethod::Sidekiq,
        &server.url(),
    );
    let lines = check(&c, &[&systemd], &proc_dir).await;
    let redis = lines
        .iter()
        .find(|l| l.name == "Redis reachable for incoming_email?")
        .unwrap();
    assert_eq!(redis.status, CheckStatus::Ok, "{redis:?}");
    server.stop();
    let lines = check(&c, &[&systemd], &proc_dir).await;
    let redis = lines
        .iter()
        .find(|l| l.name == "Redis reachable for incoming_email?")
        .unwrap();
    assert_eq!(redis.status, CheckStatus::Failed);
    // Sidekiq delivery needs this Redis: the instances arbitrate through it too, and wait
    // while it does not answer.
    let arbitration = lines
        .iter()
        .find(|l| l.name == "Redis reachable for arbitration between postern instances?")
        .unwrap();
    assert_eq!(arbitration.status, CheckStatus::Failed, "{arbitration:?}");
}

#[tokio::test]
async fn without_a_redis_in_gitlabs_configuration_duplicates_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (systemd, proc_dir) = host(dir.path());
    let secret = dir.path().join("secret");
    write_secret_file(&secret, &INCOMING_SECRET);
    let c = config(
        "http://127.0.0.1:1",
        &secret,
        DeliveryMethod::Webhook,
        "redis://127.0.0.1:1",
    );
    let lines = check(&c, &[&systemd], &proc_dir).await;
    let line = lines
        .iter()
        .find(|l| l.name == "Deliveries arbitrated between postern instances?")
        .unwrap();
    assert_eq!(line.status, CheckStatus::Skipped);
    assert!(
        line.reason
            .as_deref()
            .unwrap()
            .contains("would deliver duplicates"),
        "{line:?}"
    );
}
