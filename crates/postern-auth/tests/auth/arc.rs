//! ARC: a mailing list changes a signed message and seals what it saw.

use crate::common::*;
use base64::Engine as _;
use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput};
use postern_auth::{AuthResult, Connection, Permission, Policy, decide};
use postern_testkit::dns::{DnsServer, txt_record};

/// `raw` as a list forwards it: subject tag, footer, and an ARC set of `list.test` recording
/// that the author's DKIM signature passed on arrival.
fn forward_through_list(raw: &str, list_key_der: &[u8]) -> String {
    let modified = raw
        .replace("Subject: ", "Subject: [team] ")
        .replace("\r\n\r\n", "\r\nList-Id: <team.list.test>\r\n\r\n")
        + "-- \r\nteam mailing list\r\n";
    let parsed = AuthenticatedMessage::parse(modified.as_bytes()).expect("parsing");
    let results = AuthenticationResults::new("list.test")
        .with_dkim_result(&DkimOutput::pass(), "alice@acme.test");
    let key = Ed25519Key::from_pkcs8_der(list_key_der).expect("list key");
    let set = ArcSealer::from_key(key)
        .domain("list.test")
        .selector("arc")
        .headers(["From", "To", "Subject", "DKIM-Signature", "List-Id"])
        .seal(&parsed, &results, &ArcOutput::default())
        .expect("sealing");
    format!("{}{modified}", set.to_header())
}

#[tokio::test]
async fn a_list_s_arc_seal_verifies_while_the_changed_author_signature_does_not() {
    let (author, author_record) = ed25519_key();
    let list_der = Ed25519Key::generate_pkcs8().expect("list key");
    let list_public = base64::engine::general_purpose::STANDARD.encode(
        Ed25519Key::from_pkcs8_der(&list_der)
            .expect("list key")
            .public_key(),
    );
    let mut records = domain_records("acme.test", "s1", &author_record, "v=DMARC1; p=reject");
    records.push(txt_record(
        "arc._domainkey.list",
        &format!("v=DKIM1; k=ed25519; p={list_public}"),
    ));
    let Some(dns) = DnsServer::start_or_skip(ORIGIN, &records) else {
        return;
    };
    let auth = authenticator(&dns, &[]);
    let signed = author.sign(
        &message("alice@acme.test", "plan", "The plan."),
        "acme.test",
        "s1",
    );
    let forwarded = forward_through_list(&signed, &list_der);

    let verdict = auth
        .verify(forwarded.as_bytes(), &Connection::default())
        .await;

    assert_eq!(verdict.arc, AuthResult::Pass, "{verdict:?}");
    assert_eq!(
        verdict.dkim[0].result,
        AuthResult::Fail,
        "the list changed the body"
    );
    // ARC is recorded, not trusted: any sealer can claim anything, so DMARC still decides.
    assert_eq!(verdict.dmarc.result, AuthResult::Fail);
    assert!(matches!(
        decide(Policy::Dmarc, &verdict).may_act_as_user,
        Permission::Refused { .. }
    ));

    let tampered = forwarded.replace("The plan.", "Another plan.");
    let verdict = auth
        .verify(tampered.as_bytes(), &Connection::default())
        .await;
    assert_ne!(verdict.arc, AuthResult::Pass, "{verdict:?}");
}
