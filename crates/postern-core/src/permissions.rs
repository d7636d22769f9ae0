//! Who may do what: the part of GitLab's ability rules that mail can reach.
//!
//! The check order decides which error a sender sees, and it is GitLab's: no author → user not
//! found; blocked → user blocked; cannot read the project → project not found (a private project
//! is not revealed); cannot do the action → not authorized.

use postern_store::{Issue, Project, Role, User, Visibility};

use crate::error::ErrorKind;

/// The author of an action and their role in the project, if any.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The user.
    pub user: &'a User,
    /// Their membership role, `None` for non-members.
    pub role: Option<Role>,
}

/// An action whose permission is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    /// Comment on an issue or merge request.
    CreateNote,
    /// Open an issue.
    CreateIssue,
    /// Open a merge request in the project from one of its branches.
    CreateMergeRequest,
}

impl Actor<'_> {
    fn at_least(&self, role: Role) -> bool {
        self.user.admin || self.role.is_some_and(|own| own >= role)
    }

    /// `read_project`: public to everyone, internal to every user, private to members.
    pub fn can_read_project(&self, project: &Project) -> bool {
        self.user.admin
            || self.role.is_some()
            || matches!(
                project.visibility,
                Visibility::Public | Visibility::Internal
            )
            // The Support Bot writes the tickets and their replies wherever Service Desk is on.
            || (self.user.is_support_bot() && project.service_desk.enabled)
    }

    /// Whether the user can see this issue (confidential issues: reporters, author, assignees).
    pub fn can_read_issue(&self, project: &Project, issue: &Issue) -> bool {
        if !self.can_read_project(project) {
            return false;
        }
        !issue.confidential
            || self.at_least(Role::Reporter)
            || issue.author_id == self.user.id
            || issue.assignee_ids.contains(&self.user.id)
    }

    /// Whether the user may act on the project at all (archived projects are read-only).
    fn can_write(&self, project: &Project) -> bool {
        !project.archived && self.can_read_project(project)
    }

    /// `create_note` on an issue (or on the project when there is no issue).
    pub fn can_create_note(&self, project: &Project, issue: Option<&Issue>) -> bool {
        if !self.can_write(project) {
            return false;
        }
        match issue {
            Some(issue) => {
                self.can_read_issue(project, issue)
                    && (!issue.discussion_locked || self.at_least(Role::Reporter))
            }
            None => true,
        }
    }

    /// `create_issue`: anyone who can read a project may open an issue in it.
    pub fn can_create_issue(&self, project: &Project) -> bool {
        self.can_write(project)
    }

    /// `create_merge_request_in` and `_from`: pushing a branch needs developer access.
    pub fn can_create_merge_request(&self, project: &Project) -> bool {
        self.can_write(project) && self.at_least(Role::Developer)
    }

    /// `update_issue`: close, reopen, retitle — reporters, or the issue's author.
    pub fn can_update_issue(&self, project: &Project, issue: &Issue) -> bool {
        self.can_write(project)
            && (self.at_least(Role::Reporter) || issue.author_id == self.user.id)
    }

    /// `admin_issue`: labels, assignees, due date, confidentiality — reporters and up.
    pub fn can_admin_issue(&self, project: &Project) -> bool {
        self.can_write(project) && self.at_least(Role::Reporter)
    }

    /// Changing a merge request's target branch: developers and up.
    pub fn can_update_merge_request(&self, project: &Project) -> bool {
        self.can_write(project) && self.at_least(Role::Developer)
    }
}

/// GitLab's `validate_permission!`: steps 2–4 (the caller has already found the author).
pub fn validate(
    actor: &Actor<'_>,
    project: &Project,
    ability: Ability,
    issue: Option<&Issue>,
) -> Result<(), ErrorKind> {
    if actor.user.is_blocked() {
        return Err(ErrorKind::UserBlocked);
    }
    if !actor.can_read_project(project) {
        return Err(ErrorKind::ProjectNotFound);
    }
    let allowed = match ability {
        Ability::CreateNote => actor.can_create_note(project, issue),
        Ability::CreateIssue => actor.can_create_issue(project),
        Ability::CreateMergeRequest => actor.can_create_merge_request(project),
    };
    if allowed {
        Ok(())
    } else {
        Err(ErrorKind::UserNotAuthorized)
    }
}
