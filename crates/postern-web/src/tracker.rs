//! Tracker pages: the projects, a project with its issues and merge requests, an issue or
//! ticket (its comments, closing and reopening are `threads`'), opening an issue, and the
//! attachments mail brought in.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_core::actions;
use postern_store::Issue;
use serde::Deserialize;

use crate::access;
use crate::error::Path;
use crate::issue_list::ListParams;
use crate::session::{Me, Posted, SignedIn, Viewer};
use crate::threads;
use crate::{WebError, WebState, render_markdown};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/explore", get(explore))
        .route("/projects/{id}", get(project))
        .route("/projects/{id}/issues", post(new_issue))
        .route("/projects/{id}/issues/new", get(new_issue_form))
        .route("/projects/{id}/issues/{iid}", get(issue))
        .route("/projects/{id}/issues/{iid}/fields", post(change_fields))
        .route("/uploads/{secret}/{filename}", get(upload))
        .merge(threads::routes::<Issue>())
}

async fn home(State(state): State<WebState>, SignedIn(me): SignedIn) -> Result<Response, WebError> {
    project_list(&state, Some(&me)).await
}

/// The projects anyone may see: public ones signed out (GitLab's "Explore"), everything
/// readable signed in.
async fn explore(State(state): State<WebState>, Viewer(me): Viewer) -> Result<Response, WebError> {
    project_list(&state, me.as_ref()).await
}

async fn project_list(state: &WebState, me: Option<&Me>) -> Result<Response, WebError> {
    let visible = state
        .read(async |tx| access::projects(tx, me.map(|m| &m.user)).await)
        .await?;
    let projects: Vec<_> = visible.into_iter().map(|v| v.project).collect();
    Ok(state
        .render(
            "home.html",
            me,
            crate::pages::page! { projects => projects },
        )?
        .into_response())
}

async fn project(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(id): Path<i64>,
    Query(query): Query<ListParams>,
) -> Result<Response, WebError> {
    let viewer = me.as_ref().map(|m| &m.user);
    let (visible, issues, merge_requests) = state
        .read(async |tx| {
            let visible = access::project(tx, viewer, id).await?;
            let issues = query.search(tx, &visible, viewer).await?;
            let merge_requests = tx.list_merge_requests(Some(id)).await?;
            Ok((visible, issues, merge_requests))
        })
        .await?;
    let can_create_issue =
        viewer.is_some_and(|user| visible.actor(user).can_create_issue(&visible.project));
    let can_manage = viewer.is_some_and(|user| {
        user.admin
            || visible
                .role
                .is_some_and(|r| r >= postern_store::Role::Maintainer)
    });
    let list = IssueListView {
        prev_url: (issues.page > 1).then(|| query.link(issues.page - 1)),
        next_url: issues.has_next.then(|| query.link(issues.page + 1)),
        page: issues.page,
        mine: query.mine(),
        params: &query,
    };
    let addresses = my_addresses(&state, &visible, viewer);
    let page = state.render(
        "project.html",
        me.as_ref(),
        crate::pages::page! {
            project => &visible.project, issues => issues.items, merge_requests => merge_requests,
            can_create_issue => can_create_issue, can_manage => can_manage,
            state_filter => &query.state, list => list, addresses => addresses,
        },
    )?;
    Ok(page.into_response())
}

/// The list's form values and the links to the pages around this one.
#[derive(serde::Serialize)]
struct IssueListView<'a> {
    params: &'a ListParams,
    mine: bool,
    page: u32,
    prev_url: Option<String>,
    next_url: Option<String>,
}

/// The addresses `viewer` may use on the project page (GitLab's "Email a new issue to this
/// project"): their new-issue address when they may open issues, their new-merge-request one
/// as a developer, the Service Desk ones for reporters and up. None signed out.
fn my_addresses(
    state: &WebState,
    visible: &access::Visible,
    viewer: Option<&postern_store::User>,
) -> Vec<(String, String)> {
    let Some(user) = viewer else {
        return Vec::new();
    };
    let actor = visible.actor(user);
    let project = &visible.project;
    let shown = crate::project_admin::Shown {
        issues: actor.can_create_issue(project),
        merge_requests: actor.can_update_merge_request(project),
        service_desk: user.admin
            || visible
                .role
                .is_some_and(|r| r >= postern_store::Role::Reporter),
    };
    crate::project_admin::addresses_shown(state, project, user, shown)
}

