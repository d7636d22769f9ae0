//! The `Authentication-Results` parser and the trust boundary.

use super::*;

fn hosts() -> Vec<String> {
    vec!["mx.acme.test".to_string()]
}

fn ids() -> Vec<String> {
    vec!["mx.acme.test".to_string()]
}

#[test]
fn parses_methods_properties_and_a_policy_in_a_comment() {
    let header = parse(
        "mx.acme.test 1; dkim=pass (2048-bit key) header.d=Example.org header.s=sel \
         header.b=abc; spf = softfail smtp.mailfrom=\"bounce@example.org\"; arc=none; \
         dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=example.org",
    )
    .expect("parses");
    assert_eq!(header.authserv_id, "mx.acme.test");
    assert_eq!(header.dkim.len(), 1);
    assert_eq!(header.dkim[0].domain.as_deref(), Some("example.org"));
    assert_eq!(header.dkim[0].selector.as_deref(), Some("sel"));
    assert_eq!(header.dkim[0].result, AuthResult::Pass);
    assert_eq!(
        header.spf,
        Some((AuthResult::SoftFail, Some("example.org".to_string())))
    );
    assert_eq!(header.arc, Some(AuthResult::None));
    assert_eq!(
        header.dmarc,
        Some((
            AuthResult::Fail,
            Some("example.org".to_string()),
            Some(DmarcPolicy::Reject)
        ))
    );
}

#[test]
fn reads_rspamd_s_policy_and_a_quoted_authserv_id() {
    let header = parse(
        "\"mx.acme.test\"; dmarc=pass (policy=quarantine) header.from=a.test; \
         dkim=pass header.i=@a.test",
    )
    .expect("parses");
    assert_eq!(header.authserv_id, "mx.acme.test");
    assert_eq!(
        header.dmarc.as_ref().and_then(|d| d.2),
        Some(DmarcPolicy::Quarantine)
    );
    assert_eq!(header.dkim[0].domain.as_deref(), Some("a.test"));
}

#[test]
fn a_semicolon_inside_a_comment_or_quotes_does_not_split() {
    let header = parse("mx.acme.test; dkim=fail (bad; really) reason=\"x; y\" header.d=b.test")
        .expect("parses");
    assert_eq!(header.dkim.len(), 1);
    assert_eq!(header.dkim[0].domain.as_deref(), Some("b.test"));
}

#[test]
fn unknown_results_claim_nothing() {
    let header = parse("mx.acme.test; dmarc=bestguesspass; spf=weird").expect("parses");
    assert_eq!(header.dmarc.map(|d| d.0), Some(AuthResult::None));
    assert_eq!(header.spf.map(|s| s.0), Some(AuthResult::None));
    assert!(parse("").is_none());
    assert!(parse("   ;;;").is_none());
}

#[test]
fn only_trusted_headers_above_the_trusted_received_line_count() {
    let raw = b"Authentication-Results: other.test; dmarc=pass header.from=a.test\r\n\
Authentication-Results: mx.acme.test; dmarc=fail header.from=a.test\r\n\
Authentication-Results: mx.acme.test; dkim=pass header.d=a.test\r\n\
Received: from c (c [192.0.2.1]) by mx.acme.test; date\r\n\
Authentication-Results: mx.acme.test; dmarc=pass header.from=a.test; dkim=pass header.d=z.test\r\n\
\r\n";
    let up = trusted_results(raw, &ids(), &hosts()).expect("trusted results");
    assert_eq!(up.authserv_id, "mx.acme.test");
    assert_eq!(up.dmarc.map(|d| d.0), Some(AuthResult::Fail));
    assert_eq!(
        up.dkim.len(),
        1,
        "the two headers above merge, the one below is ignored"
    );
    assert_eq!(up.dkim[0].domain.as_deref(), Some("a.test"));
}

#[test]
fn nothing_counts_without_a_trusted_received_line_or_trusted_ids() {
    let raw = b"Authentication-Results: mx.acme.test; dmarc=pass header.from=a.test\r\n\
Received: from c by elsewhere.test\r\n\r\n";
    assert!(trusted_results(raw, &ids(), &hosts()).is_none());
    let raw = b"Authentication-Results: mx.acme.test; dmarc=pass header.from=a.test\r\n\
Received: from c by mx.acme.test\r\n\r\n";
    assert!(trusted_results(raw, &[], &hosts()).is_none());
    assert!(trusted_results(raw, &ids(), &hosts()).is_some());
}

#[test]
fn a_pathological_header_is_read_in_linear_time() {
    let value = format!("mx.acme.test; {}", "dkim=pass ((((\"".repeat(20_000));
    let started = std::time::Instant::now();
    let _ = parse(&value);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
