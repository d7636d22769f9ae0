//! Changing a project's members, Service Desk settings and sender-authentication policy, shared by the settings pages and
//! the JSON API so both apply GitLab's rules: maintainers, owners and administrators manage a
//! project; only owners (and administrators) grant, change or remove the owner role; a project
//! keeps at least one owner; setting a custom support address starts its verification.

use postern_core::{ProcessorConfig, custom_email};
use postern_store::{Member, Project, Role, ServiceDeskSettings, StoreError, Tx, User};
use serde::Deserialize;

use crate::{WebError, access};

/// A project `user` may manage, with their role in it.
pub(crate) struct Managed {
    pub(crate) project: Project,
    role: Option<Role>,
    admin: bool,
}

impl Managed {
    /// Owners and administrators may touch the owner role.
    fn owner_rights(&self) -> bool {
        self.admin || self.role == Some(Role::Owner)
    }
}

/// Project `id` if `user` may manage it (GitLab's `admin_project`: maintainers and up, or an
/// administrator). Readers who may not manage it are refused; others do not learn it exists.
pub(crate) async fn managed(tx: &mut Tx, user: &User, id: i64) -> Result<Managed, WebError> {
    let visible = access::project(tx, Some(user), id).await?;
    if !(user.admin || visible.role.is_some_and(|r| r >= Role::Maintainer)) {
        return Err(WebError::Forbidden);
    }
    Ok(Managed {
        project: visible.project,
        role: visible.role,
        admin: user.admin,
    })
}

/// Gives `user_id` `role` in the project (adding them, or changing their role).
pub(crate) async fn set_member(
    tx: &mut Tx,
    managed: &Managed,
    user_id: i64,
    role: Role,
) -> Result<(), WebError> {
    let target = tx
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| WebError::BadRequest("No such user.".into()))?;
    if target.is_support_bot() {
        return Err(WebError::BadRequest(
            "The Support Bot is not a member.".into(),
        ));
    }
    let current = tx.member_role(managed.project.id, user_id).await?;
    let touches_owner = role == Role::Owner || current == Some(Role::Owner);
    if touches_owner && !managed.owner_rights() {
        return Err(WebError::Forbidden);
    }
    if current == Some(Role::Owner) && role != Role::Owner {
        keeps_an_owner(tx, managed.project.id, user_id).await?;
    }
    tx.add_member(managed.project.id, user_id, role).await?;
    Ok(())
}

/// Removes `user_id` from the project. `NotFound` when they are not a member.
pub(crate) async fn remove_member(
    tx: &mut Tx,
    managed: &Managed,
    user_id: i64,
) -> Result<(), WebError> {
    let current = tx
        .member_role(managed.project.id, user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    if current == Role::Owner {
        if !managed.owner_rights() {
            return Err(WebError::Forbidden);
        }
        keeps_an_owner(tx, managed.project.id, user_id).await?;
    }
    tx.remove_member(managed.project.id, user_id).await?;
    Ok(())
}

/// Refuses a change that would leave the project without an owner.
async fn keeps_an_owner(tx: &mut Tx, project_id: i64, leaving: i64) -> Result<(), WebError> {
    let others = tx
        .list_members(project_id)
        .await?
        .iter()
        .filter(|m: &&Member| m.role == Role::Owner && m.user_id != leaving)
        .count();
    if others == 0 {
        Err(WebError::BadRequest(
            "A project needs at least one owner.".into(),
        ))
    } else {
        Ok(())
    }
}

/// A change of Service Desk settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ServiceDeskChange {
    pub(crate) enabled: Option<bool>,
    /// `""` clears the key.
    pub(crate) project_key: Option<String>,
    /// `""` clears the custom address.
    pub(crate) custom_email: Option<String>,
    /// Send Service Desk mail from the custom address; only once it is verified.
    pub(crate) custom_email_enabled: Option<bool>,
    pub(crate) tickets_confidential_by_default: Option<bool>,
    pub(crate) reopen_issue_on_external_participant_note: Option<bool>,
    pub(crate) add_external_participants_from_cc: Option<bool>,
}

