//! The outcome of authenticating one message: what each method said, where the answer came
//! from, and why, in a form `inspect`, the logs and the web mail desk can show as it is
//! (serialised with snake_case names).

use serde::Serialize;

/// One method's result, with RFC 8601's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    /// Verified.
    Pass,
    /// Verified to be wrong (a bad signature, an unauthorised IP, a DMARC mismatch).
    Fail,
    /// SPF's "probably not authorised".
    SoftFail,
    /// Checked, but the answer says nothing either way.
    Neutral,
    /// Nothing to check (no signature, no record, no connecting IP).
    None,
    /// A transient failure, usually DNS: ask again later. Never a pass.
    TempError,
    /// A permanent error in a record or signature.
    PermError,
}

/// Where the verdict came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// Verified here, with mail-auth and our resolver.
    Local,
    /// Read from an `Authentication-Results` header written by a trusted MTA.
    Upstream {
        /// The header's authserv-id.
        authserv_id: String,
    },
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    /// The signing domain (`d=`), when the signature could be read.
    pub domain: Option<String>,
    /// The selector (`s=`).
    pub selector: Option<String>,
    /// The result.
    pub result: AuthResult,
    /// Whether `d=` is the From domain, a parent of it or a subdomain of it (DMARC's relaxed
    /// alignment without a public-suffix list).
    pub aligned: bool,
}

/// The SPF result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfCheck {
    /// The result (`none` when the client IP or the envelope sender is unknown).
    pub result: AuthResult,
    /// The domain checked: the envelope sender's, or the HELO name's for a bounce.
    pub domain: Option<String>,
}

/// A From domain's published DMARC policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmarcPolicy {
    /// No DMARC record.
    NoRecord,
    /// The record could not be read (DNS temporary error): the policy is unknown.
    Unknown,
    /// `p=none`: monitor only.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

impl DmarcPolicy {
    /// Whether the domain asks receivers to act on a failure.
    pub fn is_enforcing(self) -> bool {
        matches!(self, DmarcPolicy::Quarantine | DmarcPolicy::Reject)
    }
}

/// The DMARC result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmarcCheck {
    /// The result.
    pub result: AuthResult,
    /// The policy that applies to the From domain (`sp=`/`np=` for a subdomain, one step
    /// softer under `t=y`).
    pub policy: DmarcPolicy,
    /// The From domain: the one identity DMARC protects.
    pub from_domain: Option<String>,
    /// The DKIM signing domain that passed and aligned, if any.
    pub aligned_dkim: Option<String>,
    /// The SPF domain that passed and aligned, if any.
    pub aligned_spf: Option<String>,
}

/// The authentication verdict for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Local verification or a trusted upstream header.
    pub source: Source,
    /// Every DKIM signature checked (at most [`crate::MAX_DKIM_SIGNATURES`]).
    pub dkim: Vec<DkimCheck>,
    /// The ARC chain.
    pub arc: AuthResult,
    /// SPF.
    pub spf: SpfCheck,
    /// DMARC.
    pub dmarc: DmarcCheck,
    /// Human-readable explanations, for people reading a refusal.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Whether a DKIM signature aligned with the From domain passed.
    pub fn has_aligned_dkim_pass(&self) -> bool {
        self.dmarc.aligned_dkim.is_some()
            || self
                .dkim
                .iter()
                .any(|d| d.aligned && d.result == AuthResult::Pass)
    }

    /// Whether a DKIM signature aligned with the From domain could not be checked for a
    /// transient reason (it might pass on a retry).
    pub fn has_aligned_dkim_temperror(&self) -> bool {
        self.dkim
            .iter()
            .any(|d| d.aligned && d.result == AuthResult::TempError)
    }
}

/// Whether `signer` aligns with `from` under relaxed rules: equal, or one a subdomain of the
/// other. Without a public-suffix list this is what DMARC's organisational-domain rule
/// amounts to for real signers (nobody can publish a key at a public suffix they do not run).
pub(crate) fn relaxed_aligned(signer: &str, from: &str) -> bool {
    let signer = signer.trim_end_matches('.').to_ascii_lowercase();
    let from = from.trim_end_matches('.').to_ascii_lowercase();
    if signer.is_empty() || from.is_empty() || !signer.contains('.') || !from.contains('.') {
        return false;
    }
    signer == from
        || from
            .strip_suffix(signer.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
        || signer
            .strip_suffix(from.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_equality_or_a_subdomain_either_way_never_a_bare_suffix() {
        assert!(relaxed_aligned("acme.com", "acme.com"));
        assert!(relaxed_aligned("ACME.com.", "acme.com"));
        assert!(relaxed_aligned("acme.com", "mail.acme.com"));
        assert!(relaxed_aligned("mail.acme.com", "acme.com"));
        assert!(!relaxed_aligned("notacme.com", "acme.com"));
        assert!(!relaxed_aligned("acme.com", "evilacme.com"));
        assert!(
            !relaxed_aligned("com", "acme.com"),
            "a bare TLD aligns with nothing"
        );
        assert!(!relaxed_aligned("", "acme.com"));
    }
}
