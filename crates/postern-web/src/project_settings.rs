//! The web side of a project's settings, shared by the settings pages and the JSON API: who
//! may manage a project, and `postern_core`'s changes (`projects`, `members`, `service_desk`,
//! `authentication`) with their refusals turned into responses. The rules themselves are
//! core's; nothing here writes to the store.

use postern_core::authentication::ProjectPolicyView;
use postern_core::members::{self, Manager, MemberRefusal};
use postern_core::projects::{self, ProjectRequest};
use postern_core::service_desk::{self, ServiceDeskChange};
use postern_core::{ChangeError, ProcessorConfig, Refusal};
use postern_store::{Project, Role, Tx, User, Visibility};

use crate::{WebError, WebState, access};

/// A project `user` may manage, and how.
pub(crate) struct Managed {
    pub(crate) project: Project,
    manager: Manager,
}

/// Project `id` if `user` may manage it (`postern_core::members::Manager::of`). Readers who
/// may not manage it are refused; others do not learn it exists.
pub(crate) async fn managed(tx: &mut Tx, user: &User, id: i64) -> Result<Managed, WebError> {
    let visible = access::project(tx, Some(user), id).await?;
    let manager = Manager::of(user, visible.role).ok_or(WebError::Forbidden)?;
    Ok(Managed {
        project: visible.project,
        manager,
    })
}

/// Project `id` as `user` may manage it ([`managed`]), read in a transaction of its own.
pub(crate) async fn managed_project(
    state: &WebState,
    user: &User,
    id: i64,
) -> Result<Project, WebError> {
    let managed = state.read(async |tx| managed(tx, user, id).await).await?;
    Ok(managed.project)
}

/// Runs `change` on project `id` as `user` manages it ([`managed`]), in one transaction that
/// is committed when `change` succeeds: the shape of every settings change, page or API.
pub(crate) async fn manage<T>(
    state: &WebState,
    user: &User,
    id: i64,
    change: impl AsyncFnOnce(&mut Tx, &Managed) -> Result<T, WebError>,
) -> Result<T, WebError> {
    state
        .write(async |tx| {
            let managed = managed(tx, user, id).await?;
            change(tx, &managed).await
        })
        .await
}

/// A refusal is the person's to fix (400 with its text); a failure is not.
fn refused<R: Refusal>(error: ChangeError<R>) -> WebError {
    match error {
        ChangeError::Refused(refusal) => WebError::BadRequest(refusal.to_string()),
        ChangeError::Failed(failure) => failure.into(),
    }
}

/// Creates a project as `creator`, who becomes its owner (`postern_core::projects`).
pub(crate) async fn create_project(
    state: &WebState,
    creator: &User,
    request: ProjectRequest<'_>,
) -> Result<Project, WebError> {
    let mut tx = state.store().begin().await?;
    let request = ProjectRequest {
        owner: Some(creator),
        ..request
    };
    let created = projects::create(&mut tx, state.processor().repositories(), request)
        .await
        .map_err(refused)?;
    tx.commit().await?;
    Ok(created.project)
}

/// The visibility of a form or body: private when absent.
pub(crate) fn visibility(text: &str) -> Result<Visibility, WebError> {
    match text.trim() {
        "" => Ok(Visibility::Private),
        v => v
            .parse::<Visibility>()
            .map_err(|_| WebError::BadRequest("unknown visibility".into())),
    }
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
    members::set(tx, &managed.project, managed.manager, &target, role)
        .await
        .map_err(member_error)
}

/// Removes `user_id` from the project. `NotFound` when they are not a member.
pub(crate) async fn remove_member(
    tx: &mut Tx,
    managed: &Managed,
    user_id: i64,
) -> Result<(), WebError> {
    members::remove(tx, &managed.project, managed.manager, user_id)
        .await
        .map_err(member_error)
}

/// A maintainer touching an owner is forbidden, a missing member not found; the other
/// refusals are the person's to fix.
fn member_error(error: members::MemberError) -> WebError {
    match error {
        ChangeError::Refused(MemberRefusal::OwnerRightsNeeded) => WebError::Forbidden,
        ChangeError::Refused(MemberRefusal::NotMember) => WebError::NotFound,
        other => refused(other),
    }
}

/// Applies `change` as `user`; a new custom address's verification starts at once, so its
/// mail is in the outbox when this returns. Returns the updated project.
pub(crate) async fn update_service_desk(
    tx: &mut Tx,
    config: &ProcessorConfig,
    managed: &Managed,
    user: &User,
    change: ServiceDeskChange,
) -> Result<Project, WebError> {
    let update = service_desk::update(tx, config, &managed.project, Some(user), change)
        .await
        .map_err(refused)?;
    Ok(update.project)
}

/// The project's sender-authentication policy as shown (`postern_core::authentication` holds
/// the rule: a project only tightens the instance's policy).
pub(crate) fn sender_policy_view(config: &ProcessorConfig, project: &Project) -> ProjectPolicyView {
    use postern_core::authentication::instance_policy;
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
    use postern_core::authentication::{parse_project_policy, set_project_policy};
    let policy = parse_project_policy(policy).map_err(WebError::BadRequest)?;
    Ok(set_project_policy(tx, &managed.project, policy).await?)
}

/// Sends the verification mail for the project's custom address again (a new token; the old
/// one stops counting). Returns the address it goes to (`local+verify@domain`).
pub(crate) async fn verify_custom_email(
    tx: &mut Tx,
    config: &ProcessorConfig,
    managed: &Managed,
    user: &User,
) -> Result<String, WebError> {
    service_desk::verify(tx, config, &managed.project, user)
        .await
        .map_err(refused)
}