/// Applies `change` as `user`. A new custom address resets its verification and starts a new
/// one at once (GitLab's `CustomEmails::CreateService`), so its mail is in the outbox when
/// this returns. Returns the updated project.
pub(crate) async fn update_service_desk(
    tx: &mut Tx,
    config: &ProcessorConfig,
    managed: &Managed,
    user: &User,
    change: ServiceDeskChange,
) -> Result<Project, WebError> {
    let mut settings: ServiceDeskSettings = managed.project.service_desk.clone();
    let set = |target: &mut bool, value: Option<bool>| {
        if let Some(value) = value {
            *target = value;
        }
    };
    set(&mut settings.enabled, change.enabled);
    set(
        &mut settings.tickets_confidential_by_default,
        change.tickets_confidential_by_default,
    );
    set(
        &mut settings.reopen_issue_on_external_participant_note,
        change.reopen_issue_on_external_participant_note,
    );
    set(
        &mut settings.add_external_participants_from_cc,
        change.add_external_participants_from_cc,
    );
    if let Some(key) = change.project_key {
        let key = key.trim();
        settings.project_key = (!key.is_empty()).then(|| key.to_owned());
    }
    let mut new_address = false;
    if let Some(address) = change.custom_email {
        new_address = custom_email::change(
            tx,
            managed.project.id,
            &mut settings,
            Some(address.as_str()),
        )
        .await
        .map_err(custom_email_error)?;
    }
    if let Some(enabled) = change.custom_email_enabled {
        custom_email::set_enabled(&mut settings, enabled)
            .map_err(|refusal| WebError::BadRequest(refusal.to_string()))?;
    }
    let project = match tx.update_service_desk(managed.project.id, &settings).await {
        Ok(project) => project,
        Err(e) if let Some(refusal) = custom_email::refusal_on_save(&e, &settings) => {
            return Err(WebError::BadRequest(refusal.to_string()));
        }
        Err(e) if e.is_unique_violation() => {
            return Err(WebError::BadRequest("That project key is taken.".into()));
        }
        Err(StoreError::Invalid(text)) => return Err(WebError::BadRequest(text)),
        Err(e) => return Err(e.into()),
    };
    if new_address {
        postern_core::verification::start(tx, config, &project, user).await?;
        return tx
            .project_by_id(project.id)
            .await?
            .ok_or(WebError::NotFound);
    }
    Ok(project)
}

/// The project's sender-authentication policy as shown (`postern_core::authentication` holds
/// the rule: a project only tightens the instance's policy).
pub(crate) fn sender_policy_view(
    config: &ProcessorConfig,
    project: &Project,
) -> postern_core::authentication::ProjectPolicyView {
    use postern_core::authentication::{ProjectPolicyView, instance_policy};
    let instance = instance_policy(config.sender_authentication.as_ref());
    ProjectPolicyView::new(instance, project.sender_policy)
}

/// Sets the project's sender-authentication policy from its typed form (`dmarc`, `require`,
/// `default`); it applies to the next mail. Returns the updated project.
pub(crate) async fn set_sender_policy(
    tx: &mut Tx,
    managed: &Managed,
    policy: &str,
) -> Result<Project, WebError> {
    let policy =
        postern_core::authentication::parse_project_policy(policy).map_err(WebError::BadRequest)?;
    Ok(tx
        .set_project_sender_policy(managed.project.id, policy)
        .await?)
}

/// Sends the verification mail for the project's custom address again (a new token; the old
/// one stops counting). Returns the address it goes to (`local+verify@domain`).
pub(crate) async fn verify_custom_email(
    tx: &mut Tx,
    config: &ProcessorConfig,
    managed: &Managed,
    user: &User,
) -> Result<String, WebError> {
    if managed.project.service_desk.custom_email.is_none() {
        return Err(WebError::BadRequest(
            "Set a custom email address first.".into(),
        ));
    }
    Ok(postern_core::verification::start(tx, config, &managed.project, user).await?)
}

/// A refused custom email is the person's to fix (400 with the reason); a store failure is not.
fn custom_email_error(error: custom_email::CustomEmailError) -> WebError {
    match error {
        custom_email::CustomEmailError::Refused(refusal) => {
            WebError::BadRequest(refusal.to_string())
        }
        custom_email::CustomEmailError::Failed(failure) => failure.into(),
    }
}
