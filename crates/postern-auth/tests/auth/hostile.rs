//! Hostile messages: bounded work whatever they carry.

use crate::common::*;
use postern_auth::{AuthResult, Connection, MAX_DKIM_SIGNATURES};
use postern_testkit::dns::DnsServer;
use std::time::{Duration, Instant};

#[tokio::test]
async fn padding_with_signatures_checks_at_most_the_cap_and_the_author_s_first() {
    let (key, record) = ed25519_key();
    let (junk, _) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    // The real signature at the bottom, 200 signatures of domains without keys above it.
    let mut raw = key.sign(
        &message("alice@acme.test", "hi", "Hello."),
        "acme.test",
        "s1",
    );
    for i in 0..200 {
        raw = junk.sign(&raw, &format!("pad{i}.test"), "s1");
    }

    let started = Instant::now();
    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(verdict.dkim.len(), MAX_DKIM_SIGNATURES);
    assert_eq!(verdict.dkim[0].domain.as_deref(), Some("acme.test"));
    assert_eq!(verdict.dkim[0].result, AuthResult::Pass);
    assert_eq!(verdict.dmarc.result, AuthResult::Pass, "{verdict:?}");
}

#[tokio::test]
async fn garbage_is_a_permanent_error_not_a_panic() {
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &[]) else {
        return;
    };
    let auth = authenticator(&dns, &["mx.postern.test"]);
    let long_ar = format!(
        "Authentication-Results: mx.postern.test; {}\r\nReceived: by mx.postern.test\r\n",
        "dkim=pass (((((".repeat(2000)
    );
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\nno header".to_vec(),
        b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=; b=!!!; bh=???\r\nFrom: a@b.test\r\n\r\nx"
            .to_vec(),
        b"From: \xff\xfe@\xff.test\r\n\r\n".to_vec(),
        long_ar.into_bytes(),
        "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.test; s=s; b=AA==\r\n"
            .repeat(60)
            .into_bytes(),
    ];
    for input in inputs {
        let verdict = auth.verify(&input, &Connection::default()).await;
        assert_ne!(verdict.dmarc.result, AuthResult::Pass, "{verdict:?}");
    }
}

#[tokio::test]
async fn a_message_with_thousands_of_header_fields_is_not_checked_field_by_field() {
    let (key, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    // 20 000 header fields: finding each signed field would scan them all.
    let fields: String = (0..20_000).map(|i| format!("X-Pad-{i}: x\r\n")).collect();
    let padded = key.sign(
        &format!("{fields}{}", message("alice@acme.test", "hi", "Hello.")),
        "acme.test",
        "s1",
    );

    let started = Instant::now();
    let verdict = auth.verify(padded.as_bytes(), &Connection::default()).await;

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(verdict.dkim[0].result, AuthResult::PermError, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
}

#[tokio::test]
async fn a_signature_naming_thousands_of_fields_is_a_permerror_beside_a_good_one() {
    let (key, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let signed = key.sign(
        &message("alice@acme.test", "hi", "Hello."),
        "acme.test",
        "s1",
    );
    let huge = format!(
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=acme.test; s=s1; h={}from;\r\n bh=AAAA; b=AAAA\r\n",
        "x-absent:".repeat(5000)
    );
    let raw = format!("{huge}{signed}");

    let verdict = auth.verify(raw.as_bytes(), &Connection::default()).await;

    let results: Vec<AuthResult> = verdict.dkim.iter().map(|d| d.result).collect();
    assert!(results.contains(&AuthResult::PermError), "{verdict:?}");
    assert!(results.contains(&AuthResult::Pass), "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Pass);
}
