//! `postern admin`: set up and look into an instance from the shell.
//!
//! Every subcommand prints a short human summary, or with `--json` one JSON value.

mod backup;
mod branches;
mod items;
mod messages;
mod outbox;
mod projects;
mod sender_policy;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use postern_store::{Store, StoreError, Tx};
use serde::Serialize;

use crate::exit::{self, Failure, TEMPORARY};
use crate::setup::{Setup, load_config, runtime};

/// `postern admin …`
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Configuration file (postern.yml).
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "POSTERN_CONFIG",
        global = true
    )]
    config: Option<PathBuf>,
    /// Print JSON instead of a human summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Users: add, list, block, unblock, emails, incoming-email tokens.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Projects: add, list, show (with their mail addresses), members, Service Desk.
    #[command(subcommand)]
    Project(projects::ProjectCommand),
    /// Issues and Service Desk tickets.
    #[command(subcommand)]
    Issue(items::IssueCommand),
    /// Merge requests.
    #[command(subcommand)]
    Mr(items::MrCommand),
    /// Sent notifications: create one to get a reply address for an issue or merge request.
    #[command(subcommand)]
    Notification(items::NotificationCommand),
    /// The inbound log: every message received, its outcome, its raw bytes; process again.
    #[command(subcommand)]
    Message(messages::MessageCommand),
    /// Mail postern sends: list it, look at it, send what is due.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Copy the SQLite database, consistently, while postern runs (PostgreSQL: prints the
    /// pg_dump command).
    Backup(backup::BackupArgs),
    /// Put a backup in the database's place (postern serve stopped; --force to replace).
    Restore(backup::RestoreArgs),
}

/// What a subcommand hands back: JSON, and the human text for it.
pub(crate) struct Output {
    json: serde_json::Value,
    human: String,
    /// Bytes printed exactly as they are, with or without `--json` (`message show --raw`).
    raw: Option<Vec<u8>>,
}

impl Output {
    pub(crate) fn new(value: &impl Serialize, human: impl Into<String>) -> Result<Output, Failure> {
        Ok(Output {
            json: serde_json::to_value(value).map_err(|e| Failure::new(exit::SOFTWARE, e))?,
            human: human.into(),
            raw: None,
        })
    }

    /// A listing: the rows as JSON, and one tab-separated line each for people.
    pub(crate) fn rows<T: Serialize>(
        rows: &[T],
        line: impl Fn(&T) -> String,
    ) -> Result<Output, Failure> {
        let human: String = rows.iter().map(|row| line(row) + "\n").collect();
        Output::new(&rows, human)
    }

    /// Output that is these bytes and nothing else.
    pub(crate) fn raw(bytes: Vec<u8>) -> Output {
        Output {
            json: serde_json::Value::Null,
            human: String::new(),
            raw: Some(bytes),
        }
    }
}

/// A refusal by the user's request (unknown name, invalid value): exit 1 with one line.
pub(crate) fn usage_error(message: impl Into<String>) -> Failure {
    Failure::new(1, anyhow::anyhow!(message.into()))
}

/// Maps store errors: temporary ones exit 75, refusals (duplicates, invalid values) exit 1.
pub(crate) fn store_error(error: StoreError) -> Failure {
    if error.is_temporary() {
        Failure::new(TEMPORARY, anyhow::anyhow!("store unavailable: {error}"))
    } else {
        Failure::new(1, anyhow::anyhow!("{error}"))
    }
}

/// A change `postern_core` refused is the person's to fix (exit 1 with its text); a failure
/// exits 75 when temporary.
pub(crate) fn change_error<R: postern_core::Refusal>(
    error: postern_core::ChangeError<R>,
) -> Failure {
    match error {
        postern_core::ChangeError::Refused(refusal) => usage_error(refusal.to_string()),
        postern_core::ChangeError::Failed(failure) => items::refused(failure),
    }
}

