//! DKIM: signatures that verify, and a body changed after signing.

use crate::common::*;
use postern_auth::{AuthResult, Connection, Permission, Policy, Source, decide};
use postern_testkit::dns::DnsServer;

#[tokio::test]
async fn rsa_and_ed25519_signatures_of_the_from_domain_pass_dkim_and_dmarc() {
    let (rsa, rsa_record) = rsa_key();
    let (ed, ed_record) = ed25519_key();
    let mut records = domain_records("acme.test", "rsa", &rsa_record, "v=DMARC1; p=reject");
    records.push(postern_testkit::dns::txt_record(
        "ed._domainkey.acme",
        &ed_record,
    ));
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let raw = message("Alice <alice@acme.test>", "hello", "Hi there.");
    let signed = ed.sign(&rsa.sign(&raw, "acme.test", "rsa"), "acme.test", "ed");

    let verdict = auth.verify(signed.as_bytes(), &Connection::default()).await;

    assert_eq!(verdict.source, Source::Local);
    assert_eq!(verdict.dkim.len(), 2, "{verdict:?}");
    for check in &verdict.dkim {
        assert_eq!(check.result, AuthResult::Pass, "{check:?}");
        assert_eq!(check.domain.as_deref(), Some("acme.test"));
        assert!(check.aligned);
    }
    let selectors: Vec<_> = verdict
        .dkim
        .iter()
        .filter_map(|d| d.selector.as_deref())
        .collect();
    assert!(selectors.contains(&"rsa") && selectors.contains(&"ed"));
    assert_eq!(verdict.dmarc.result, AuthResult::Pass);
    assert_eq!(verdict.dmarc.aligned_dkim.as_deref(), Some("acme.test"));
    assert_eq!(verdict.dmarc.from_domain.as_deref(), Some("acme.test"));
    for policy in [Policy::Off, Policy::Dmarc, Policy::Require] {
        let decision = decide(policy, &verdict);
        assert_eq!(decision.may_act_as_user, Permission::Allowed, "{policy:?}");
        assert!(decision.may_auto_reply, "{policy:?}");
    }
    let json = serde_json::to_value(&verdict).expect("serialising the verdict");
    assert_eq!(json["dmarc"]["result"], "pass");
    assert_eq!(json["dmarc"]["policy"], "reject");
    assert_eq!(json["source"]["kind"], "local");
}

#[tokio::test]
async fn a_body_changed_after_signing_fails_dkim_and_dmarc_and_is_refused() {
    let (key, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let signed = key.sign(
        &message(
            "alice@acme.test",
            "pay",
            "Pay invoice 1 to the usual account.",
        ),
        "acme.test",
        "s1",
    );
    let tampered = signed.replace("the usual account", "account 666");

    let verdict = auth
        .verify(tampered.as_bytes(), &Connection::default())
        .await;

    assert_eq!(verdict.dkim.len(), 1);
    assert_eq!(verdict.dkim[0].result, AuthResult::Fail, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
    let decision = decide(Policy::Dmarc, &verdict);
    assert!(matches!(
        decision.may_act_as_user,
        Permission::Refused { .. }
    ));
    assert!(!decision.may_auto_reply);
    assert!(
        verdict.reasons.iter().any(|r| r.contains("acme.test")),
        "{:?}",
        verdict.reasons
    );
}
