//! Finding a project, issue or merge request for a person or a signed-out visitor, with
//! GitLab's read rules: what they may not read looks missing.

use std::collections::HashMap;

use postern_core::permissions::Actor;
use postern_store::{
    Issue, IssueType, IssueVisibility, MergeRequest, Note, Noteable, Project, Role, Tx, User,
    Visibility,
};

use crate::WebError;

/// A project the viewer may read, with their role in it.
pub(crate) struct Visible {
    pub(crate) project: Project,
    pub(crate) role: Option<Role>,
}

impl Visible {
    pub(crate) fn actor<'a>(&self, user: &'a User) -> Actor<'a> {
        Actor {
            user,
            role: self.role,
        }
    }

    /// Reporters and up see internal notes (GitLab's `read_internal_note`); signed-out
    /// visitors never do (the rule is postern-core's).
    pub(crate) fn sees_internal(&self, viewer: Option<&User>) -> bool {
        viewer.is_some_and(|user| self.actor(user).can_read_internal_notes())
    }

    /// Whether `viewer` may read `issue`. Signed out: only what is neither confidential nor a
    /// Service Desk ticket (whose text comes from outside people who did not publish it).
    pub(crate) fn reads_issue(&self, viewer: Option<&User>, issue: &Issue) -> bool {
        match viewer {
            Some(user) => self.actor(user).can_read_issue(&self.project, issue),
            None => {
                self.project.visibility == Visibility::Public
                    && !issue.confidential
                    && issue.issue_type != IssueType::Ticket
            }
        }
    }
}

impl Visible {
    /// Which of the project's issues `viewer` reads, for the store's search to apply while it
    /// pages: [`Visible::reads_issue`] written as a filter (signed out: neither confidential
    /// nor tickets; reporters and up and administrators: all; others: confidential issues only
    /// their own or assigned to them, as `Actor::can_read_issue`). The list checks each row it
    /// shows with `reads_issue` still.
    pub(crate) fn issue_visibility(&self, viewer: Option<&User>) -> IssueVisibility {
        match viewer {
            None => IssueVisibility::Public,
            Some(user) if user.admin || self.role.is_some_and(|r| r >= Role::Reporter) => {
                IssueVisibility::All
            }
            Some(user) => IssueVisibility::Member { user_id: user.id },
        }
    }
}

/// What a hidden or missing page answers: "not found" to a signed-in person, and to a
/// signed-out visitor the sign-in page (GitLab's `route_not_found`), so neither learns whether
/// a private project exists.
pub(crate) fn hidden(viewer: Option<&User>) -> WebError {
    match viewer {
        Some(_) => WebError::NotFound,
        None => WebError::LoginRequired,
    }
}

/// Whether `viewer` may read `project`: GitLab's `read_project` when signed in, public projects
/// only when signed out.
fn reads_project(viewer: Option<&User>, visible: &Visible) -> bool {
    match viewer {
        Some(user) => visible.actor(user).can_read_project(&visible.project),
        None => visible.project.visibility == Visibility::Public,
    }
}

/// Project `id` if `viewer` (`None`: signed out) may read it.
pub(crate) async fn project(
    tx: &mut Tx,
    viewer: Option<&User>,
    id: i64,
) -> Result<Visible, WebError> {
    let project = tx.project_by_id(id).await?.ok_or_else(|| hidden(viewer))?;
    let role = match viewer {
        Some(user) => tx.member_role(project.id, user.id).await?,
        None => None,
    };
    let visible = Visible { project, role };
    if reads_project(viewer, &visible) {
        Ok(visible)
    } else {
        Err(hidden(viewer))
    }
}

/// Every project `viewer` may read.
pub(crate) async fn projects(tx: &mut Tx, viewer: Option<&User>) -> Result<Vec<Visible>, WebError> {
    let mut visible = Vec::new();
    for project in tx.list_projects().await? {
        let role = match viewer {
            Some(user) => tx.member_role(project.id, user.id).await?,
            None => None,
        };
        let candidate = Visible { project, role };
        if reads_project(viewer, &candidate) {
            visible.push(candidate);
        }
    }
    Ok(visible)
}