/// Runs `read` in one transaction and commits it: the shape of every listing and `show`.
pub(crate) async fn read<T>(
    store: &Store,
    read: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>,
) -> Result<T, Failure> {
    let mut tx = begin(store).await?;
    let value = read(&mut tx).await.map_err(store_error)?;
    commit(tx).await?;
    Ok(value)
}

/// A `list` subcommand (`message list`, `outbox list`): the rows `query` finds with the
/// `filter` of `state` (the name of an `S`; an unknown one is a usage error that names it) and
/// at most `limit` rows (kept within what one answer should hold), read in one transaction;
/// for people, one tab-separated `line` each.
pub(crate) async fn list<S: std::str::FromStr, F, T: Serialize>(
    store: &Store,
    (state, limit): (Option<String>, i64),
    filter: impl FnOnce(Option<S>, i64) -> F,
    query: impl AsyncFnOnce(&mut Tx, &F) -> Result<Vec<T>, StoreError>,
    line: impl Fn(&T) -> String,
) -> Result<Output, Failure> {
    let state = state
        .map(|text| {
            text.parse::<S>()
                .map_err(|_| usage_error(format!("unknown state {text:?}")))
        })
        .transpose()?;
    let filter = filter(state, limit.clamp(1, 10_000));
    let rows = read(store, async |tx| query(tx, &filter).await).await?;
    Output::rows(&rows, line)
}

pub(crate) async fn begin(store: &Store) -> Result<Tx, Failure> {
    store.begin().await.map_err(store_error)
}

pub(crate) async fn commit(tx: Tx) -> Result<(), Failure> {
    tx.commit().await.map_err(store_error)
}

/// Runs the command.
pub fn run(args: AdminArgs) -> Result<ExitCode, Failure> {
    let setup = Setup::new(load_config(args.config.as_deref())?)?;
    // These two work on the database file, not through an open store.
    let command = match args.command {
        AdminCommand::Backup(backup_args) => return backup::backup(&setup, backup_args),
        AdminCommand::Restore(restore_args) => return backup::restore(&setup, restore_args),
        other => other,
    };
    let json = args.json;
    let output = runtime()?.block_on(async {
        let store = setup.store().await?;
        let result = match command {
            AdminCommand::User(command) => users::run(&store, &setup, command).await,
            AdminCommand::Project(command) => projects::run(&store, &setup, command).await,
            AdminCommand::Issue(command) => items::run_issue(&store, &setup, command).await,
            AdminCommand::Mr(command) => items::run_mr(&store, command).await,
            AdminCommand::Notification(command) => {
                items::run_notification(&store, &setup, command).await
            }
            AdminCommand::Message(command) => messages::run(&store, &setup, command).await,
            AdminCommand::Outbox(command) => outbox::run(&store, &setup, command).await,
            AdminCommand::Backup(_) | AdminCommand::Restore(_) => {
                Err(usage_error("backup and restore do not open the store"))
            }
        };
        store.close().await;
        result
    })?;
    if let Some(raw) = &output.raw {
        exit::print_bytes(raw)?;
    } else if json {
        exit::print_json(&output.json)?;
    } else {
        let mut human = output.human;
        if !human.ends_with('\n') && !human.is_empty() {
            human.push('\n');
        }
        exit::print_bytes(human.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A project by full path, or a clear error.
pub(crate) async fn project(tx: &mut Tx, path: &str) -> Result<postern_store::Project, Failure> {
    tx.project_by_full_path(path)
        .await
        .map_err(store_error)?
        .ok_or_else(|| usage_error(format!("no project {path:?}")))
}

/// A user by username, or a clear error.
pub(crate) async fn user(tx: &mut Tx, username: &str) -> Result<postern_store::User, Failure> {
    tx.user_by_username(username)
        .await
        .map_err(store_error)?
        .ok_or_else(|| usage_error(format!("no user {username:?}")))
}

/// Parses `true`/`false`/`yes`/`no`/`on`/`off`.
pub(crate) fn parse_switch(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}
