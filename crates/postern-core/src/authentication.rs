//! Sender authentication applied to processing: the verdict of a message (DKIM, ARC, SPF,
//! DMARC, from `postern-auth`) computed before the write transaction, and the one rule that
//! turns it into what the mail may do.
//!
//! A route that acts as a postern user (a reply by key, a new issue or merge request by token,
//! an unsubscribe) needs [`Permission::Allowed`]; a refusal is `sender_not_authenticated`
//! without a reject notice (the sender is exactly who cannot be trusted to get one), and a
//! temporary DNS failure is a temporary failure of the message, retried with the queue's
//! back-off until it is quarantined. A Service Desk mail does not act as a user: it becomes a
//! ticket whatever the verdict, but gets no automatic answer when its From fails.

use std::sync::Arc;

use postern_auth::{Authenticator, Connection, Decision, Permission, Policy, Verdict};
use postern_mail::HandlerKind;
use serde::{Deserialize, Serialize};

use crate::sender::SenderTrust;

/// The verifier and the instance's policy (`sender_authentication:`).
#[derive(Clone)]
pub struct SenderAuthentication {
    authenticator: Arc<Authenticator>,
    policy: Policy,
}

impl std::fmt::Debug for SenderAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAuthentication")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SenderAuthentication {
    /// Verification with `authenticator` under `policy`; `None` for [`Policy::Off`], which
    /// verifies nothing.
    pub fn new(authenticator: Authenticator, policy: Policy) -> Option<SenderAuthentication> {
        (policy != Policy::Off).then(|| SenderAuthentication {
            authenticator: Arc::new(authenticator),
            policy,
        })
    }

    /// The policy applied.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The verdict of `raw` (the whole message as stored) and what it allows. The SMTP facts
    /// come from the trusted MTA's `Received` line: an LMTP client is the local MTA itself, so
    /// its address says nothing of the sender.
    pub async fn authenticate(&self, raw: &[u8]) -> Authenticated {
        let connection: Connection = self.authenticator.connection_from_received(raw);
        let verdict = self.authenticator.verify(raw, &connection).await;
        let decision = postern_auth::decide(self.policy, &verdict);
        Authenticated {
            policy: self.policy,
            verdict,
            decision,
        }
    }
}

/// A message's verdict and what it allows.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The policy it was judged by.
    pub policy: Policy,
    /// What each method found.
    pub verdict: Verdict,
    /// What the message may do.
    pub decision: Decision,
}

/// What the message's outcome records of its authentication (`postern receive`, the inbound
/// log, the web mail desk): the DMARC result, the decision, and the verdict as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationRecord {
    /// `off`, `dmarc` or `require`.
    pub policy: String,
    /// The DMARC result (`pass`, `fail`, `none`, `temperror`, …).
    pub dmarc: String,
    /// Whether the From may act as a postern user: `allowed`, `refused` or `temporary`.
    pub act_as_user: String,
    /// Whether automatic mail may go to the From address.
    pub auto_reply: bool,
    /// Every method's result and the reasons, as `postern-auth` reports them.
    pub verdict: serde_json::Value,
}

impl Authenticated {
    /// The record kept with the message's outcome.
    pub fn record(&self) -> AuthenticationRecord {
        AuthenticationRecord {
            policy: policy_name(self.policy).to_owned(),
            dmarc: serde_json::to_value(self.verdict.dmarc.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            act_as_user: match self.decision.may_act_as_user {
                Permission::Allowed => "allowed",
                Permission::Refused { .. } => "refused",
                Permission::Temporary { .. } => "temporary",
            }
            .to_owned(),
            auto_reply: self.decision.may_auto_reply,
            verdict: serde_json::to_value(&self.verdict).unwrap_or_default(),
        }
    }

    /// What the sender rules that rest on `From` are told ([`SenderTrust`]).
    pub fn trust(&self) -> SenderTrust {
        match self.decision.may_act_as_user {
            Permission::Allowed => SenderTrust::PolicyPasses,
            Permission::Refused { .. } | Permission::Temporary { .. } => SenderTrust::PolicyFails,
        }
    }
}

/// `off`, `dmarc` or `require`, as configured.
pub fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Off => "off",
        Policy::Dmarc => "dmarc",
        Policy::Require => "require",
    }
}

/// Whether a route acts as a postern user, and so needs the sender to be authenticated.
pub fn acts_as_user(kind: HandlerKind) -> bool {
    !matches!(kind, HandlerKind::ServiceDesk)
}
