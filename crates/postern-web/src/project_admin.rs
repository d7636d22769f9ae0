//! A project's settings page, for its maintainers and owners and for administrators: the
//! addresses GitLab shows, members, Service Desk settings, and the custom support address with
//! its verification, protected branches, the sender-authentication policy. The rules live in `project_settings`, shared with the API.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_store::{Project, Role, User};
use serde::Deserialize;

use crate::error::Path;
use crate::project_settings;
use crate::session::{Me, Posted, SignedIn};
use crate::{WebError, WebState};
use postern_core::service_desk::ServiceDeskChange;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/projects/{id}", get(project))
        .route("/projects/{id}/settings", get(project))
        .route("/admin/projects/{id}/members", post(add_member))
        .route(
            "/admin/projects/{id}/members/{user_id}/remove",
            post(remove_member),
        )
        .route("/admin/projects/{id}/service_desk", post(service_desk))
        .route(
            "/admin/projects/{id}/service_desk/custom_email",
            post(custom_email),
        )
        .route(
            "/admin/projects/{id}/service_desk/custom_email/verify",
            post(verify_custom_email),
        )
        .route(
            "/admin/projects/{id}/sender_authentication",
            post(sender_authentication),
        )
        .route(
            "/admin/projects/{id}/branches/protect",
            post(protect_branch),
        )
        .route(
            "/admin/projects/{id}/branches/unprotect",
            post(unprotect_branch),
        )
}

/// Which of a project's addresses a page shows (the settings page: all of them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown {
    /// The person's new-issue address.
    pub(crate) issues: bool,
    /// The person's new-merge-request address.
    pub(crate) merge_requests: bool,
    /// The Service Desk addresses (reporters and up: they answer what arrives there).
    pub(crate) service_desk: bool,
}

/// The addresses GitLab shows for a project, with `user`'s own token in the personal ones.
fn addresses(state: &WebState, project: &Project, user: &User) -> Vec<(String, String)> {
    let all = Shown {
        issues: true,
        merge_requests: true,
        service_desk: true,
    };
    addresses_shown(state, project, user, all)
}

/// [`addresses`], only those `shown` asks for.
pub(crate) fn addresses_shown(
    state: &WebState,
    project: &Project,
    user: &User,
    shown_kinds: Shown,
) -> Vec<(String, String)> {
    let config = state.processor().config();
    let slug = &project.full_path_slug;
    let mut shown = Vec::new();
    if let Some(incoming) = &config.incoming_address {
        let token = &user.incoming_email_token;
        if shown_kinds.issues {
            shown.push((
                "New issue by email (yours)".to_owned(),
                incoming.address_for_key(&format!("{slug}-{}-{token}-issue", project.id)),
            ));
        }
        if shown_kinds.merge_requests {
            shown.push((
                "New merge request by email (yours)".to_owned(),
                incoming.address_for_key(&format!("{slug}-{}-{token}-merge-request", project.id)),
            ));
        }
        if project.service_desk.enabled && shown_kinds.service_desk {
            shown.push((
                "Service Desk".to_owned(),
                incoming.address_for_key(&format!("{slug}-{}-issue-", project.id)),
            ));
        }
    }
    if !shown_kinds.service_desk {
        return shown;
    }
    if let (Some(desk), true) = (&config.service_desk_address, project.service_desk.enabled) {
        let key = match &project.service_desk.project_key {
            Some(key) => format!("{slug}-{key}"),
            None => format!("{slug}-{}-issue-", project.id),
        };
        shown.push((
            "Service Desk (service desk mailbox)".to_owned(),
            desk.address_for_key(&key),
        ));
    }
    if let Some(custom) = &project.service_desk.custom_email {
        shown.push(("Custom support address".to_owned(), custom.clone()));
    }
    shown
}

async fn project(
    State(state): State<WebState>,
    SignedIn(me): SignedIn,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    settings_page(&state, &me, id, None).await
}

async fn settings_page(
    state: &WebState,
    me: &Me,
    id: i64,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    settings_page_with(state, me, id, notice, None).await
}

