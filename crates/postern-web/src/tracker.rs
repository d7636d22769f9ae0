//! Tracker pages: the projects, a project with its issues and merge requests, an issue or
//! ticket (its comments, closing and reopening are `threads`'), opening an issue, and the
//! attachments mail brought in.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_core::actions;
use postern_store::{Issue, IssueFilter, IssueState};
use serde::Deserialize;

use crate::access;
use crate::session::{Me, Posted, SignedIn, Viewer};
use crate::threads;
use crate::{WebError, WebState, render_markdown};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/explore", get(explore))
        .route("/projects/{id}", get(project))
        .route("/projects/{id}/issues", post(new_issue))
        .route("/projects/{id}/issues/{iid}", get(issue))
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

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    state: String,
}

async fn project(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(id): Path<i64>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let viewer = me.as_ref().map(|m| &m.user);
    let issue_state = match query.state.as_str() {
        "" | "all" => None,
        s => Some(
            s.parse::<IssueState>()
                .map_err(|_| WebError::BadRequest(format!("unknown state {s:?}")))?,
        ),
    };
    let (visible, issues, merge_requests) = state
        .read(async |tx| {
            let visible = access::project(tx, viewer, id).await?;
            let issues: Vec<_> = tx
                .list_issues(&IssueFilter {
                    project_id: Some(id),
                    state: issue_state,
                    issue_type: None,
                })
                .await?
                .into_iter()
                .filter(|i| visible.reads_issue(viewer, i))
                .collect();
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
    let page = state.render(
        "project.html",
        me.as_ref(),
        crate::pages::page! {
            project => &visible.project, issues => issues, merge_requests => merge_requests,
            can_create_issue => can_create_issue, can_manage => can_manage,
            state_filter => &query.state,
        },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct NewIssueForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

async fn new_issue(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, form): Posted<NewIssueForm>,
) -> Result<Response, WebError> {
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
            can_internal => page.rights.internal,
            mail_line => page.mail_line,
            mail_views => page.mail_views,
        },
    )?;
    Ok(page.into_response())
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
