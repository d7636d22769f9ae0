//! What the issue and merge request pages share: an item of a project with its thread of
//! comments ([`Threaded`]), loaded for a viewer by GitLab's read rules; what the viewer may do
//! on it; and commenting, closing and reopening through `postern_core::actions`, so the same
//! notifications go out as for a mail reply.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use postern_core::actions::NoteVisibility;
use postern_core::content::Uploads;
use postern_core::{ProcessError, ProcessorConfig, actions, notify};
use postern_store::{Issue, MergeRequest, Note, Noteable, Project, Tx, User};
use serde::Deserialize;

use crate::access::{self, NoteView, Visible};
use crate::comment_files;
use crate::error::Path;
use crate::markdown::MailView;
use crate::session::{Me, Posted, Viewer};
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

    /// The issue, when the item is one (the notification rules read it).
    fn as_issue(&self) -> Option<&Issue>;

    /// The stored Markdown of the item itself.
    fn description(&self) -> &str;

    /// What `user` may do here: comment, and update (close, reopen).
    fn rights(&self, visible: &Visible, user: &User) -> Rights;

    /// Comments as `author`, through the action a mail reply runs; an internal note when
    /// `internal` (only where [`Rights::internal`] allows it), with the staged `files`.
    fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        note: NewComment<'_>,
        files: &mut Uploads,
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

    fn as_issue(&self) -> Option<&Issue> {
        Some(self)
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn rights(&self, visible: &Visible, user: &User) -> Rights {
        let actor = visible.actor(user);
        let comment = actor.can_create_note(&visible.project, Some(self));
        Rights {
            comment,
            update: actor.can_update_issue(&visible.project, self),
            internal: comment && actor.can_read_internal_notes(),
        }
    }

    async fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        note: NewComment<'_>,
        files: &mut Uploads,
    ) -> Result<Option<Note>, ProcessError> {
        let visibility = if note.internal {
            NoteVisibility::Internal
        } else {
            NoteVisibility::Public
        };
        actions::comment_with_files(
            tx, config, project, author, self, note.body, visibility, files,
        )
        .await
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

    fn as_issue(&self) -> Option<&Issue> {
        None
    }

    fn description(&self) -> &str {
        &self.description
    }

    /// Developers and up update a merge request, and so does its author while they may
    /// comment. Internal notes are for issues and tickets (as in GitLab).
    fn rights(&self, visible: &Visible, user: &User) -> Rights {
        let actor = visible.actor(user);
        let comment = actor.can_create_note(&visible.project, None);
        Rights {
            comment,
            update: actor.can_update_merge_request(&visible.project)
                || (comment && self.author_id == user.id),
            internal: false,
        }
    }

    /// Internal notes and files are for issues (the merge request page offers neither).
    async fn comment(
        &self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        project: &Project,
        author: &User,
        note: NewComment<'_>,
        files: &mut Uploads,
    ) -> Result<Option<Note>, ProcessError> {
        if note.internal || !files.is_empty() {
            return Err(postern_core::ErrorKind::UserNotAuthorized.into());
        }
        actions::comment_on_merge_request(tx, config, project, author, self, note.body).await
    }
}

/// What the viewer may do on an item's page (nothing, signed out).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rights {
    pub(crate) comment: bool,
    pub(crate) update: bool,
    /// May write internal notes ("Make this an internal note").
    pub(crate) internal: bool,
}

/// The line above the comment box: who receives a comment by mail, as
/// `postern_core::notify::comment_audience` decides it (the rule notifications follow).
#[derive(serde::Serialize, Default)]
pub(crate) struct MailLine {
    /// Usernames of the users notified.
    pub(crate) users: Vec<String>,
    /// A ticket's outside participants (the customer), mailed from the Service Desk address.
    pub(crate) outside: Vec<String>,
}

