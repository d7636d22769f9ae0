//! SPF, when the client IP and envelope sender are known, and its DMARC alignment.

use crate::common::*;
use postern_auth::{AuthResult, Connection, Permission, Policy, decide};
use postern_testkit::dns::DnsServer;

fn connection(ip: &str) -> Connection {
    Connection {
        client_ip: Some(ip.parse().expect("an IP")),
        helo: Some("mail.acme.test".to_string()),
        mail_from: Some("alice@acme.test".to_string()),
    }
}

#[tokio::test]
async fn spf_passes_from_the_authorised_ip_and_aligns_dmarc_without_a_signature() {
    let (_, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message("alice@acme.test", "hi", "Hello.");

    let verdict = auth.verify(raw.as_bytes(), &connection(GOOD_IP)).await;

    assert_eq!(verdict.spf.result, AuthResult::Pass, "{verdict:?}");
    assert_eq!(verdict.spf.domain.as_deref(), Some("acme.test"));
    assert_eq!(verdict.dmarc.result, AuthResult::Pass);
    assert_eq!(verdict.dmarc.aligned_spf.as_deref(), Some("acme.test"));
    assert_eq!(
        decide(Policy::Require, &verdict).may_act_as_user,
        Permission::Allowed
    );
}

#[tokio::test]
async fn spf_fails_from_another_ip_and_dmarc_with_it() {
    let (_, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=quarantine");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message("alice@acme.test", "hi", "Hello.");

    let verdict = auth
        .verify(raw.as_bytes(), &connection("198.51.100.9"))
        .await;

    assert_eq!(verdict.spf.result, AuthResult::Fail, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
    assert!(matches!(
        decide(Policy::Dmarc, &verdict).may_act_as_user,
        Permission::Refused { .. }
    ));
}

#[tokio::test]
async fn without_a_client_ip_spf_is_none_not_a_guess() {
    let (_, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message("alice@acme.test", "hi", "Hello.");
    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;
    assert_eq!(verdict.spf.result, AuthResult::None);
}
