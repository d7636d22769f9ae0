//! The decision table, row by row.

use super::*;
use crate::verdict::{DkimCheck, DmarcCheck, DmarcPolicy, Source, SpfCheck};

fn verdict(result: AuthResult, policy: DmarcPolicy) -> Verdict {
    Verdict {
        source: Source::Local,
        dkim: Vec::new(),
        arc: AuthResult::None,
        spf: SpfCheck {
            result: AuthResult::None,
            domain: None,
        },
        dmarc: DmarcCheck {
            result,
            policy,
            from_domain: Some("acme.test".to_string()),
            aligned_dkim: None,
            aligned_spf: None,
        },
        reasons: Vec::new(),
    }
}

fn with_dkim(mut v: Verdict, result: AuthResult, aligned: bool) -> Verdict {
    v.dkim.push(DkimCheck {
        domain: Some(if aligned { "acme.test" } else { "esp.test" }.to_string()),
        selector: Some("s".to_string()),
        result,
        aligned,
    });
    v
}

fn without_from(mut v: Verdict) -> Verdict {
    v.dmarc.from_domain = None;
    v
}

#[derive(Debug, PartialEq)]
enum Act {
    Allowed,
    Refused,
    Temporary,
}

fn act(policy: Policy, v: &Verdict) -> (Act, bool) {
    let decision = decide(policy, v);
    let act = match decision.may_act_as_user {
        Permission::Allowed => Act::Allowed,
        Permission::Refused { .. } => Act::Refused,
        Permission::Temporary { .. } => Act::Temporary,
    };
    (act, decision.may_auto_reply)
}

use AuthResult as R;
use DmarcPolicy as P;

#[test]
fn off_allows_everything() {
    for v in [
        verdict(R::Fail, P::Reject),
        verdict(R::TempError, P::Unknown),
        without_from(verdict(R::PermError, P::NoRecord)),
    ] {
        assert_eq!(act(Policy::Off, &v), (Act::Allowed, true), "{v:?}");
    }
}

#[test]
fn dmarc_refuses_a_failure_only_where_the_domain_enforces() {
    let table = [
        (R::Pass, P::Reject, Act::Allowed, true),
        (R::Fail, P::Reject, Act::Refused, false),
        (R::Fail, P::Quarantine, Act::Refused, false),
        (R::Fail, P::None, Act::Allowed, true),
        (R::None, P::NoRecord, Act::Allowed, true),
        (R::TempError, P::Reject, Act::Temporary, false),
        (R::TempError, P::Quarantine, Act::Temporary, false),
        (R::TempError, P::Unknown, Act::Temporary, false),
        (R::Fail, P::Unknown, Act::Temporary, false),
        (R::TempError, P::None, Act::Allowed, true),
        (R::PermError, P::NoRecord, Act::Allowed, true),
    ];
    for (result, policy, expected, auto_reply) in table {
        let v = verdict(result, policy);
        assert_eq!(
            act(Policy::Dmarc, &v),
            (expected, auto_reply),
            "{result:?} {policy:?}"
        );
    }
}

#[test]
fn dmarc_refuses_a_from_without_a_single_domain() {
    let v = without_from(verdict(R::PermError, P::NoRecord));
    assert_eq!(act(Policy::Dmarc, &v), (Act::Refused, false));
}

#[test]
fn the_refusal_names_the_domain_and_its_policy() {
    let decision = decide(Policy::Dmarc, &verdict(R::Fail, P::Reject));
    let Permission::Refused { reason } = decision.may_act_as_user else {
        panic!("not refused");
    };
    assert!(
        reason.contains("acme.test") && reason.contains("p=reject"),
        "{reason}"
    );
}

#[test]
fn require_needs_dmarc_or_an_aligned_dkim_pass() {
    let table = [
        (verdict(R::Pass, P::None), Act::Allowed, true),
        (
            with_dkim(verdict(R::None, P::NoRecord), R::Pass, true),
            Act::Allowed,
            true,
        ),
        (
            with_dkim(verdict(R::None, P::NoRecord), R::Pass, false),
            Act::Refused,
            true,
        ),
        (verdict(R::None, P::NoRecord), Act::Refused, true),
        (verdict(R::Fail, P::None), Act::Refused, false),
        (verdict(R::Fail, P::Reject), Act::Refused, false),
        (verdict(R::TempError, P::Unknown), Act::Temporary, false),
        (
            with_dkim(verdict(R::None, P::NoRecord), R::TempError, true),
            Act::Temporary,
            true,
        ),
        (
            with_dkim(verdict(R::None, P::NoRecord), R::Fail, true),
            Act::Refused,
            true,
        ),
        (verdict(R::PermError, P::NoRecord), Act::Refused, false),
        (
            without_from(verdict(R::PermError, P::NoRecord)),
            Act::Refused,
            false,
        ),
    ];
    for (v, expected, auto_reply) in table {
        assert_eq!(act(Policy::Require, &v), (expected, auto_reply), "{v:?}");
    }
}

#[test]
fn policy_names_read_from_configuration() {
    for (text, policy) in [
        ("\"off\"", Policy::Off),
        ("\"dmarc\"", Policy::Dmarc),
        ("\"require\"", Policy::Require),
    ] {
        assert_eq!(serde_json::from_str::<Policy>(text).ok(), Some(policy));
    }
    assert_eq!(Policy::default(), Policy::Dmarc);
}

#[test]
fn decisions_serialise_with_snake_case_tags() {
    let decision = decide(Policy::Dmarc, &verdict(R::TempError, P::Reject));
    let json = serde_json::to_value(&decision).expect("serialising");
    assert_eq!(json["may_act_as_user"]["outcome"], "temporary");
    assert_eq!(json["may_auto_reply"], false);
}

#[test]
fn policy_names_round_trip_and_others_are_refused() {
    for policy in [Policy::Off, Policy::Dmarc, Policy::Require] {
        assert_eq!(policy.as_str().parse::<Policy>(), Ok(policy));
    }
    let error = "loose".parse::<Policy>().expect_err("not a policy");
    assert!(error.contains("\"loose\""), "{error}");
}
