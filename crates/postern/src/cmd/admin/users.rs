//! `postern admin user …`

use std::fmt::Write as _;

use clap::Subcommand;
use postern_core::users::{self, Account};
use postern_store::{Store, User, UserState};

use super::{Output, begin, change_error, commit, store_error, user};
use crate::exit::Failure;
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with a verified primary email; prints the user and their incoming-email token.
    Add {
        /// Login name (unique, case-insensitive).
        username: String,
        /// Primary email address (verified unless --unverified).
        #[arg(long)]
        email: String,
        /// Display name (defaults to the username).
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Leave the primary email unverified (mail from it is then refused).
        #[arg(long)]
        unverified: bool,
    },
    /// List users.
    List,
    /// Block a user: mail from them is refused with "Your account has been blocked", and
    /// their web sessions end.
    Block {
        /// The user.
        username: String,
    },
    /// Unblock a user.
    Unblock {
        /// The user.
        username: String,
    },
    /// Add a secondary email address.
    #[command(subcommand)]
    Email(EmailCommand),
    /// Print a user's incoming-email token (used in new-issue and new-MR addresses), or reset it.
    Token {
        /// The user.
        username: String,
        /// Replace the token; the old addresses stop working.
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Add an address to a user.
    Add {
        /// The user.
        username: String,
        /// The address.
        email: String,
        /// Mark it verified (only verified addresses may reply by email).
        #[arg(long)]
        verified: bool,
    },
}

fn describe(user: &User) -> String {
    let emails: Vec<String> = user
        .emails
        .iter()
        .map(|email| {
            let mut text = email.email.clone();
            if email.primary {
                text.push_str(" (primary)");
            }
            if !email.verified {
                text.push_str(" (unverified)");
            }
            text
        })
        .collect();
    format!(
        "{} (id {}){}{}\n  name: {}\n  emails: {}\n",
        user.username,
        user.id,
        if user.admin { " admin" } else { "" },
        if user.is_blocked() { " BLOCKED" } else { "" },
        user.name,
        emails.join(", ")
    )
}

pub async fn run(store: &Store, _setup: &Setup, command: UserCommand) -> Result<Output, Failure> {
    match &command {
        UserCommand::Block { username } => {
            return set_state(store, username, UserState::Blocked).await;
        }
        UserCommand::Unblock { username } => {
            return set_state(store, username, UserState::Active).await;
        }
        _ => {}
    }
    let mut tx = begin(store).await?;
    let output = match command {
        UserCommand::Add {
            username,
            email,
            name,
            admin,
            unverified,
        } => {
            let account = Account {
                username: &username,
                name: name.as_deref().unwrap_or(""),
                email: &email,
                email_verified: !unverified,
                admin,
            };
            let user = users::create(&mut tx, account)
                .await
                .map_err(change_error)?;
            let human = format!(
                "created {}\n  incoming-email token: {}\n",
                describe(&user).trim_end(),
                user.incoming_email_token
            );
            Output::new(&user, human)?
        }
        UserCommand::List => {
            let users = tx.list_users().await.map_err(store_error)?;
            let mut human = String::new();
            for user in &users {
                human.push_str(&describe(user));
            }
            Output::new(&users, human)?
        }
        UserCommand::Block { .. } | UserCommand::Unblock { .. } => {
            return Err(super::usage_error("block and unblock are handled above"));
        }
        UserCommand::Email(EmailCommand::Add {
            username,
            email,
            verified,
        }) => {
            let found = user(&mut tx, &username).await?;
            let added = users::add_email(&mut tx, &found, &email, verified)
                .await
                .map_err(change_error)?;
            let human = format!(
                "added {} to {}{}\n",
                added.email,
                username,
                if verified { "" } else { " (unverified)" }
            );
            Output::new(&added, human)?
        }
        UserCommand::Token { username, reset } => {
            let found = user(&mut tx, &username).await?;
            let token = if reset {
                tx.reset_incoming_email_token(found.id)
                    .await
                    .map_err(store_error)?
            } else {
                found.incoming_email_token.clone()
            };
            let mut human = String::new();
            let _ = writeln!(human, "{token}");
            Output::new(
                &serde_json::json!({ "username": username, "token": token }),
                human,
            )?
        }
    };
    commit(tx).await?;
    Ok(output)
}

/// Sets a user's state (block/unblock).
async fn set_state(store: &Store, username: &str, state: UserState) -> Result<Output, Failure> {
    let mut tx = begin(store).await?;
    let found = user(&mut tx, username).await?;
    users::set_state(&mut tx, None, found.id, state)
        .await
        .map_err(change_error)?;
    let updated = user(&mut tx, username).await?;
    commit(tx).await?;
    let word = match state {
        UserState::Blocked => "blocked",
        UserState::Active => "unblocked",
    };
    Output::new(&updated, format!("{word} {username}\n"))
}
