//! Who may do what: the part of GitLab's ability rules that mail can reach.
//!
//! The check order decides which error a sender sees, and it is GitLab's: no author → user not
//! found; blocked → user blocked; cannot read the project → project not found (a private project
//! is not revealed); cannot do the action → not authorized.
//!
//! Read access is decided at the time of use, by [`can_read`]: every notification, every reply
//! key and every person a quick action names is checked against the project, the issue and the
//! membership as they are when the mail is composed or the key is used, never as they were
//! when the key was handed out.

use postern_store::{Issue, Project, Role, Tx, User, Visibility};

use crate::error::{ErrorKind, ProcessError};

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

    /// `read_internal_note`: reporters and up.
    pub fn can_read_internal_notes(&self) -> bool {
        self.at_least(Role::Reporter)
    }

    /// Whether the user, as they are now, may read `item` of `project`: not blocked, and the
    /// ability rules above. The pure half of [`can_read`].
    pub fn can_read_now(&self, project: &Project, item: Readable<'_>) -> bool {
        if self.user.is_blocked() {
            return false;
        }
        match item {
            Readable::Issue(issue) => self.can_read_issue(project, issue),
            Readable::NewIssue {
                confidential,
                author_id,
            } => {
                self.can_read_project(project)
                    && (!confidential || self.at_least(Role::Reporter) || author_id == self.user.id)
            }
            Readable::MergeRequest => self.can_read_project(project),
            Readable::Note { issue, internal } => {
                let parent = match issue {
                    Some(issue) => self.can_read_issue(project, issue),
                    None => self.can_read_project(project),
                };
                parent && (!internal || self.can_read_internal_notes())
            }
        }
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

/// What a person is to read (or to be told about).
#[derive(Debug, Clone, Copy)]
pub enum Readable<'a> {
    /// An issue or ticket, as it is now.
    Issue(&'a Issue),
    /// An issue being opened: whether it will be confidential, and its author.
    NewIssue {
        /// Whether it will be confidential.
        confidential: bool,
        /// Its author.
        author_id: i64,
    },
    /// A merge request: whoever reads its project.
    MergeRequest,
    /// A comment on an issue (`Some`) or a merge request (`None`); internal notes only for
    /// reporters and up.
    Note {
        /// Its issue, when it is on one.
        issue: Option<&'a Issue>,
        /// Whether it is an internal note.
        internal: bool,
    },
}

/// Whether `user` may read `item` of `project` now: their membership and state read from the
/// store at this moment. The one read check behind notifications (who hears about a change),
/// reply keys (whose recipient may still answer) and the people `/assign` names.
pub async fn can_read(
    tx: &mut Tx,
    user: &User,
    project: &Project,
    item: Readable<'_>,
) -> Result<bool, ProcessError> {
    if user.is_blocked() {
        return Ok(false);
    }
    let role = tx.member_role(project.id, user.id).await?;
    Ok(Actor { user, role }.can_read_now(project, item))
}

/// The check a reply key's recipient passes before their answer is taken, after GitLab's own:
/// a blocked recipient is `user_blocked`; one who can no longer read what the key was for
/// (removed from a private project, the issue made confidential) is `user_not_authorized`,
/// even where GitLab's order would answer `project_not_found`: the key shows they knew the
/// project, and the text tells them why their answer is refused.
pub async fn check_reply_key_recipient(
    tx: &mut Tx,
    recipient: &User,
    project: &Project,
    item: Readable<'_>,
) -> Result<(), ProcessError> {
    if recipient.is_blocked() {
        return Err(ErrorKind::UserBlocked.into());
    }
    if !can_read(tx, recipient, project, item).await? {
        return Err(ErrorKind::UserNotAuthorized.into());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use postern_store::{NewIssue, NewProject, NewUser, Store, UserState};

    async fn world() -> (Store, Project, User, Issue) {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let mut tx = store.begin().await.expect("tx");
        let author = tx
            .create_user(NewUser::new("jake", "Jake", "jake@example.com"))
            .await
            .expect("user");
        let project = tx
            .create_project(NewProject {
                namespace_path: "g".into(),
                path: "p".into(),
                name: "p".into(),
                visibility: Visibility::Private,
                default_branch: "main".into(),
            })
            .await
            .expect("project");
        let issue = tx
            .create_issue(NewIssue::new(project.id, author.id, "t", "d"))
            .await
            .expect("issue");
        tx.commit().await.expect("commit");
        (store, project, author, issue)
    }

    fn actor(user: &User, role: Option<Role>) -> Actor<'_> {
        Actor { user, role }
    }

    #[tokio::test]
    async fn private_projects_are_for_members_and_blocked_users_read_nothing() {
        let (_store, project, mut user, issue) = world().await;
        let item = Readable::Issue(&issue);
        assert!(!actor(&user, None).can_read_now(&project, item));
        assert!(actor(&user, Some(Role::Guest)).can_read_now(&project, item));
        user.state = UserState::Blocked;
        assert!(!actor(&user, Some(Role::Owner)).can_read_now(&project, item));
    }

    #[tokio::test]
    async fn confidential_issues_and_internal_notes_need_a_reporter() {
        let (_store, project, user, mut issue) = world().await;
        issue.confidential = true;
        issue.author_id = -1;
        let guest = actor(&user, Some(Role::Guest));
        let reporter = actor(&user, Some(Role::Reporter));
        assert!(!guest.can_read_now(&project, Readable::Issue(&issue)));
        assert!(reporter.can_read_now(&project, Readable::Issue(&issue)));
        issue.assignee_ids = vec![user.id];
        assert!(guest.can_read_now(&project, Readable::Issue(&issue)));
        let internal = Readable::Note {
            issue: Some(&issue),
            internal: true,
        };
        assert!(!guest.can_read_now(&project, internal));
        assert!(reporter.can_read_now(&project, internal));
        let new_confidential = Readable::NewIssue {
            confidential: true,
            author_id: -1,
        };
        assert!(!guest.can_read_now(&project, new_confidential));
    }

    #[tokio::test]
    async fn can_read_reads_the_membership_now() {
        let (store, project, user, issue) = world().await;
        let mut tx = store.begin().await.expect("tx");
        let item = Readable::Issue(&issue);
        assert!(
            !can_read(&mut tx, &user, &project, item)
                .await
                .expect("read")
        );
        tx.add_member(project.id, user.id, Role::Guest)
            .await
            .expect("add");
        assert!(
            can_read(&mut tx, &user, &project, item)
                .await
                .expect("read")
        );
        tx.remove_member(project.id, user.id).await.expect("remove");
        assert!(
            !can_read(&mut tx, &user, &project, item)
                .await
                .expect("read")
        );
        let refused = check_reply_key_recipient(&mut tx, &user, &project, item).await;
        assert!(matches!(
            refused,
            Err(ProcessError::Rejected(r)) if r.kind == ErrorKind::UserNotAuthorized
        ));
    }
}
