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
//!
//! A project may ask for a stricter policy than the instance's ([`effective_policy`]): the
//! verdict is computed once, before the transaction, under the instance's policy; inside the
//! transaction, once the route names the project the mail acts on, the decision is taken
//! again under that project's effective policy, as the project is set at that moment.

use std::sync::Arc;

use postern_auth::{Authenticator, Connection, Decision, Permission, Policy, Verdict};
use postern_mail::HandlerKind;
use postern_store::{Project, ProjectSenderPolicy};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, ProcessError, Rejection};
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

/// The policy a mail acting on a project is judged by: the stricter of the instance's and
/// the project's own (`None`: the instance's). A project can only tighten the instance's
/// policy, never loosen it: the instance's administrator sets the floor. Under the instance
/// policy `off` nothing is verified (no DNS, no verdict), so a project's policy cannot be
/// honoured and `off` stays off; [`unenforced_project_policy`] says so where the project's
/// policy is set and in `postern check`.
pub fn effective_policy(instance: Policy, project: Option<ProjectSenderPolicy>) -> Policy {
    let project = match project {
        None => return instance,
        Some(ProjectSenderPolicy::Dmarc) => Policy::Dmarc,
        Some(ProjectSenderPolicy::Require) => Policy::Require,
    };
    match (instance, project) {
        (Policy::Off, _) => Policy::Off,
        (Policy::Require, _) | (_, Policy::Require) => Policy::Require,
        _ => Policy::Dmarc,
    }
}

/// A warning when `project`'s own policy has no effect under the instance's: the instance
/// verifies no senders (`off`), so nothing can be checked for the project.
pub fn unenforced_project_policy(
    instance: Policy,
    project: Option<ProjectSenderPolicy>,
) -> Option<String> {
    let project = project?;
    (instance == Policy::Off).then(|| {
        format!(
            "the project asks for the sender-authentication policy `{project}`, but this \
             instance verifies no senders (`sender_authentication: policy: off`): the \
             project's policy has no effect until the instance's is `dmarc` or `require`"
        )
    })
}

/// The instance's policy: `off` when it verifies nothing (no [`SenderAuthentication`]).
pub fn instance_policy(authentication: Option<&SenderAuthentication>) -> Policy {
    authentication.map_or(Policy::Off, SenderAuthentication::policy)
}

/// Reads a project's policy as people type it (the CLI, the settings page, the API): `dmarc`,
/// `require`, or `default` (or empty) to follow the instance's.
pub fn parse_project_policy(text: &str) -> Result<Option<ProjectSenderPolicy>, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "default" | "instance" => Ok(None),
        "dmarc" => Ok(Some(ProjectSenderPolicy::Dmarc)),
        "require" => Ok(Some(ProjectSenderPolicy::Require)),
        other => Err(format!(
            "unknown sender-authentication policy {other:?} (dmarc, require or default)"
        )),
    }
}

/// Sets `project`'s own sender-authentication policy (`None`: the instance's); it applies to
/// the next mail. Returns the project as saved.
pub async fn set_project_policy(
    tx: &mut postern_store::Tx,
    project: &Project,
    policy: Option<ProjectSenderPolicy>,
) -> Result<Project, ProcessError> {
    Ok(tx.set_project_sender_policy(project.id, policy).await?)
}

/// A project's sender-authentication settings as shown to people: what it asks for, what the
/// instance applies, the policy its mail is judged by, and why that is not what it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectPolicyView {
    /// `dmarc`, `require`, or `None` (the instance's).
    pub project: Option<ProjectSenderPolicy>,
    /// The instance's policy.
    pub instance: &'static str,
    /// The policy mail acting on the project is judged by ([`effective_policy`]).
    pub effective: &'static str,
    /// [`unenforced_project_policy`].
    pub warning: Option<String>,
}

impl ProjectPolicyView {
    /// The view of `project`'s policy under the instance's `instance`.
    pub fn new(instance: Policy, project: Option<ProjectSenderPolicy>) -> ProjectPolicyView {
        ProjectPolicyView {
            project,
            instance: instance.as_str(),
            effective: effective_policy(instance, project).as_str(),
            warning: unenforced_project_policy(instance, project),
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
    /// The same verdict decided under the effective policy of `project`, the project the mail
    /// acts on ([`effective_policy`]); `None` when that is the policy it was decided under.
    pub fn for_project(&self, project: Option<&Project>) -> Option<Authenticated> {
        let policy = effective_policy(self.policy, project.and_then(|p| p.sender_policy));
        (policy != self.policy).then(|| Authenticated {
            policy,
            verdict: self.verdict.clone(),
            decision: postern_auth::decide(policy, &self.verdict),
        })
    }

    /// The record kept with the message's outcome.
    pub fn record(&self) -> AuthenticationRecord {
        AuthenticationRecord {
            policy: self.policy.as_str().to_owned(),
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

/// Whether a route acts as a postern user, and so needs the sender to be authenticated.
pub fn acts_as_user(kind: HandlerKind) -> bool {
    !matches!(kind, HandlerKind::ServiceDesk)
}

/// The refusal of a route that acts as a postern user when the sender is not authenticated
/// enough for the policy; a temporary DNS failure fails the message for now (retried with the
/// queue's back-off, quarantined when it persists).
pub(crate) fn sender_refusal(
    authenticated: Option<&Authenticated>,
    route: &postern_mail::Route,
) -> Result<Option<Rejection>, ProcessError> {
    let Some(authenticated) = authenticated else {
        return Ok(None);
    };
    if !acts_as_user(route.kind()) {
        return Ok(None);
    }
    match &authenticated.decision.may_act_as_user {
        Permission::Allowed => Ok(None),
        Permission::Refused { reason } => Ok(Some(Rejection::with_reason(
            ErrorKind::SenderNotAuthenticated,
            format!("The sender could not be authenticated: {reason}."),
        ))),
        Permission::Temporary { reason } => Err(ProcessError::Temporary(format!(
            "sender authentication: {reason}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_only_tightens_the_instance_policy() {
        use ProjectSenderPolicy::{Dmarc, Require};
        let cases = [
            (Policy::Off, None, Policy::Off),
            (Policy::Off, Some(Require), Policy::Off),
            (Policy::Dmarc, None, Policy::Dmarc),
            (Policy::Dmarc, Some(Dmarc), Policy::Dmarc),
            (Policy::Dmarc, Some(Require), Policy::Require),
            (Policy::Require, None, Policy::Require),
            (Policy::Require, Some(Dmarc), Policy::Require),
        ];
        for (instance, project, effective) in cases {
            assert_eq!(
                effective_policy(instance, project),
                effective,
                "{instance:?} {project:?}"
            );
        }
    }

    #[test]
    fn a_project_policy_under_off_is_reported_unenforced() {
        let require = Some(ProjectSenderPolicy::Require);
        assert!(unenforced_project_policy(Policy::Off, require).is_some());
        assert!(unenforced_project_policy(Policy::Off, None).is_none());
        assert!(unenforced_project_policy(Policy::Dmarc, require).is_none());
    }

    #[test]
    fn project_policies_are_read_as_typed() {
        assert_eq!(
            parse_project_policy(" Require "),
            Ok(Some(ProjectSenderPolicy::Require))
        );
        assert_eq!(
            parse_project_policy("dmarc"),
            Ok(Some(ProjectSenderPolicy::Dmarc))
        );
        assert_eq!(parse_project_policy("default"), Ok(None));
        assert!(parse_project_policy("off").is_err());
    }
}
