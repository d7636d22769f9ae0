//! Who belongs to a project, with which role: GitLab's rules for changing members, in one
//! place for the settings page, the JSON API and the command line.
//!
//! Maintainers, owners and administrators manage a project (GitLab's `admin_project`); only
//! owners and administrators grant, change or take away the owner role; a project keeps at
//! least one owner once it has one; the Support Bot is never a member (it answers tickets for
//! the project, and a role would let mail sent as it act with that role).

use postern_store::{Project, Role, Tx, User};

use crate::error::{ChangeError, Refusal};

/// Who changes a project's members, and so which changes they may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// An instance administrator, or the operator at the command line: every change.
    Administrator,
    /// A member with this role (maintainer or owner): an owner changes every member, a
    /// maintainer every member but owners.
    Member(Role),
}

impl Manager {
    /// How `user`, whose role in the project is `role`, may manage it; `None` when they may
    /// not (developers and below, and non-members who are not administrators).
    pub fn of(user: &User, role: Option<Role>) -> Option<Manager> {
        if user.admin {
            return Some(Manager::Administrator);
        }
        role.filter(|role| *role >= Role::Maintainer)
            .map(Manager::Member)
    }

    /// Owners and administrators may touch the owner role.
    fn owner_rights(self) -> bool {
        match self {
            Manager::Administrator => true,
            Manager::Member(role) => role == Role::Owner,
        }
    }
}

/// Why a change of members was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRefusal {
    /// The Support Bot was to be given a role.
    #[error("The Support Bot is not a member.")]
    SupportBot,
    /// A maintainer touched the owner role.
    #[error("Only owners grant, change or remove the owner role.")]
    OwnerRightsNeeded,
    /// The change would leave the project without an owner.
    #[error("A project needs at least one owner.")]
    LastOwner,
    /// The user to remove is not a member.
    #[error("Not a member of the project.")]
    NotMember,
}

impl Refusal for MemberRefusal {}

/// A refusal to show the person who asked, or a store failure.
pub type MemberError = ChangeError<MemberRefusal>;

/// Gives `target` `role` in `project` as `by` (adding them, or changing their role).
pub async fn set(
    tx: &mut Tx,
    project: &Project,
    by: Manager,
    target: &User,
    role: Role,
) -> Result<(), MemberError> {
    if target.is_support_bot() {
        return Err(MemberRefusal::SupportBot.into());
    }
    let current = tx.member_role(project.id, target.id).await?;
    let touches_owner = role == Role::Owner || current == Some(Role::Owner);
    if touches_owner && !by.owner_rights() {
        return Err(MemberRefusal::OwnerRightsNeeded.into());
    }
    if current == Some(Role::Owner) && role != Role::Owner {
        keeps_an_owner(tx, project.id, target.id).await?;
    }
    tx.add_member(project.id, target.id, role).await?;
    Ok(())
}

/// Removes user `user_id` from `project` as `by`.
pub async fn remove(
    tx: &mut Tx,
    project: &Project,
    by: Manager,
    user_id: i64,
) -> Result<(), MemberError> {
    let current = tx
        .member_role(project.id, user_id)
        .await?
        .ok_or(MemberRefusal::NotMember)?;
    if current == Role::Owner {
        if !by.owner_rights() {
            return Err(MemberRefusal::OwnerRightsNeeded.into());
        }
        keeps_an_owner(tx, project.id, user_id).await?;
    }
    tx.remove_member(project.id, user_id).await?;
    Ok(())
}

/// Refuses a change that would leave the project without an owner.
async fn keeps_an_owner(tx: &mut Tx, project_id: i64, leaving: i64) -> Result<(), MemberError> {
    let others = tx
        .list_members(project_id)
        .await?
        .iter()
        .filter(|m| m.role == Role::Owner && m.user_id != leaving)
        .count();
    if others == 0 {
        Err(MemberRefusal::LastOwner.into())
    } else {
        Ok(())
    }
}
