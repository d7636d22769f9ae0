//! DMARC: the From domain's published policy decides what an unauthenticated mail may do.

use crate::common::*;
use postern_auth::{AuthResult, Connection, DmarcPolicy, Permission, Policy, decide};
use postern_testkit::dns::DnsServer;

#[tokio::test]
async fn an_unsigned_mail_from_a_p_reject_domain_fails_dmarc_and_is_refused() {
    let (_, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message("bob@acme.test", "close", "/close");

    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;

    assert!(verdict.dkim.is_empty());
    assert_eq!(verdict.dmarc.result, AuthResult::Fail, "{verdict:?}");
    assert_eq!(verdict.dmarc.policy, DmarcPolicy::Reject);
    let decision = decide(Policy::Dmarc, &verdict);
    let Permission::Refused { reason } = decision.may_act_as_user else {
        panic!("not refused: {decision:?}");
    };
    assert!(reason.contains("p=reject"), "{reason}");
    assert!(!decision.may_auto_reply);
    assert_eq!(
        decide(Policy::Off, &verdict).may_act_as_user,
        Permission::Allowed
    );
}

#[tokio::test]
async fn a_p_none_domain_is_allowed_under_dmarc_and_refused_under_require() {
    let (_, record) = ed25519_key();
    let records = domain_records("small.test", "s1", &record, "v=DMARC1; p=none");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message(
        "carol@small.test",
        "question",
        "How do I reset my password?",
    );

    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;

    assert_eq!(verdict.dmarc.result, AuthResult::Fail, "{verdict:?}");
    assert_eq!(verdict.dmarc.policy, DmarcPolicy::None);
    let lenient = decide(Policy::Dmarc, &verdict);
    assert_eq!(lenient.may_act_as_user, Permission::Allowed);
    assert!(lenient.may_auto_reply);
    let strict = decide(Policy::Require, &verdict);
    assert!(
        matches!(strict.may_act_as_user, Permission::Refused { .. }),
        "{strict:?}"
    );
    assert!(
        !strict.may_auto_reply,
        "DMARC fails: no automatic answer under require"
    );
}

#[tokio::test]
async fn a_from_naming_two_domains_is_refused_because_dmarc_cannot_protect_it() {
    let (key, record) = ed25519_key();
    let records = domain_records("evil.test", "s1", &record, "v=DMARC1; p=none");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = key.sign(
        &message("mallory@evil.test, bob@acme.test", "x", "/close"),
        "evil.test",
        "s1",
    );

    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;

    assert_eq!(verdict.dmarc.from_domain, None, "{verdict:?}");
    for policy in [Policy::Dmarc, Policy::Require] {
        let decision = decide(policy, &verdict);
        assert!(
            matches!(decision.may_act_as_user, Permission::Refused { .. }),
            "{policy:?}"
        );
        assert!(!decision.may_auto_reply);
    }
}