/// Issue `iid` of a visible project if `viewer` may read it (confidential ones included when
/// their rules allow).
pub(crate) async fn issue(
    tx: &mut Tx,
    viewer: Option<&User>,
    visible: &Visible,
    iid: i64,
) -> Result<Issue, WebError> {
    let issue = tx
        .issue_by_iid(visible.project.id, iid)
        .await?
        .ok_or_else(|| hidden(viewer))?;
    if visible.reads_issue(viewer, &issue) {
        Ok(issue)
    } else {
        Err(hidden(viewer))
    }
}

/// Whether `viewer` may load `upload`: it is linked from a description or note they may
/// read (a confidential issue's files stay with the issue, an internal note's with those who
/// see internal notes; a public issue's load signed out). A file nothing links any more is
/// for those who see internal notes of its project.
pub(crate) async fn reads_upload(
    tx: &mut Tx,
    viewer: Option<&User>,
    upload: &postern_store::Upload,
) -> Result<bool, WebError> {
    let visible = match project(tx, viewer, upload.file.project_id).await {
        Ok(visible) => visible,
        Err(WebError::NotFound | WebError::LoginRequired) => return Ok(false),
        Err(other) => return Err(other),
    };
    let references = tx.upload_references(upload).await?;
    if references.is_empty() {
        return Ok(visible.sees_internal(viewer));
    }
    for reference in references {
        if reference.internal && !visible.sees_internal(viewer) {
            continue;
        }
        let readable = match reference.kind.as_str() {
            "issue" => match tx.issue_by_id(reference.target_id).await? {
                Some(issue) => {
                    issue.project_id == upload.file.project_id
                        && visible.reads_issue(viewer, &issue)
                }
                None => false,
            },
            // Merge requests are readable by whoever reads the project.
            "merge_request" => true,
            _ => false,
        };
        if readable {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Merge request `iid` of a visible project.
pub(crate) async fn merge_request(
    tx: &mut Tx,
    viewer: Option<&User>,
    visible: &Visible,
    iid: i64,
) -> Result<MergeRequest, WebError> {
    tx.merge_request_by_iid(visible.project.id, iid)
        .await?
        .ok_or_else(|| hidden(viewer))
}

/// A comment as pages and the API show it.
#[derive(serde::Serialize)]
pub(crate) struct NoteView {
    pub(crate) id: i64,
    pub(crate) author: String,
    pub(crate) external_author: Option<String>,
    pub(crate) body: String,
    /// Sanitised HTML of `body`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) html: String,
    pub(crate) discussion_id: String,
    pub(crate) internal: bool,
    pub(crate) system: bool,
    pub(crate) created_at: postern_store::Timestamp,
}

/// The notes of `noteable` the user may see, with author names; `html` when `rendered`.
pub(crate) async fn notes(
    tx: &mut Tx,
    noteable: Noteable,
    internal_too: bool,
    rendered: bool,
) -> Result<Vec<NoteView>, WebError> {
    let notes: Vec<Note> = tx
        .notes_for(noteable)
        .await?
        .into_iter()
        .filter(|n| internal_too || !n.internal)
        .collect();
    let mut names = UserNames::default();
    let mut views = Vec::with_capacity(notes.len());
    for note in notes {
        views.push(NoteView {
            id: note.id,
            author: names.get(tx, note.author_id).await?,
            html: if rendered {
                crate::render_markdown(&note.body)
            } else {
                String::new()
            },
            external_author: note.external_author,
            body: note.body,
            discussion_id: note.discussion_id,
            internal: note.internal,
            system: note.system,
            created_at: note.created_at,
        });
    }
    Ok(views)
}

/// What the page of an issue or merge request shows around the item itself: its notes as
/// `viewer` may see them, rendered, and its author's name.
pub(crate) async fn thread(
    tx: &mut Tx,
    viewer: Option<&User>,
    visible: &Visible,
    noteable: Noteable,
    author_id: i64,
) -> Result<(Vec<NoteView>, String), WebError> {
    let notes = notes(tx, noteable, visible.sees_internal(viewer), true).await?;
    let author = UserNames::default().get(tx, author_id).await?;
    Ok((notes, author))
}

/// Usernames by id, each looked up once per request.
#[derive(Default)]
struct UserNames(HashMap<i64, String>);

impl UserNames {
    async fn get(&mut self, tx: &mut Tx, id: i64) -> Result<String, WebError> {
        if let Some(name) = self.0.get(&id) {
            return Ok(name.clone());
        }
        let name = tx
            .user_by_id(id)
            .await?
            .map_or_else(|| format!("user {id}"), |u| u.username);
        self.0.insert(id, name.clone());
        Ok(name)
    }
}
