//! The merge request page (commits, diff, comments) and what a person does there: comment,
//! close and reopen, through `threads` as for an issue.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use postern_store::MergeRequest;

use crate::error::Path;
use crate::session::Viewer;
use crate::threads;
use crate::{WebError, WebState, render_markdown};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/projects/{id}/merge_requests/{iid}", get(merge_request))
        .merge(threads::routes::<MergeRequest>())
}

async fn merge_request(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(ids): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let viewer = me.as_ref().map(|m| &m.user);
    let page = threads::page::<MergeRequest>(&state, viewer, ids).await?;
    let mr = &page.item;
    let diff = merge_request_diff(&state, ids.0, &mr.target_branch, &mr.source_branch).await;
    let page = state.render(
        "merge_request.html",
        me.as_ref(),
        crate::pages::page! {
            project => &page.visible.project, mr => mr, author => page.author,
            description_html => render_markdown(&mr.description), notes => page.notes,
            diff => diff, can_comment => page.rights.comment, can_update => page.rights.update,
        },
    )?;
    Ok(page.into_response())
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
