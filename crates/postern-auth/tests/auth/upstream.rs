//! `Authentication-Results` from the MTA in front of postern: believed only from a trusted
//! authserv-id, and only above that MTA's own `Received` line.

use crate::common::*;
use postern_auth::{AuthResult, Connection, Permission, Policy, Source, decide};
use postern_testkit::dns::DnsServer;

const TRUSTED: &str = "mx.postern.test";

/// The trusted MTA's `Received` line.
const RECEIVED: &str = "Received: from mail.acme.test (mail.acme.test [192.0.2.7])\r\n\
\tby mx.postern.test (Postfix) with ESMTPS id 4Q1; Sun, 6 Dec 2026 10:00:01 +0000\r\n";

const PASS: &str = "dkim=pass header.d=acme.test header.s=s1;\r\n\tspf=pass smtp.mailfrom=bob@acme.test;\r\n\tdmarc=pass (p=reject dis=none) header.from=acme.test";

/// An unsigned mail from bob@acme.test (p=reject), which fails when verified here.
async fn setup() -> Option<(DnsServer, String)> {
    let (_, record) = ed25519_key();
    let records = domain_records("acme.test", "s1", &record, "v=DMARC1; p=reject");
    let dns = DnsServer::start_or_skip(ORIGIN, &records)?;
    Some((dns, message("bob@acme.test", "close", "/close")))
}

#[tokio::test]
async fn a_trusted_mta_s_results_above_its_received_line_are_used() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    let delivered = format!("Authentication-Results: {TRUSTED};\r\n\t{PASS}\r\n{RECEIVED}{raw}");

    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;

    assert_eq!(
        verdict.source,
        Source::Upstream {
            authserv_id: TRUSTED.to_string()
        }
    );
    assert_eq!(verdict.dmarc.result, AuthResult::Pass, "{verdict:?}");
    assert_eq!(verdict.dkim[0].domain.as_deref(), Some("acme.test"));
    assert_eq!(verdict.dkim[0].selector.as_deref(), Some("s1"));
    assert!(verdict.dkim[0].aligned);
    assert_eq!(verdict.spf.result, AuthResult::Pass);
    assert_eq!(
        decide(Policy::Require, &verdict).may_act_as_user,
        Permission::Allowed
    );
}

#[tokio::test]
async fn a_trusted_mta_s_failure_keeps_the_published_policy() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    // No policy in the header: it is read from DNS.
    let delivered = format!(
        "Authentication-Results: {TRUSTED}; dkim=none; dmarc=fail header.from=acme.test\r\n{RECEIVED}{raw}"
    );
    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;
    assert_eq!(verdict.dmarc.result, AuthResult::Fail, "{verdict:?}");
    assert_eq!(verdict.dmarc.policy, postern_auth::DmarcPolicy::Reject);
    assert!(matches!(
        decide(Policy::Dmarc, &verdict).may_act_as_user,
        Permission::Refused { .. }
    ));
}

#[tokio::test]
async fn results_of_an_untrusted_authserv_id_are_ignored() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    let delivered =
        format!("Authentication-Results: relay.evil.test;\r\n\t{PASS}\r\n{RECEIVED}{raw}");

    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;

    assert_eq!(verdict.source, Source::Local);
    assert_eq!(verdict.dmarc.result, AuthResult::Fail, "{verdict:?}");
    assert!(matches!(
        decide(Policy::Dmarc, &verdict).may_act_as_user,
        Permission::Refused { .. }
    ));
}

#[tokio::test]
async fn a_forged_trusted_header_below_the_trusted_received_line_is_ignored() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    // The sender wrote the header (and a Received line naming the trusted host) into the
    // message; the real MTA's line is on top.
    let forged = format!(
        "Authentication-Results: {TRUSTED};\r\n\t{PASS}\r\n\
         Received: from x by mx.postern.test; Sun, 6 Dec 2026 09:00:00 +0000\r\n"
    );
    let delivered = format!("{RECEIVED}{forged}{raw}");

    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;

    assert_eq!(verdict.source, Source::Local, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);

    // With the real MTA's failing header on top, the forged pass below still does not count.
    let delivered = format!(
        "Authentication-Results: {TRUSTED}; dmarc=fail (p=reject) header.from=acme.test\r\n\
         {RECEIVED}{forged}{raw}"
    );
    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;
    assert_eq!(
        verdict.source,
        Source::Upstream {
            authserv_id: TRUSTED.to_string()
        }
    );
    assert_eq!(verdict.dmarc.result, AuthResult::Fail, "{verdict:?}");
}

#[tokio::test]
async fn without_trusted_ids_every_header_is_ignored() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let delivered = format!("Authentication-Results: {TRUSTED};\r\n\t{PASS}\r\n{RECEIVED}{raw}");
    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;
    assert_eq!(verdict.source, Source::Local);
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
}

#[tokio::test]
async fn the_connection_is_read_from_the_trusted_received_line_for_spf() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    let delivered = format!("Return-Path: <bob@acme.test>\r\n{RECEIVED}{raw}");
    let connection = auth.connection_from_received(delivered.as_bytes());
    assert_eq!(connection.client_ip, Some(GOOD_IP.parse().expect("IP")));
    assert_eq!(connection.helo.as_deref(), Some("mail.acme.test"));
    assert_eq!(connection.mail_from.as_deref(), Some("bob@acme.test"));

    let verdict = auth.verify(delivered.as_bytes(), &connection).await;
    assert_eq!(verdict.spf.result, AuthResult::Pass, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Pass);
}

#[tokio::test]
async fn a_trusted_pass_about_another_from_domain_is_not_applied_to_this_one() {
    let Some((dns, raw)) = setup().await else {
        return;
    };
    let auth = authenticator(&dns, &[TRUSTED]);
    // A pass for evil.test cannot vouch for a message whose From is bob@acme.test.
    let delivered = format!(
        "Authentication-Results: {TRUSTED}; dkim=pass header.d=evil.test; \
         dmarc=pass header.from=evil.test\r\n{RECEIVED}{raw}"
    );
    let verdict = auth
        .verify(delivered.as_bytes(), &Connection::default())
        .await;
    assert_eq!(verdict.source, Source::Local, "{verdict:?}");
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
    assert!(
        verdict.reasons.iter().any(|r| r.contains("evil.test")),
        "{:?}",
        verdict.reasons
    );
}
