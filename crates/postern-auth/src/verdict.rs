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
    /// Whether `d=` is the From domain or a parent of it (see `signer_aligned` for why not a
    /// subdomain).
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

/// Whether a signature of `signer` vouches for a From address at `from`: the same domain, or
/// a parent of it (`acme.com` signing for `mail.acme.com`). DMARC's relaxed alignment would
/// also accept a subdomain signing for its parent; without the public-suffix list that DMARC
/// needs to know where an organisation ends, that direction would let `evil.github.io` vouch
/// for `github.io`, so it is left to DMARC itself (`aligned_dkim`), which walks the DNS tree.
pub(crate) fn signer_aligned(signer: &str, from: &str) -> bool {
    let signer = signer.trim_end_matches('.').to_ascii_lowercase();
    let from = from.trim_end_matches('.').to_ascii_lowercase();
    if signer.is_empty() || from.is_empty() || !signer.contains('.') || !from.contains('.') {
        return false;
    }
    signer == from
        || from
            .strip_suffix(signer.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_equality_or_a_parent_never_a_bare_suffix_or_a_child() {
        assert!(signer_aligned("acme.com", "acme.com"));
        assert!(signer_aligned("ACME.com.", "acme.com"));
        assert!(signer_aligned("acme.com", "mail.acme.com"));
        assert!(
            !signer_aligned("evil.acme.com", "acme.com"),
            "a subdomain does not vouch for its parent here; DMARC decides that"
        );
        assert!(!signer_aligned("notacme.com", "acme.com"));
        assert!(!signer_aligned("acme.com", "evilacme.com"));
        assert!(
            !signer_aligned("com", "acme.com"),
            "a bare TLD aligns with nothing"
        );
        assert!(!signer_aligned("", "acme.com"));
    }
}