/// A form of the settings page that was refused: it comes back as typed, with the reason
/// beside it, under the refusal's status.
enum Refused<'a> {
    /// Adding a member or changing a role.
    Member(&'a MemberForm),
    /// Removing a member (the last owner): nothing typed, the reason beside the members.
    RemoveMember,
    /// The Service Desk form.
    ServiceDesk(&'a ServiceDeskForm),
}

/// Runs `refused_form`'s handler result: a refusal the person can fix comes back as the
/// settings page with the form as typed; success redirects to the settings page.
async fn back_to_settings<T>(
    state: &WebState,
    me: &Me,
    id: i64,
    result: Result<T, WebError>,
    refused_form: Refused<'_>,
) -> Result<Response, WebError> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/admin/projects/{id}")).into_response()),
        Err(error) if error.form_problem().is_some() => {
            settings_page_with(state, me, id, None, Some((refused_form, &error))).await
        }
        Err(error) => Err(error),
    }
}

async fn settings_page_with(
    state: &WebState,
    me: &Me,
    id: i64,
    notice: Option<&str>,
    refused: Option<(Refused<'_>, &WebError)>,
) -> Result<Response, WebError> {
    let (managed, members, protected_branches) = state
        .read(async |tx| {
            let managed = project_settings::managed(tx, &me.user, id).await?;
            Ok((
                managed,
                tx.list_members(id).await?,
                tx.protected_branches(id).await?,
            ))
        })
        .await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let addresses = addresses(state, &managed.project, &me.user);
    let sender_authentication =
        project_settings::sender_policy_view(state.processor().config(), &managed.project);
    let (status, error) = match refused.as_ref().and_then(|(_, e)| e.form_problem()) {
        Some((status, text)) => (status, Some(text)),
        None => (axum::http::StatusCode::OK, None),
    };
    let (member_error, service_desk_error) = match refused.as_ref().map(|(form, _)| form) {
        Some(Refused::Member(_) | Refused::RemoveMember) => (error, None),
        Some(Refused::ServiceDesk(_)) => (None, error),
        None => (None, None),
    };
    let typed_member = match refused.as_ref().map(|(form, _)| form) {
        Some(Refused::Member(form)) => Some(crate::pages::page! {
            username => &form.username, role => &form.role,
        }),
        _ => None,
    };
    let typed_key = match refused.as_ref().map(|(form, _)| form) {
        Some(Refused::ServiceDesk(form)) => Some(form.project_key.as_str()),
        _ => None,
    };
    let page = state.render(
        "project_admin.html",
        Some(me),
        crate::pages::page! { project => &managed.project, members => members, roles => roles,
        addresses => addresses, notice => notice,
        protected_branches => protected_branches,
        sender_authentication => sender_authentication,
        member_error => member_error, typed_member => typed_member,
        service_desk_error => service_desk_error, typed_key => typed_key },
    )?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// Adds a member, or changes the role of one.
async fn add_member(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<MemberForm>,
) -> Result<Response, WebError> {
    let added = async {
        let role = form
            .role
            .parse::<Role>()
            .map_err(|_| WebError::BadRequest("Unknown role.".into()))?;
        project_settings::manage(&state, &me.user, id, async |tx, managed| {
            let user = tx
                .user_by_username(form.username.trim())
                .await?
                .ok_or_else(|| WebError::BadRequest("No such user.".into()))?;
            project_settings::set_member(tx, managed, user.id, role).await
        })
        .await
    }
    .await;
    back_to_settings(&state, &me, id, added, Refused::Member(&form)).await
}

async fn remove_member(
    State(state): State<WebState>,
    Path((id, user_id)): Path<(i64, i64)>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    let removed = project_settings::manage(&state, &me.user, id, async |tx, managed| {
        project_settings::remove_member(tx, managed, user_id).await
    })
    .await;
    back_to_settings(&state, &me, id, removed, Refused::RemoveMember).await
}

#[derive(Deserialize)]
struct ServiceDeskForm {
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    project_key: String,
    #[serde(default)]
    tickets_confidential_by_default: Option<String>,
    #[serde(default)]
    reopen_issue_on_external_participant_note: Option<String>,
    #[serde(default)]
    add_external_participants_from_cc: Option<String>,
}

/// The checkboxes of the Service Desk form: an unchecked box is absent, so every flag is set.
async fn service_desk(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<ServiceDeskForm>,
) -> Result<Response, WebError> {
    let change = ServiceDeskChange {
        enabled: Some(form.enabled.is_some()),
        project_key: Some(form.project_key.clone()),
        tickets_confidential_by_default: Some(form.tickets_confidential_by_default.is_some()),
        reopen_issue_on_external_participant_note: Some(
            form.reopen_issue_on_external_participant_note.is_some(),
        ),
        add_external_participants_from_cc: Some(form.add_external_participants_from_cc.is_some()),
        ..ServiceDeskChange::default()
    };
    let changed = change_service_desk(&state, &me, id, change).await;
    back_to_settings(&state, &me, id, changed, Refused::ServiceDesk(&form)).await
}

async fn change_service_desk(
    state: &WebState,
    me: &Me,
    id: i64,
    change: ServiceDeskChange,
) -> Result<Project, WebError> {
    let config = state.processor().config();
    project_settings::manage(state, &me.user, id, async |tx, managed| {
        project_settings::update_service_desk(tx, config, managed, &me.user, change).await
    })
    .await
}

#[derive(Deserialize)]
struct CustomEmailForm {
    #[serde(default)]
    custom_email: String,
    /// Present when mail should go out from the (verified) custom address.
    #[serde(default)]
    custom_email_enabled: Option<String>,
}

/// Sets the custom support address (a new one is verified at once) and whether Service Desk
/// mail goes out from it.
async fn custom_email(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<CustomEmailForm>,
) -> Result<Response, WebError> {
    let address = form.custom_email.trim().to_owned();
    let change = ServiceDeskChange {
        custom_email: Some(address.clone()),
        custom_email_enabled: Some(form.custom_email_enabled.is_some()),
        ..ServiceDeskChange::default()
    };
    let before = project_settings::managed_project(&state, &me.user, id).await?;
    let changed =
        !address.eq_ignore_ascii_case(before.service_desk.custom_email.as_deref().unwrap_or(""));
    let project = change_service_desk(&state, &me, id, change).await?;
    let notice = match (&project.service_desk.custom_email, changed) {
        (Some(address), true) => {
            format!("A verification email is on its way to {address} (its +verify form).")
        }
        (None, true) => "The custom email address is removed.".to_owned(),
        _ => "Saved.".to_owned(),
    };
    settings_page(&state, &me, id, Some(&notice)).await
}

/// Sends the verification mail again, with a new token.
async fn verify_custom_email(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    let sent_to = project_settings::manage(&state, &me.user, id, async |tx, managed| {
        project_settings::verify_custom_email(tx, config, managed, &me.user).await
    })
    .await?;
    let notice = format!("A verification email is on its way to {sent_to}.");
    settings_page(&state, &me, id, Some(&notice)).await
}

#[derive(Deserialize)]
struct SenderPolicyForm {
    /// `dmarc`, `require` or `default`.
    #[serde(default)]
    policy: String,
}

/// Sets the project's sender-authentication policy; it applies to the next mail.
async fn sender_authentication(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<SenderPolicyForm>,
) -> Result<Response, WebError> {
    project_settings::manage(&state, &me.user, id, async |tx, managed| {
        project_settings::set_sender_policy(tx, managed, &form.policy).await
    })
    .await?;
    settings_page(&state, &me, id, Some("Saved.")).await
}

#[derive(Deserialize)]
struct BranchForm {
    #[serde(default)]
    branch: String,
}

/// Protects a branch (`postern_core::branches` holds the rule).
async fn protect_branch(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<BranchForm>,
) -> Result<Response, WebError> {
    change_branch(state, me, id, form, true).await
}

/// Unprotects a branch.
async fn unprotect_branch(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<BranchForm>,
) -> Result<Response, WebError> {
    change_branch(state, me, id, form, false).await
}

async fn change_branch(
    state: WebState,
    me: Me,
    id: i64,
    form: BranchForm,
    protect: bool,
) -> Result<Response, WebError> {
    use postern_core::branches::{self, BranchError};
    let branch = form.branch.trim();
    project_settings::manage(&state, &me.user, id, async |tx, managed| {
        let changed = if protect {
            branches::protect(tx, &managed.project, branch).await
        } else {
            branches::unprotect(tx, &managed.project, branch).await
        };
        match changed {
            Ok(_) => Ok(()),
            Err(BranchError::Refused(refusal)) => Err(WebError::BadRequest(refusal.to_string())),
            Err(BranchError::Failed(failure)) => Err(failure.into()),
        }
    })
    .await?;
    let notice = if protect {
        format!("{branch} is protected.")
    } else {
        format!("{branch} is no longer protected.")
    };
    settings_page(&state, &me, id, Some(&notice)).await
}
