//! Finding a project, issue or merge request for a person, with GitLab's read rules: what they
//! may not read looks missing.

use std::collections::HashMap;

use postern_core::permissions::Actor;
use postern_store::{Issue, Note, Noteable, Project, Role, Tx, User};

use crate::WebError;

/// A project the user may read, with their role in it.
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

    /// Reporters and up see internal notes (GitLab's `read_internal_note`).
    pub(crate) fn sees_internal(&self, user: &User) -> bool {
        user.admin || self.role.is_some_and(|r| r >= Role::Reporter)
    }
}

/// Project `id` if `user` may read it.
pub(crate) async fn project(tx: &mut Tx, user: &User, id: i64) -> Result<Visible, WebError> {
    let project = tx.project_by_id(id).await?.ok_or(WebError::NotFound)?;
    let role = tx.member_role(project.id, user.id).await?;
    let visible = Visible { project, role };
    if visible.actor(user).can_read_project(&visible.project) {
        Ok(visible)
    } else {
        Err(WebError::NotFound)
    }
}

/// Every project `user` may read.
pub(crate) async fn projects(tx: &mut Tx, user: &User) -> Result<Vec<Visible>, WebError> {
    let mut visible = Vec::new();
    for project in tx.list_projects().await? {
        let role = tx.member_role(project.id, user.id).await?;
        let candidate = Visible { project, role };
        if candidate.actor(user).can_read_project(&candidate.project) {
            visible.push(candidate);
        }
    }
    Ok(visible)
}

/// Issue `iid` of a visible project if `user` may read it (confidential ones included).
pub(crate) async fn issue(
    tx: &mut Tx,
    user: &User,
    visible: &Visible,
    iid: i64,
) -> Result<Issue, WebError> {
    let issue = tx
        .issue_by_iid(visible.project.id, iid)
        .await?
        .ok_or(WebError::NotFound)?;
    if visible.actor(user).can_read_issue(&visible.project, &issue) {
        Ok(issue)
    } else {
        Err(WebError::NotFound)
    }
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

/// Usernames by id, each looked up once per request.
#[derive(Default)]
pub(crate) struct UserNames(HashMap<i64, String>);

impl UserNames {
    pub(crate) async fn get(&mut self, tx: &mut Tx, id: i64) -> Result<String, WebError> {
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
