//! People's accounts: creating them, their addresses and whether they are blocked, in one place
//! for the administration page, the first-run setup page and `postern admin user`.
//!
//! A username and a primary address are required; the Support Bot's username is reserved for
//! it, whether it exists yet or not (Service Desk creates it on its first mail, and a person
//! holding the name would stop that); an address names one person only. Passwords and sessions
//! are the web UI's, not rules of the tracker.

use postern_store::{NewUser, SUPPORT_BOT_USERNAME, Tx, User, UserEmail, UserState};

use crate::error::{ChangeError, Refusal};

/// Why a change of an account was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRefusal {
    /// A username or the primary address is blank.
    #[error("Username and email are required.")]
    Missing,
    /// The Support Bot's username.
    #[error("That username is reserved.")]
    Reserved,
    /// Not an address.
    #[error("That is not an email address.")]
    InvalidEmail,
    /// The username, or the address, is someone's.
    #[error("That username or email is taken.")]
    Taken,
    /// The address is someone's.
    #[error("That address belongs to someone.")]
    AddressTaken,
    /// The address is not the user's, or is their primary one (which stays).
    #[error("Unknown address, or the primary one (which stays).")]
    NotRemovable,
    /// An administrator blocking themselves would lock the instance's door behind them.
    #[error("You cannot block yourself.")]
    BlockingYourself,
    /// No such user, or no such address of theirs.
    #[error("No such user or address.")]
    NotFound,
}

impl Refusal for UserRefusal {}

/// A refusal to show the person who asked, or a store failure.
pub type UserError = ChangeError<UserRefusal>;

/// An account to create.
#[derive(Debug, Clone)]
pub struct Account<'a> {
    /// The login name (unique, compared case-insensitively).
    pub username: &'a str,
    /// The display name; the username when blank.
    pub name: &'a str,
    /// The primary address.
    pub email: &'a str,
    /// Whether the primary address counts as verified (an administrator vouches for it).
    pub email_verified: bool,
    /// An instance administrator.
    pub admin: bool,
}

/// The address as stored, or the refusal: something `@` something.
fn address(email: &str) -> Result<&str, UserRefusal> {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(UserRefusal::InvalidEmail),
    }
}

/// Creates the account `account` describes.
pub async fn create(tx: &mut Tx, account: Account<'_>) -> Result<User, UserError> {
    let username = account.username.trim();
    if username.is_empty() || account.email.trim().is_empty() {
        return Err(UserRefusal::Missing.into());
    }
    if username.eq_ignore_ascii_case(SUPPORT_BOT_USERNAME) {
        return Err(UserRefusal::Reserved.into());
    }
    let email = address(account.email)?;
    let name = match account.name.trim() {
        "" => username,
        name => name,
    };
    let mut new = NewUser::new(username, name, email);
    new.admin = account.admin;
    new.email_verified = account.email_verified;
    match tx.create_user(new).await {
        Ok(user) => Ok(user),
        Err(e) if e.is_unique_violation() => Err(UserRefusal::Taken.into()),
        Err(e) => Err(e.into()),
    }
}

/// Adds `email` to `user`'s addresses, verified or not (an unverified one identifies nobody
/// until it is verified).
pub async fn add_email(
    tx: &mut Tx,
    user: &User,
    email: &str,
    verified: bool,
) -> Result<UserEmail, UserError> {
    let email = address(email)?;
    match tx.add_user_email(user.id, email, verified).await {
        Ok(added) => Ok(added),
        Err(e) if e.is_unique_violation() => Err(UserRefusal::AddressTaken.into()),
        Err(e) => Err(e.into()),
    }
}

/// Marks one of user `user_id`'s addresses verified or not.
pub async fn set_email_verified(
    tx: &mut Tx,
    user_id: i64,
    email: &str,
    verified: bool,
) -> Result<(), UserError> {
    if tx
        .set_email_verified(user_id, email.trim(), verified)
        .await?
    {
        Ok(())
    } else {
        Err(UserRefusal::NotFound.into())
    }
}

/// Removes one of user `user_id`'s secondary addresses.
pub async fn remove_email(tx: &mut Tx, user_id: i64, email: &str) -> Result<(), UserError> {
    if tx.remove_user_email(user_id, email.trim()).await? {
        Ok(())
    } else {
        Err(UserRefusal::NotRemovable.into())
    }
}

/// Blocks or unblocks user `user_id`, as `by` (the administrator asking; `None` at the command
/// line). A blocked user's mail is refused and their sessions end.
pub async fn set_state(
    tx: &mut Tx,
    by: Option<&User>,
    user_id: i64,
    state: UserState,
) -> Result<(), UserError> {
    if state == UserState::Blocked && by.is_some_and(|me| me.id == user_id) {
        return Err(UserRefusal::BlockingYourself.into());
    }
    if !tx.set_user_state(user_id, state).await? {
        return Err(UserRefusal::NotFound.into());
    }
    if state == UserState::Blocked {
        tx.delete_user_sessions(user_id).await?;
    }
    Ok(())
}
