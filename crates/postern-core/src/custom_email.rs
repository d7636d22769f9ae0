//! The rule for a project's Service Desk custom email address, in one place for the web UI,
//! the JSON API and the command line.
//!
//! An address belongs to at most one project (compared case-folded; the store's unique index
//! on the folded value backs this up against a race). A new address starts unverified and
//! disabled: mail to it is routed only once it is verified and enabled, so typing another
//! project's (or another company's) address takes no mail. GitLab lets two projects enter the
//! same address and routes it whether verified or not; the project whose path sorted last won.
//! `CustomEmails` is the rule's other half, for routing: the addresses that take mail now,
//! as processing looks them up for each message.

use std::collections::HashMap;

use postern_mail::key::{CustomEmailLookup, custom_email_reply_parts};
use postern_store::{CustomEmailVerificationState, ServiceDeskSettings, StoreError, Tx};

use crate::error::{ChangeError, ProcessError, Refusal};

/// Why a custom email was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomEmailRefusal {
    /// Not an address GitLab's key finder would recognise as a custom email.
    #[error("That custom email address is not valid.")]
    Invalid,
    /// Another project has it.
    #[error("{0} is already the custom email address of another project.")]
    Taken(String),
    /// Turned on before its verification finished.
    #[error("The custom email address must be verified first.")]
    NotVerified,
}

impl Refusal for CustomEmailRefusal {}

/// Either a refusal to show the person who asked, or a store failure.
pub type CustomEmailError = ChangeError<CustomEmailRefusal>;

/// GitLab's custom email format: what the key finder recognises (no `+`, a dotted domain with
/// an alphabetic top-level label).
pub fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 255
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && domain.len() <= 255
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && (2..=63).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
}

/// Sets `settings.custom_email` of project `project_id` to `address` (`None` or blank
/// clears it). A changed address must be valid and no other project's; it resets the
/// verification and turns sending from it off. Returns whether a new address was set (the
/// caller then starts its verification). Nothing is written: the caller saves `settings` and
/// maps a unique violation on saving to [`CustomEmailRefusal::Taken`] with [`refusal_on_save`].
pub async fn change(
    tx: &mut Tx,
    project_id: i64,
    settings: &mut ServiceDeskSettings,
    address: Option<&str>,
) -> Result<bool, CustomEmailError> {
    let address = address.map(str::trim).filter(|a| !a.is_empty());
    let same = address
        .map(str::to_lowercase)
        .eq(&settings.custom_email.as_deref().map(str::to_lowercase));
    if same {
        return Ok(false);
    }
    if let Some(address) = address {
        if !is_valid(address) {
            return Err(CustomEmailRefusal::Invalid.into());
        }
        let taken = tx
            .projects_by_custom_email(address)
            .await?
            .iter()
            .any(|other| other.id != project_id);
        if taken {
            return Err(CustomEmailRefusal::Taken(address.to_owned()).into());
        }
    }
    settings.custom_email = address.map(str::to_owned);
    settings.custom_email_enabled = false;
    settings.custom_email_verification_state = None;
    settings.custom_email_verification_token = None;
    settings.custom_email_verification_error = None;
    settings.custom_email_verification_triggered_at = None;
    settings.custom_email_verification_triggerer_id = None;
    Ok(address.is_some())
}

/// Turns routing and sending by the custom email on or off; on only once it is verified.
pub fn set_enabled(
    settings: &mut ServiceDeskSettings,
    enabled: bool,
) -> Result<(), CustomEmailRefusal> {
    let verified =
        settings.custom_email_verification_state == Some(CustomEmailVerificationState::Finished);
    if enabled && !verified {
        return Err(CustomEmailRefusal::NotVerified);
    }
    settings.custom_email_enabled = enabled;
    Ok(())
}

/// The refusal a unique violation on saving `settings` means, when it is the custom email's
/// (two projects took the same address at once); `None` for any other constraint.
pub fn refusal_on_save(
    error: &StoreError,
    settings: &ServiceDeskSettings,
) -> Option<CustomEmailRefusal> {
    match error {
        StoreError::UniqueViolation { constraint, .. } if constraint.contains("custom_email") => {
            settings.custom_email.clone().map(CustomEmailRefusal::Taken)
        }
        _ => None,
    }
}

/// Custom Service Desk emails of all projects, loaded once per message. An address routes mail
/// only once it is verified and enabled; before that, only its `+verify` form routes, and only
/// while a verification is pending. (GitLab routes an address as soon as it is entered, so a
/// project could take mail meant for an address it does not own.)
#[derive(Default)]
pub(crate) struct CustomEmails {
    /// Lowercased verified, enabled custom email → the project's default Service Desk key.
    active: HashMap<String, String>,
    /// Lowercased custom email whose verification is pending → the same key, for `+verify`.
    pending: HashMap<String, String>,
}

impl CustomEmails {
    pub(crate) async fn load(tx: &mut Tx) -> Result<CustomEmails, ProcessError> {
        let mut emails = CustomEmails::default();
        for project in tx.projects_with_custom_email().await? {
            let settings = &project.service_desk;
            let Some(email) = &settings.custom_email else {
                continue;
            };
            let key = format!("{}-{}-issue-", project.full_path_slug, project.id);
            match settings.custom_email_verification_state {
                Some(CustomEmailVerificationState::Finished) if settings.custom_email_enabled => {
                    emails.active.insert(email.to_lowercase(), key);
                }
                Some(CustomEmailVerificationState::Started) => {
                    emails.pending.insert(email.to_lowercase(), key);
                }
                _ => {}
            }
        }
        Ok(emails)
    }
}

impl CustomEmailLookup for CustomEmails {
    fn reply_key(&self, address: &str) -> Option<String> {
        let (key, custom) = custom_email_reply_parts(address)?;
        self.active
            .contains_key(&custom.to_lowercase())
            .then_some(key)
    }

    fn service_desk_key(&self, address: &str) -> Option<String> {
        self.active.get(&address.to_lowercase()).cloned()
    }

    fn verification_key(&self, address: &str) -> Option<String> {
        self.pending.get(&address.to_lowercase()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn custom_email_follows_gitlabs_format() {
        assert!(is_valid("support@acme.com"));
        assert!(is_valid("help.desk-1@mail.acme.co"));
        assert!(!is_valid("support+verify@acme.com"));
        assert!(!is_valid("support@localhost"));
        assert!(!is_valid("no-at-sign"));
        assert!(!is_valid("a b@acme.com"));
    }
}
