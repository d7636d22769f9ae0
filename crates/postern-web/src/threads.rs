//! What the issue and merge request pages share: an item of a project with its thread of
//! comments ([`Threaded`]), loaded for a viewer by GitLab's read rules; what the viewer may do
//! on it; and commenting, closing and reopening through `postern_core::actions`, so the same
//! notifications go out as for a mail reply.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use postern_core::{ProcessError, ProcessorConfig, actions};
use postern_store::{Issue, MergeRequest, Note, Noteable, Project, Tx, User};
use serde::Deserialize;

use crate::access::{self, NoteView, Visible};
use crate::error::Path;
use crate::session::{Me, Posted};
use crate::{WebError, WebState};

/// An item with a thread of comments: an issue (or ticket) or a merge request.
pub(crate) trait Threaded: Sized + Send + Sync + 'static {
    /// The item's segment in its page's path (`/projects/{id}/{SEGMENT}/{iid}`).
    const SEGMENT: &'static str;

    /// Item `iid` of a visible project, if `viewer` may read it.
    fn find(
        tx: &mut Tx,
        viewer: Option<&User>,
        visible: &Visible,
        iid: i64,
    ) -> impl Future<Output = Result<Self, WebError>> + Send;

    fn noteable(&self) -> Noteable;

    fn author_id(&self) -> i64;

    /// What `user` may do here: comment, and update (close, reopen).
    fn rights(&self, visible: &Visible, user: &User) -> Rights;

    /// Comments as `author`, through the action a mail reply runs.
    fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        body: &str,
    ) -> impl Future<Output = Result<Option<Note>, ProcessError>> + Send;
}

impl Threaded for Issue {
    const SEGMENT: &'static str = "issues";

    async fn find(
        tx: &mut Tx,
        viewer: Option<&User>,
        visible: &Visible,
        iid: i64,
    ) -> Result<Issue, WebError> {
        access::issue(tx, viewer, visible, iid).await
    }

    fn noteable(&self) -> Noteable {
        Noteable::Issue(self.id)
    }

    fn author_id(&self) -> i64 {
        self.author_id
    }

    fn rights(&self, visible: &Visible, user: &User) -> Rights {
        let actor = visible.actor(user);
        Rights {
            comment: actor.can_create_note(&visible.project, Some(self)),
            update: actor.can_update_issue(&visible.project, self),
        }
    }

    async fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        body: &str,
    ) -> Result<Option<Note>, ProcessError> {
        actions::comment(tx, config, project, author, self, body).await
    }
}

impl Threaded for MergeRequest {
    const SEGMENT: &'static str = "merge_requests";

    async fn find(
        tx: &mut Tx,
        viewer: Option<&User>,
        visible: &Visible,
        iid: i64,
    ) -> Result<MergeRequest, WebError> {
        access::merge_request(tx, viewer, visible, iid).await
    }

    fn noteable(&self) -> Noteable {
        Noteable::MergeRequest(self.id)
    }

    fn author_id(&self) -> i64 {
        self.author_id
    }

    /// Developers and up update a merge request, and so does its author while they may
    /// comment.
    fn rights(&self, visible: &Visible, user: &User) -> Rights {
        let actor = visible.actor(user);
        let comment = actor.can_create_note(&visible.project, None);
        Rights {
            comment,
            update: actor.can_update_merge_request(&visible.project)
                || (comment && self.author_id == user.id),
        }
    }

    async fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        body: &str,
    ) -> Result<Option<Note>, ProcessError> {
        actions::comment_on_merge_request(tx, config, project, author, self, body).await
    }
}

/// What the viewer may do on an item's page (nothing, signed out).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rights {
    pub(crate) comment: bool,
    pub(crate) update: bool,
}

/// An item's page as `viewer` may see it: the project, the item, its notes and its author's
/// name, and the viewer's rights.
pub(crate) struct Page<T> {
    pub(crate) visible: Visible,
    pub(crate) item: T,
    pub(crate) notes: Vec<NoteView>,
    pub(crate) author: String,
    pub(crate) rights: Rights,
}

