//! DNS that does not answer: a temporary error, never a pass, and a temporary decision.

use crate::common::*;
use postern_auth::{
    AuthConfig, AuthResult, Authenticator, Connection, DnsConfig, Permission, Policy, decide,
};
use postern_testkit::dns::DnsServer;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_stopped_dns_server_gives_temperror_and_a_temporary_decision() {
    let (key, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(mut dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let signed = key.sign(
        &message("alice@acme.test", "hi", "Hello."),
        "acme.test",
        "s1",
    );
    dns.stop();

    let verdict = auth.verify(signed.as_bytes(), &Connection::default()).await;

    assert_eq!(verdict.dkim[0].result, AuthResult::TempError, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::TempError);
    for policy in [Policy::Dmarc, Policy::Require] {
        let decision = decide(policy, &verdict);
        assert!(
            matches!(decision.may_act_as_user, Permission::Temporary { .. }),
            "{policy:?}: {decision:?}"
        );
        assert!(!decision.may_auto_reply);
    }

    // Back up: the same message passes (the failure was not cached).
    dns.restart().expect("restarting the DNS server");
    let verdict = auth.verify(signed.as_bytes(), &Connection::default()).await;
    assert_eq!(verdict.dmarc.result, AuthResult::Pass, "{verdict:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_deadline() {
    // A bound UDP socket that reads nothing: queries vanish, as behind a firewall.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binding");
    let auth = Authenticator::new(&AuthConfig {
        dns: DnsConfig {
            nameservers: vec![silent.local_addr().expect("address")],
            timeout: Duration::from_millis(200),
            attempts: 1,
        },
        ..AuthConfig::default()
    })
    .expect("authenticator");
    let (key, _) = ed25519_key();
    let signed = key.sign(
        &message("alice@acme.test", "hi", "Hello."),
        "acme.test",
        "s1",
    );

    let started = Instant::now();
    let verdict = auth.verify(signed.as_bytes(), &Connection::default()).await;

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(verdict.dmarc.result, AuthResult::TempError, "{verdict:?}");
    assert!(matches!(
        decide(Policy::Dmarc, &verdict).may_act_as_user,
        Permission::Temporary { .. }
    ));
}