#[derive(Deserialize)]
struct NewIssueForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

/// The new issue form on a page of its own, `form`'s values in it and `errors` next to the
/// title (a refused form comes back here with what was typed).
async fn new_issue_page(
    state: &WebState,
    me: &Me,
    id: i64,
    form: &NewIssueForm,
    errors: &[String],
) -> Result<Response, WebError> {
    let visible = state
        .read(async |tx| access::project(tx, Some(&me.user), id).await)
        .await?;
    if !visible.actor(&me.user).can_create_issue(&visible.project) {
        return Err(WebError::Forbidden);
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = state.render(
        "new_issue.html",
        Some(me),
        crate::pages::page! {
            project => &visible.project, title => &form.title, description => &form.description,
            errors => errors, max_title => actions::MAX_TITLE_CHARS,
        },
    )?;
    Ok((status, page).into_response())
}

async fn new_issue_form(
    State(state): State<WebState>,
    SignedIn(me): SignedIn,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let empty = NewIssueForm {
        title: String::new(),
        description: String::new(),
    };
    new_issue_page(&state, &me, id, &empty, &[]).await
}

async fn new_issue(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<NewIssueForm>,
) -> Result<Response, WebError> {
    // The title's own problems are shown next to it, the form kept; the other refusals
    // (permission) are pages of their own.
    let problems = actions::title_problems(form.title.trim());
    if !problems.is_empty() {
        return new_issue_page(&state, &me, id, &form, &problems).await;
    }
    let config = state.processor().config();
    let issue = state
        .write(async |tx| {
            let visible = access::project(tx, Some(&me.user), id).await?;
            let title = form.title.trim();
            Ok(actions::open_issue(
                tx,
                config,
                &visible.project,
                &me.user,
                title,
                &form.description,
            )
            .await?)
        })
        .await?;
    Ok(Redirect::to(&format!("/projects/{id}/issues/{}", issue.iid)).into_response())
}

async fn issue(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(ids): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let viewer = me.as_ref().map(|m| &m.user);
    let page = threads::page::<Issue>(&state, viewer, ids).await?;
    let issue = &page.item;
    let assignees = state
        .read(async |tx| {
            let mut names = Vec::with_capacity(issue.assignee_ids.len());
            for id in &issue.assignee_ids {
                if let Some(user) = tx.user_by_id(*id).await? {
                    names.push(user.username);
                }
            }
            Ok(names)
        })
        .await?;
    let can_edit_fields = viewer.is_some_and(|user| {
        page.visible
            .actor(user)
            .can_admin_issue(&page.visible.project)
    });
    let page = state.render(
        "issue.html",
        me.as_ref(),
        crate::pages::page! {
            project => &page.visible.project,
            issue => issue,
            author => page.author,
            description_html => render_markdown(&issue.description),
            notes => page.notes,
            can_comment => page.rights.comment,
            can_update => page.rights.update,
            assignees => assignees,
            can_edit_fields => can_edit_fields,
            can_internal => page.rights.internal,
            mail_line => page.mail_line,
            mail_views => page.mail_views,
        },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct FieldsForm {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    assignees: String,
    #[serde(default)]
    due_date: String,
}

/// The quick actions that turn `issue`'s labels, assignees and due date into the form's, one
/// per field that changed (empty when nothing did). An assignee must be a user; a due date a
/// `YYYY-MM-DD` date (what a date field sends).
async fn field_commands(
    tx: &mut postern_store::Tx,
    issue: &Issue,
    form: &FieldsForm,
) -> Result<String, WebError> {
    let mut commands = Vec::new();
    let labels: Vec<String> = form
        .labels
        .split(',')
        .map(|l| l.trim().trim_start_matches('~').replace('"', ""))
        .filter(|l| !l.is_empty())
        .collect();
    if labels != issue.labels {
        if labels.is_empty() {
            commands.push("/unlabel".to_owned());
        } else {
            let quoted: Vec<String> = labels.iter().map(|l| format!("~\"{l}\"")).collect();
            commands.push(format!("/relabel {}", quoted.join(" ")));
        }
    }
    let mut assignees = Vec::new();
    let mut names = Vec::new();
    for name in form
        .assignees
        .split([',', ' '])
        .map(|n| n.trim().trim_start_matches('@'))
        .filter(|n| !n.is_empty())
        .take(postern_core::quick::MAX_USERS_PER_ACTION)
    {
        let user = tx
            .user_by_username(name)
            .await?
            .filter(|u| !u.is_support_bot())
            .ok_or_else(|| WebError::Refused(format!("No user is called @{name}.")))?;
        if !assignees.contains(&user.id) {
            assignees.push(user.id);
            names.push(format!("@{}", user.username));
        }
    }
    if assignees != issue.assignee_ids {
        // Cleared, then the list as asked, in the order the person wrote it.
        commands.push("/unassign".to_owned());
        if !names.is_empty() {
            commands.push(format!("/assign {}", names.join(" ")));
        }
    }
    let due = form.due_date.trim();
    if due.is_empty() {
        if issue.due_date.is_some() {
            commands.push("/remove_due_date".to_owned());
        }
    } else if issue.due_date.as_deref() != Some(due) {
        let is_date = due.len() == 10
            && due.char_indices().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !is_date {
            return Err(WebError::Refused(
                "The due date must be a date such as 2026-12-01.".to_owned(),
            ));
        }
        commands.push(format!("/due {due}"));
    }
    Ok(commands.join("\n"))
}

/// Changes an issue's labels, assignees and due date from its page: the quick actions a mail
/// would carry, run through the same comment path, so the same rules, system notes and mail
/// follow. Refused (403) to those who may not set them, rather than silently skipped.
async fn change_fields(
    State(state): State<WebState>,
    Path((id, iid)): Path<(i64, i64)>,
    Posted(me, form): Posted<FieldsForm>,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    state
        .write(async |tx| {
            let visible = access::project(tx, Some(&me.user), id).await?;
            let issue = access::issue(tx, Some(&me.user), &visible, iid).await?;
            if !visible.actor(&me.user).can_admin_issue(&visible.project) {
                return Err(WebError::Forbidden);
            }
            let commands = field_commands(tx, &issue, &form).await?;
            if commands.is_empty() {
                return Ok(());
            }
            actions::comment(tx, config, &visible.project, &me.user, &issue, &commands).await?;
            Ok(())
        })
        .await?;
    Ok(Redirect::to(&format!("/projects/{id}/issues/{iid}")).into_response())
}

/// Types a browser may show inline; everything else is a download.
const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif"];

async fn upload(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path((secret, filename)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let viewer = me.as_ref().map(|me| &me.user);
    let directory = state.uploads_dir();
    let (upload, bytes) = state
        .read(async |tx| {
            let upload = tx
                .upload_by_secret(&secret)
                .await?
                .filter(|u| u.file.filename == filename)
                .ok_or_else(|| access::hidden(viewer))?;
            if !access::reads_upload(tx, viewer, &upload).await? {
                return Err(access::hidden(viewer));
            }
            // From the database or this instance's upload directory, as the store keeps it;
            // whole, which the attachment size limit the upload was accepted under bounds.
            let bytes = tx
                .upload_content(&upload, &directory)
                .await?
                .ok_or(WebError::NotFound)?;
            Ok((upload, bytes))
        })
        .await?;
    let inline = INLINE_TYPES.contains(&upload.file.content_type.as_str());
    let (content_type, disposition) = if inline {
        (upload.file.content_type.clone(), "inline".to_owned())
    } else {
        let safe_name: String = upload
            .file
            .filename
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        (
            "application/octet-stream".to_owned(),
            format!("attachment; filename=\"{safe_name}\""),
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