/// An item's page as `viewer` may see it: the project, the item, its notes and its author's
/// name, and the viewer's rights.
pub(crate) struct Page<T> {
    pub(crate) visible: Visible,
    pub(crate) item: T,
    pub(crate) notes: Vec<NoteView>,
    pub(crate) author: String,
    pub(crate) rights: Rights,
    /// Who receives a comment by mail, for a viewer who may comment.
    pub(crate) mail_line: Option<MailLine>,
    /// Readable views of the original mails the item and its shown notes came from:
    /// `description`, or `note-ID`.
    pub(crate) mail_views: HashMap<String, MailView>,
}

/// Item `iid` of project `id` with its thread, as `viewer` may see it.
pub(crate) async fn page<T: Threaded>(
    state: &WebState,
    viewer: Option<&User>,
    (id, iid): (i64, i64),
) -> Result<Page<T>, WebError> {
    let config = state.processor().config();
    let (visible, item, (notes, author), rights, mail_line, mail_views) = state
        .read(async |tx| {
            let visible = access::project(tx, viewer, id).await?;
            let item = T::find(tx, viewer, &visible, iid).await?;
            let thread =
                access::thread(tx, viewer, &visible, item.noteable(), item.author_id()).await?;
            let rights = viewer.map_or_else(Rights::default, |user| item.rights(&visible, user));
            let mail_line = match viewer {
                Some(user) if rights.comment => {
                    let audience = notify::comment_audience(
                        tx,
                        config,
                        &visible.project,
                        user,
                        item.noteable(),
                        item.as_issue(),
                        false,
                    )
                    .await?;
                    Some(MailLine {
                        users: audience.users.into_iter().map(|u| u.username).collect(),
                        outside: audience.outside,
                    })
                }
                _ => None,
            };
            let mail_views = mail_views(tx, &item, &thread.0).await?;
            Ok((visible, item, thread, rights, mail_line, mail_views))
        })
        .await?;
    Ok(Page {
        visible,
        item,
        notes,
        author,
        rights,
        mail_line,
        mail_views,
    })
}

/// The readable views of the original mails `item` and its `notes` (those the viewer sees)
/// were created from, for those with an HTML part. Each view is made from the stored message
/// and the Markdown stored from it (whose upload links show its inline images).
async fn mail_views<T: Threaded>(
    tx: &mut Tx,
    item: &T,
    notes: &[NoteView],
) -> Result<HashMap<String, MailView>, WebError> {
    let mut views = HashMap::new();
    for origin in tx.inbound_origins_of(item.noteable()).await? {
        let (key, markdown) = match origin.note_id {
            None => ("description".to_owned(), item.description()),
            Some(id) => match notes.iter().find(|note| note.id == id) {
                Some(note) => (format!("note-{id}"), note.body.as_str()),
                // Not shown to this viewer (an internal note), or gone.
                None => continue,
            },
        };
        let Some(message) = tx.inbound(origin.inbound_id).await? else {
            continue;
        };
        if let Some(view) = crate::markdown::mail_view(&message.raw, markdown) {
            views.insert(key, view);
        }
    }
    Ok(views)
}

/// The routes of commenting on an item of kind `T`, closing and reopening it.
pub(crate) fn routes<T: Threaded>() -> Router<WebState> {
    let item = format!("/projects/{{id}}/{}/{{iid}}", T::SEGMENT);
    Router::new()
        .route(
            &format!("{item}/notes"),
            post(comment::<T>).layer(DefaultBodyLimit::max(comment_files::MAX_REQUEST_BYTES)),
        )
        .route(&format!("{item}/close"), post(close::<T>))
        .route(&format!("{item}/reopen"), post(reopen::<T>))
}

#[derive(Deserialize)]
struct CommentForm {
    #[serde(default)]
    body: String,
    /// The "Make this an internal note" checkbox: present when ticked.
    #[serde(default)]
    internal: Option<String>,
}

/// Comments as the signed-in person: a plain form, or one with files (`multipart/form-data`).
async fn comment<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    request: Request,
) -> Result<Response, WebError> {
    if comment_files::is_multipart(&request) {
        let (me, fields, mut files) = comment_files::read(&state, request).await?;
        let note = NewComment {
            body: &fields.body,
            internal: fields.internal,
        };
        return add_note::<T>(&state, &me, ids, note, &mut files, false).await;
    }
    let Posted(me, form) = match Posted::<CommentForm>::from_request(request, &state).await {
        Ok(posted) => posted,
        Err(refused) => return Ok(refused),
    };
    let note = NewComment {
        body: &form.body,
        internal: form.internal.is_some(),
    };
    add_note::<T>(&state, &me, ids, note, &mut Uploads::default(), false).await
}

