//! mail-auth's outputs turned into a [`Verdict`]'s parts, with the few places where our reading
//! differs from mail-auth's said where they are.

use crate::verdict::{
    AuthResult, DkimCheck, DmarcCheck, DmarcPolicy, Source, SpfCheck, Verdict, signer_aligned,
};
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy as RecordPolicy;
use mail_auth::{DkimOutput, DkimResult, DmarcOutput, DmarcResult, Error, SpfResult};

pub(crate) fn dkim_result(result: &DkimResult) -> AuthResult {
    match result {
        DkimResult::Pass => AuthResult::Pass,
        // A body that no longer matches its hash was changed after signing: a failure, as
        // RFC 6376 and other verifiers report it (mail-auth says neutral).
        DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => AuthResult::Fail,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

pub(crate) fn dkim_check(
    output: &DkimOutput<'_>,
    from: &str,
    reasons: &mut Vec<String>,
) -> DkimCheck {
    let signature = output.signature();
    let result = dkim_result(output.result());
    let domain = signature.map(|s| s.d.to_ascii_lowercase());
    if result != AuthResult::Pass {
        reasons.push(format!(
            "DKIM signature of {}: {}",
            domain.as_deref().unwrap_or("(unreadable)"),
            output.result()
        ));
    }
    DkimCheck {
        aligned: domain.as_deref().is_some_and(|d| signer_aligned(d, from)),
        domain,
        selector: signature.map(|s| s.s.clone()),
        result,
    }
}

/// A signature refused before checking (too many signed fields, or a message with too many).
pub(crate) fn unchecked(
    domain: &str,
    selector: &str,
    from: &str,
    reasons: &mut Vec<String>,
) -> DkimCheck {
    reasons.push(format!(
        "DKIM signature of {domain}: too large to check (permerror)"
    ));
    DkimCheck {
        domain: Some(domain.to_ascii_lowercase()),
        selector: Some(selector.to_string()),
        result: AuthResult::PermError,
        aligned: signer_aligned(domain, from),
    }
}

pub(crate) fn spf_result(result: SpfResult) -> AuthResult {
    match result {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

pub(crate) fn dmarc_result(result: &DmarcResult) -> AuthResult {
    match result {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

pub(crate) fn record_policy(policy: RecordPolicy) -> DmarcPolicy {
    match policy {
        RecordPolicy::Quarantine => DmarcPolicy::Quarantine,
        RecordPolicy::Reject => DmarcPolicy::Reject,
        RecordPolicy::None | RecordPolicy::Unspecified => DmarcPolicy::None,
    }
}

pub(crate) fn dmarc_check(
    output: &DmarcOutput,
    domain: &str,
    dkim: &[DkimCheck],
    spf: &SpfCheck,
    reasons: &mut Vec<String>,
) -> DmarcCheck {
    let result = dmarc_result(&output.result());
    let policy = if output.dmarc_record().is_some() {
        record_policy(output.policy())
    } else if result == AuthResult::TempError {
        DmarcPolicy::Unknown
    } else {
        DmarcPolicy::NoRecord
    };
    let aligned_dkim = (output.dkim_result() == &DmarcResult::Pass)
        .then(|| {
            dkim.iter()
                .filter(|d| d.result == AuthResult::Pass)
                .find(|d| d.aligned)
                .or_else(|| dkim.iter().find(|d| d.result == AuthResult::Pass))
                .and_then(|d| d.domain.clone())
        })
        .flatten();
    let aligned_spf = (output.spf_result() == &DmarcResult::Pass)
        .then(|| spf.domain.clone())
        .flatten();
    if result != AuthResult::Pass {
        reasons.push(format!("DMARC for {domain}: {}", output.result()));
    }
    DmarcCheck {
        result,
        policy,
        from_domain: Some(domain.to_string()),
        aligned_dkim,
        aligned_spf,
    }
}

/// A verdict where nothing could be checked.
pub(crate) fn failed_verdict(
    result: AuthResult,
    reason: String,
    from_domain: Option<String>,
) -> Verdict {
    Verdict {
        source: Source::Local,
        dkim: Vec::new(),
        arc: result,
        spf: SpfCheck {
            result,
            domain: None,
        },
        dmarc: DmarcCheck {
            result,
            policy: if result == AuthResult::TempError {
                DmarcPolicy::Unknown
            } else {
                DmarcPolicy::NoRecord
            },
            from_domain,
            aligned_dkim: None,
            aligned_spf: None,
        },
        reasons: vec![reason],
    }
}
