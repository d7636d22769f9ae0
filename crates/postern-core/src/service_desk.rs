//! Changing a project's Service Desk settings, in one place for the settings page, the JSON
//! API and `postern admin project service-desk`.
//!
//! The custom support address follows [`crate::custom_email`]: a new address is no other
//! project's, resets the verification and turns sending from it off, and is enabled only once
//! verified. When the change is made by a person postern can mail (a page or the API), the new
//! address's verification starts at once (GitLab's `CustomEmails::CreateService`); the
//! command line starts it with `service-desk verify --by`.

use postern_store::{Project, StoreError, Tx, User};
use serde::Deserialize;

use crate::config::ProcessorConfig;
use crate::custom_email::{self, CustomEmailRefusal};
use crate::error::{ChangeError, ProcessError, Refusal};

/// A change of Service Desk settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
pub struct ServiceDeskChange {
    /// Service Desk takes mail.
    pub enabled: Option<bool>,
    /// The alias key; `""` clears it.
    pub project_key: Option<String>,
    /// The custom support address; `""` clears it.
    pub custom_email: Option<String>,
    /// Route mail to the custom address and send from it; only once it is verified.
    pub custom_email_enabled: Option<bool>,
    /// New tickets are confidential.
    pub tickets_confidential_by_default: Option<bool>,
    /// An outside participant's note reopens a closed ticket.
    pub reopen_issue_on_external_participant_note: Option<bool>,
    /// `Cc` addresses of a new ticket become participants.
    pub add_external_participants_from_cc: Option<bool>,
    /// The name of the issue template appended to new tickets; `""` clears it. Set at the
    /// command line only.
    #[serde(skip)]
    pub issue_template_key: Option<String>,
    /// That template's text. Set at the command line only.
    #[serde(skip)]
    pub issue_template_content: Option<String>,
}

/// Why a Service Desk change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceDeskRefusal {
    /// The custom address was refused.
    #[error(transparent)]
    CustomEmail(#[from] CustomEmailRefusal),
    /// Another project with the same path slug has that alias key.
    #[error("That project key is taken.")]
    ProjectKeyTaken,
    /// A value the store refuses (an alias key outside `[a-z0-9_]`).
    #[error("Invalid {0}.")]
    Invalid(String),
    /// Verification asked for a project without a custom address.
    #[error("Set a custom email address first.")]
    NoCustomEmail,
}

impl Refusal for ServiceDeskRefusal {}

/// A refusal to show the person who asked, or a store failure.
pub type ServiceDeskError = ChangeError<ServiceDeskRefusal>;

impl From<CustomEmailRefusal> for ServiceDeskError {
    fn from(refusal: CustomEmailRefusal) -> Self {
        ChangeError::Refused(refusal.into())
    }
}

/// The settings after a change, and where a verification mail went when one was started.
#[derive(Debug)]
pub struct ServiceDeskUpdate {
    /// The project as saved.
    pub project: Project,
    /// `local+verify@domain` when a new custom address's verification started.
    pub verification_sent_to: Option<String>,
}

/// Applies `change` to `project`. `triggerer` is the person who asked, when postern can mail
/// them the verification's result: a new custom address's verification then starts at once.
pub async fn update(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    triggerer: Option<&User>,
    change: ServiceDeskChange,
) -> Result<ServiceDeskUpdate, ServiceDeskError> {
    let mut settings = project.service_desk.clone();
    let flags = [
        (&mut settings.enabled, change.enabled),
        (
            &mut settings.tickets_confidential_by_default,
            change.tickets_confidential_by_default,
        ),
        (
            &mut settings.reopen_issue_on_external_participant_note,
            change.reopen_issue_on_external_participant_note,
        ),
        (
            &mut settings.add_external_participants_from_cc,
            change.add_external_participants_from_cc,
        ),
    ];
    for (target, value) in flags {
        if let Some(value) = value {
            *target = value;
        }
    }
    let cleared = |text: String| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(key) = change.project_key {
        settings.project_key = cleared(key);
    }
    if let Some(key) = change.issue_template_key {
        settings.issue_template_key = cleared(key);
    }
    if let Some(content) = change.issue_template_content {
        settings.issue_template_content = Some(content);
    }
    let mut new_address = false;
    if let Some(address) = change.custom_email {
        new_address =
            match custom_email::change(tx, project.id, &mut settings, Some(&address)).await {
                Ok(new_address) => new_address,
                Err(ChangeError::Refused(refusal)) => return Err(refusal.into()),
                Err(ChangeError::Failed(failure)) => return Err(failure.into()),
            };
    }
    if let Some(enabled) = change.custom_email_enabled {
        custom_email::set_enabled(&mut settings, enabled)?;
    }
    let saved = match tx.update_service_desk(project.id, &settings).await {
        Ok(saved) => saved,
        Err(e) if let Some(refusal) = custom_email::refusal_on_save(&e, &settings) => {
            return Err(refusal.into());
        }
        Err(e) if e.is_unique_violation() => {
            return Err(ServiceDeskRefusal::ProjectKeyTaken.into());
        }
        Err(StoreError::Invalid(what)) => return Err(ServiceDeskRefusal::Invalid(what).into()),
        Err(e) => return Err(e.into()),
    };
    match triggerer {
        Some(user) if new_address => {
            let sent_to = crate::verification::start(tx, config, &saved, user).await?;
            let project = tx
                .project_by_id(saved.id)
                .await?
                .ok_or_else(|| ProcessError::Internal(format!("project {} vanished", saved.id)))?;
            Ok(ServiceDeskUpdate {
                project,
                verification_sent_to: Some(sent_to),
            })
        }
        _ => Ok(ServiceDeskUpdate {
            project: saved,
            verification_sent_to: None,
        }),
    }
}

/// Sends the verification mail for the project's custom address (again: a new token, the old
/// one stops counting), the result to go to `triggerer`. Returns the address it goes to.
pub async fn verify(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    triggerer: &User,
) -> Result<String, ServiceDeskError> {
    if project.service_desk.custom_email.is_none() {
        return Err(ServiceDeskRefusal::NoCustomEmail.into());
    }
    Ok(crate::verification::start(tx, config, project, triggerer).await?)
}
