//! Standalone instances that find one another on a mailbox through the Redis of `redis:`:
//! without a shared store each processes every message it fetches first, so each says so —
//! in its log, and `postern check` fails naming the other instance. Without `redis:`, `check`
//! warns that a second instance would go unnoticed.

use std::time::{Duration, Instant};

use postern_testkit::mailserver::MailServer;
use postern_testkit::redis::RedisServer;

use crate::sources::{BOUND, config, serve, stop, wait_for_log};
use crate::support::Sandbox;

/// The id an instance keeps in its data directory (made at its first start).
fn instance_id(sandbox: &Sandbox) -> String {
    let path = sandbox.path().join("postern-data/instance-id");
    let deadline = Instant::now() + BOUND;
    loop {
        if let Ok(id) = std::fs::read_to_string(&path) {
            return id.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `postern check` in `sandbox` until its output contains `needle` (bounded).
fn check_until(sandbox: &Sandbox, needle: &str) -> String {
    let deadline = Instant::now() + BOUND;
    loop {
        let out = sandbox.run(&["check"]).all_output();
        if out.contains(needle) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "check never said {needle:?}; last output:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_standalone_instances_on_one_mailbox_without_a_shared_store_say_so() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let Some(redis) = RedisServer::start_or_skip() else {
        return;
    };
    let extra = format!("redis:\n  url: \"{}\"\n", redis.url());
    let a = Sandbox::with_config(&config(&server, "twins", &extra));
    let b = Sandbox::with_config(&config(&server, "twins", &extra));
    let first = serve(&a);
    let a_id = instance_id(&a);
    // B is not running yet: its check sees A on the mailbox.
    let out = check_until(&b, &a_id);
    assert!(
        out.contains("FAIL instances on incoming_email: other postern instance(s)")
            && out.contains("without a shared store"),
        "{out}"
    );
    // check writes nothing in the data directory (it may run as another user than serve).
    assert!(!b.path().join("postern-data/instance-id").exists());
    let second = serve(&b);
    // B's first look finds A: it warns at once.
    wait_for_log(&b, "watch this mailbox without a shared store");
    let b_id = instance_id(&b);
    assert_ne!(a_id, b_id);
    let log = std::fs::read_to_string(b.path().join("serve.log")).unwrap_or_default();
    assert!(log.contains(&a_id), "B's warning names A: {log}");
    let out = check_until(&a, &b_id);
    assert!(out.contains("FAIL instances on incoming_email"), "{out}");
    stop(second);
    stop(first);
}

#[test]
fn check_without_redis_warns_that_a_second_instance_would_go_unnoticed() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let sandbox = Sandbox::with_config(&config(&server, "alone", ""));
    let out = sandbox.run(&["check"]).all_output();
    assert!(out.contains("WARN instances: no redis: section"), "{out}");
}
