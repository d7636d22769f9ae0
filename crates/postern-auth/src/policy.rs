//! What a verdict allows, under the configured policy. A pure function of the policy and the
//! verdict, so the whole table is unit-tested here and the same rule applies on every path.
//!
//! | policy    | acting as a user                                          | automatic answers                         |
//! |-----------|-----------------------------------------------------------|-------------------------------------------|
//! | `off`     | allowed                                                   | allowed                                   |
//! | `dmarc`   | refused when DMARC fails and the From domain publishes `p=quarantine`/`p=reject`; temporary when DMARC has a temporary error and the policy is enforcing or unknown; refused without a single From domain; otherwise allowed | not when acting would be refused or temporary |
//! | `require` | allowed on a DMARC pass or an aligned DKIM pass; temporary when DMARC or an aligned signature has a temporary error; otherwise refused | not when DMARC fails or errs, nor without a single From domain |

use crate::verdict::{AuthResult, Verdict};
use serde::{Deserialize, Serialize};

/// How much authentication a mail needs before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No verification: no DNS queries, no verdict; every mail acts as it would in GitLab.
    Off,
    /// Honour the From domain's own DMARC policy (the default).
    #[default]
    Dmarc,
    /// Act as a user only on a DMARC pass or an aligned DKIM pass.
    Require,
}

impl Policy {
    /// The name as configured: `off`, `dmarc` or `require`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Dmarc => "dmarc",
            Policy::Require => "require",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    /// Reads [`Policy::as_str`]'s names; anything else is an error quoting (the start of) it.
    fn from_str(text: &str) -> Result<Policy, String> {
        [Policy::Off, Policy::Dmarc, Policy::Require]
            .into_iter()
            .find(|policy| policy.as_str() == text.trim())
            .ok_or_else(|| {
                format!(
                    "must be off, dmarc or require (got {:?})",
                    text.chars().take(32).collect::<String>()
                )
            })
    }
}

/// Whether a mail may do something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Permission {
    /// Yes.
    Allowed,
    /// No, for good: the sender is not who the From says.
    Refused {
        /// Why, for the log and (to an authenticated sender) the reject notice.
        reason: String,
    },
    /// Not now: the answer depends on DNS that failed; process the mail again later.
    Temporary {
        /// Why.
        reason: String,
    },
}

/// What a message may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the From address may act as the postern user it names (comment, open an issue,
    /// run quick actions, use a reply key).
    pub may_act_as_user: Permission,
    /// Whether automatic mail (thank-you, reject notices) may go to the From address: never
    /// to a sender whose From fails authentication (no backscatter).
    pub may_auto_reply: bool,
}

/// Applies `policy` to `verdict`.
pub fn decide(policy: Policy, verdict: &Verdict) -> Decision {
    match policy {
        Policy::Off => Decision {
            may_act_as_user: Permission::Allowed,
            may_auto_reply: true,
        },
        Policy::Dmarc => {
            let act = dmarc_permission(verdict);
            let may_auto_reply = act == Permission::Allowed;
            Decision {
                may_act_as_user: act,
                may_auto_reply,
            }
        }
        Policy::Require => Decision {
            may_act_as_user: require_permission(verdict),
            may_auto_reply: verdict.dmarc.from_domain.is_some()
                && !matches!(
                    verdict.dmarc.result,
                    AuthResult::Fail | AuthResult::TempError | AuthResult::PermError
                ),
        },
    }
}

fn dmarc_permission(verdict: &Verdict) -> Permission {
    let dmarc = &verdict.dmarc;
    let Some(domain) = &dmarc.from_domain else {
        return Permission::Refused {
            reason: "the From header names no single domain, so DMARC cannot vouch for it"
                .to_string(),
        };
    };
    match dmarc.result {
        AuthResult::Fail | AuthResult::SoftFail if dmarc.policy.is_enforcing() => {
            Permission::Refused {
                reason: format!(
                    "DMARC fails for {domain}, whose policy is p={}",
                    policy_name(dmarc.policy)
                ),
            }
        }
        AuthResult::Fail | AuthResult::SoftFail | AuthResult::TempError
            if dmarc.policy == crate::DmarcPolicy::Unknown =>
        {
            Permission::Temporary {
                reason: format!("the DMARC policy of {domain} could not be read (DNS)"),
            }
        }
        AuthResult::TempError if dmarc.policy.is_enforcing() => Permission::Temporary {
            reason: format!("DMARC for {domain} could not be checked (DNS temporary error)"),
        },
        _ => Permission::Allowed,
    }
}

fn require_permission(verdict: &Verdict) -> Permission {
    let Some(domain) = &verdict.dmarc.from_domain else {
        return Permission::Refused {
            reason: "the From header names no single domain".to_string(),
        };
    };
    if verdict.dmarc.result == AuthResult::Pass || verdict.has_aligned_dkim_pass() {
        return Permission::Allowed;
    }
    if verdict.dmarc.result == AuthResult::TempError || verdict.has_aligned_dkim_temperror() {
        return Permission::Temporary {
            reason: format!("the authentication of {domain} could not be checked (DNS)"),
        };
    }
    Permission::Refused {
        reason: format!(
            "neither DMARC nor a DKIM signature of {domain} passes (DMARC: {})",
            result_name(verdict.dmarc.result)
        ),
    }
}

fn policy_name(policy: crate::DmarcPolicy) -> &'static str {
    match policy {
        crate::DmarcPolicy::NoRecord => "(no record)",
        crate::DmarcPolicy::Unknown => "(unknown)",
        crate::DmarcPolicy::None => "none",
        crate::DmarcPolicy::Quarantine => "quarantine",
        crate::DmarcPolicy::Reject => "reject",
    }
}

pub(crate) fn result_name(result: AuthResult) -> &'static str {
    match result {
        AuthResult::Pass => "pass",
        AuthResult::Fail => "fail",
        AuthResult::SoftFail => "softfail",
        AuthResult::Neutral => "neutral",
        AuthResult::None => "none",
        AuthResult::TempError => "temperror",
        AuthResult::PermError => "permerror",
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