/// Item `iid` of project `id` with its thread, as `viewer` may see it.
pub(crate) async fn page<T: Threaded>(
    state: &WebState,
    viewer: Option<&User>,
    (id, iid): (i64, i64),
) -> Result<Page<T>, WebError> {
    let (visible, item, (notes, author)) = state
        .read(async |tx| {
            let visible = access::project(tx, viewer, id).await?;
            let item = T::find(tx, viewer, &visible, iid).await?;
            let thread =
                access::thread(tx, viewer, &visible, item.noteable(), item.author_id()).await?;
            Ok((visible, item, thread))
        })
        .await?;
    let rights = viewer.map_or_else(Rights::default, |user| item.rights(&visible, user));
    Ok(Page {
        visible,
        item,
        notes,
        author,
        rights,
    })
}

/// The routes of commenting on an item of kind `T`, closing and reopening it.
pub(crate) fn routes<T: Threaded>() -> Router<WebState> {
    let item = format!("/projects/{{id}}/{}/{{iid}}", T::SEGMENT);
    Router::new()
        .route(&format!("{item}/notes"), post(comment::<T>))
        .route(&format!("{item}/close"), post(close::<T>))
        .route(&format!("{item}/reopen"), post(reopen::<T>))
}

#[derive(Deserialize)]
struct CommentForm {
    #[serde(default)]
    body: String,
}

/// Comments as the signed-in person.
async fn comment<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    Posted(me, form): Posted<CommentForm>,
) -> Result<Response, WebError> {
    add_note::<T>(&state, &me, ids, &form.body, false).await
}

/// Closing is the `/close` quick action, exactly as a mail saying `/close` would do it.
async fn close<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    add_note::<T>(&state, &me, ids, "/close", true).await
}

/// See [`close`].
async fn reopen<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    add_note::<T>(&state, &me, ids, "/reopen", true).await
}

/// Comments on item `iid` of project `id` as `me` and goes back to its page. Closing and
/// reopening are the `/close` and `/reopen` quick actions, exactly as a mail saying them would
/// do it, but refused here (`needs_update_right`; rather than silently skipped, as in mail)
/// when `me` may not update the item.
async fn add_note<T: Threaded>(
    state: &WebState,
    me: &Me,
    (id, iid): (i64, i64),
    body: &str,
    needs_update_right: bool,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    state
        .write(async |tx| {
            let visible = access::project(tx, Some(&me.user), id).await?;
            let item = T::find(tx, Some(&me.user), &visible, iid).await?;
            if needs_update_right && !item.rights(&visible, &me.user).update {
                return Err(WebError::Forbidden);
            }
            item.comment(tx, config, &visible.project, &me.user, body)
                .await
                .map_err(in_browser_words)?;
            Ok(())
        })
        .await?;
    Ok(Redirect::to(&format!("/projects/{id}/{}/{iid}", T::SEGMENT)).into_response())
}

/// A refused comment in the words of the page rather than of a mail reply: the core's reasons
/// are GitLab's reject texts ("It appears that the email is blank…"), which speak of an email
/// that was never sent.
fn in_browser_words(error: ProcessError) -> WebError {
    let ProcessError::Rejected(rejection) = &error else {
        return error.into();
    };
    match rejection.kind {
        postern_core::ErrorKind::EmptyEmail => WebError::Refused(
            "The comment is empty. Write something in the box before sending it.".to_owned(),
        ),
        postern_core::ErrorKind::UserNotAuthorized | postern_core::ErrorKind::UserBlocked => {
            WebError::Forbidden
        }
        postern_core::ErrorKind::NoteableNotFound => WebError::NotFound,
        postern_core::ErrorKind::LimitExceeded => {
            WebError::Refused(format!("The comment was not saved: {}", rejection.reason))
        }
        _ => error.into(),
    }
}