/// A comment from the page: its text, and whether it is an internal note.
#[derive(Clone, Copy)]
pub(crate) struct NewComment<'a> {
    body: &'a str,
    internal: bool,
}

impl NewComment<'static> {
    /// A quick action said by the page's buttons.
    fn command(body: &'static str) -> NewComment<'static> {
        NewComment {
            body,
            internal: false,
        }
    }
}

/// Closing is the `/close` quick action, exactly as a mail saying `/close` would do it.
async fn close<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    add_note::<T>(
        &state,
        &me,
        ids,
        NewComment::command("/close"),
        &mut Uploads::default(),
        true,
    )
    .await
}

/// See [`close`].
async fn reopen<T: Threaded>(
    State(state): State<WebState>,
    Path(ids): Path<(i64, i64)>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    add_note::<T>(
        &state,
        &me,
        ids,
        NewComment::command("/reopen"),
        &mut Uploads::default(),
        true,
    )
    .await
}

/// Comments on item `iid` of project `id` as `me` and goes back to its page. Closing and
/// reopening are the `/close` and `/reopen` quick actions, exactly as a mail saying them would
/// do it, but refused here (`needs_update_right`; rather than silently skipped, as in mail)
/// when `me` may not update the item. An internal note needs the right to write one.
async fn add_note<T: Threaded>(
    state: &WebState,
    me: &Me,
    (id, iid): (i64, i64),
    note: NewComment<'_>,
    files: &mut Uploads,
    needs_update_right: bool,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    state
        .write(async |tx| {
            let visible = access::project(tx, Some(&me.user), id).await?;
            let item = T::find(tx, Some(&me.user), &visible, iid).await?;
            let rights = item.rights(&visible, &me.user);
            if (needs_update_right && !rights.update) || (note.internal && !rights.internal) {
                return Err(WebError::Forbidden);
            }
            item.comment(tx, config, &visible.project, &me.user, note, files)
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

/// One-click unsubscribe (RFC 8058) from a notification's `List-Unsubscribe` link: a page
/// that asks (`GET`, which mail scanners follow, changes nothing) and the `POST` that
/// unsubscribes, with no session: the token in the link is the authorisation.
pub(crate) fn unsubscribe_routes() -> Router<WebState> {
    Router::new().route(
        "/-/unsubscribe/{token}",
        axum::routing::get(unsubscribe_page).post(unsubscribe),
    )
}

async fn unsubscribe_page(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    let link = state
        .read(async |tx| Ok(actions::unsubscribe_link(tx, config, &token).await?))
        .await?
        .map(|(link, _)| link)
        .ok_or(WebError::NotFound)?;
    render_unsubscribe(&state, me.as_ref(), &link, &token, false)
}

/// The body a mailbox provider posts (`List-Unsubscribe=One-Click`) is not needed: the
/// token decides, so whatever the body is, it is not read.
async fn unsubscribe(
    State(state): State<WebState>,
    Viewer(me): Viewer,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let config = state.processor().config();
    let link = state
        .write(async |tx| Ok(actions::unsubscribe_by_link(tx, config, &token).await?))
        .await?
        .ok_or(WebError::NotFound)?;
    render_unsubscribe(&state, me.as_ref(), &link, &token, true)
}

fn render_unsubscribe(
    state: &WebState,
    me: Option<&Me>,
    link: &actions::UnsubscribeLink,
    token: &str,
    done: bool,
) -> Result<Response, WebError> {
    let page = state.render(
        "unsubscribe.html",
        me,
        crate::pages::page! {
            title => link.title,
            project => link.project.full_path,
            reference => link.reference,
            token => token,
            done => done,
            outside => link.outside,
        },
    )?;
    Ok(page.into_response())
}
