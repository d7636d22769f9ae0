//! The merge request page (commits, diff, comments) and what a person does there: comment,
//! close and reopen, all through `postern_core::actions`, so the same notifications go out as
//! for a mail reply.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use postern_core::actions;
use postern_store::Noteable;

use crate::access;
use crate::auth::CsrfForm;
use crate::session;
use crate::tracker::CommentForm;
use crate::{WebError, WebState, render_markdown};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/projects/{id}/merge_requests/{iid}", get(merge_request))
        .route("/projects/{id}/merge_requests/{iid}/notes", post(comment))
        .route("/projects/{id}/merge_requests/{iid}/close", post(close))
        .route("/projects/{id}/merge_requests/{iid}/reopen", post(reopen))
}

async fn merge_request(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((id, iid)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let me = session::current(&state, &headers).await?;
    let viewer = me.as_ref().map(|m| &m.user);
    let (visible, mr, (notes, author)) = state
        .read(async |tx| {
            let visible = access::project(tx, viewer, id).await?;
            let mr = access::merge_request(tx, viewer, &visible, iid).await?;
            let noteable = Noteable::MergeRequest(mr.id);
            let thread = access::thread(tx, viewer, &visible, noteable, mr.author_id).await?;
            Ok((visible, mr, thread))
        })
        .await?;
    let (can_comment, can_update) = match viewer {
        Some(user) => {
            let actor = visible.actor(user);
            let can_comment = actor.can_create_note(&visible.project, None);
            (
                can_comment,
                actor.can_update_merge_request(&visible.project)
                    || (can_comment && mr.author_id == user.id),
            )
        }
        None => (false, false),
    };
    let diff = merge_request_diff(&state, id, &mr.target_branch, &mr.source_branch).await;
    let page = state.render(
        "merge_request.html",
        me.as_ref(),
        crate::pages::page! {
            project => &visible.project, mr => &mr, author => author,
            description_html => render_markdown(&mr.description), notes => notes,
            diff => diff, can_comment => can_comment, can_update => can_update,
        },
    )?;
    Ok(page.into_response())
}

/// Comments as the signed-in user through the same action as a mail reply. Closing and
/// reopening are the `/close` and `/reopen` quick actions, refused here (rather than silently
/// skipped, as in mail) when the user may not update the merge request.
async fn post_comment(
    state: &WebState,
    headers: &HeaderMap,
    (id, iid): (i64, i64),
    csrf: &str,
    body: &str,
    needs_update_right: bool,
) -> Result<Response, WebError> {
    let me = session::require_form(state, headers, csrf).await?;
    let mut tx = state.store().begin().await?;
    let visible = access::project(&mut tx, Some(&me.user), id).await?;
    let mr = access::merge_request(&mut tx, Some(&me.user), &visible, iid).await?;
    let actor = visible.actor(&me.user);
    if needs_update_right
        && !(actor.can_update_merge_request(&visible.project)
            || (mr.author_id == me.user.id && actor.can_create_note(&visible.project, None)))
    {
        return Err(WebError::Forbidden);
    }
    let config = state.processor().config();
    actions::comment_on_merge_request(&mut tx, config, &visible.project, &me.user, &mr, body)
        .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/projects/{id}/merge_requests/{iid}")).into_response())
}

async fn comment(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(ids): Path<(i64, i64)>,
    Form(form): Form<CommentForm>,
) -> Result<Response, WebError> {
    post_comment(&state, &headers, ids, &form.csrf, &form.body, false).await
}

async fn close(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(ids): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    post_comment(&state, &headers, ids, &form.csrf, "/close", true).await
}

async fn reopen(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(ids): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    post_comment(&state, &headers, ids, &form.csrf, "/reopen", true).await
}

/// The most of a merge request's diff a page shows, in bytes. The page is public for a public
/// project, and a mailed patch set can change hundreds of megabytes: git is stopped after this
/// much, so neither a request's memory nor its time grows with the changes.
pub(crate) const MAX_DIFF_BYTES: usize = 1024 * 1024;

/// What the page shows under "Changes".
#[derive(Debug, serde::Serialize)]
struct DiffView {
    /// The diff, its first lines, or why it is not available.
    text: String,
    /// Set when `text` is only the beginning: the notice above it.
    notice: Option<String>,
}

/// The merge request's changes (`git diff target...source`, at most [`MAX_DIFF_BYTES`]), or
/// why they cannot be shown; the page stays readable when git fails.
async fn merge_request_diff(
    state: &WebState,
    project_id: i64,
    target: &str,
    source: &str,
) -> DiffView {
    let repositories = state.processor().repositories().clone();
    let (target, source) = (target.to_owned(), source.to_owned());
    let result = tokio::task::spawn_blocking(move || {
        repositories
            .repository(project_id)
            .and_then(|repository| repository.diff_capped(&target, &source, MAX_DIFF_BYTES))
            .map_err(|e| e.to_string())
    })
    .await;
    let unavailable = DiffView {
        text: "(the diff is not available)".to_owned(),
        notice: None,
    };
    match result {
        Ok(Ok(diff)) => DiffView {
            notice: diff.truncated.then(|| {
                format!(
                    "The diff is too large to show in full: showing the first {} KiB.",
                    MAX_DIFF_BYTES / 1024
                )
            }),
            text: diff.text,
        },
        Ok(Err(error)) => {
            tracing::warn!(project_id, error = %error, "merge request diff");
            unavailable
        }
        Err(error) => {
            tracing::warn!(project_id, error = %error, "merge request diff task");
            unavailable
        }
    }
}
