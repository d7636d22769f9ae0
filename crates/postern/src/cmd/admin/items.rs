//! `postern admin issue|mr|notification …`

use clap::Subcommand;
use postern_mail::AddressTemplate;
use postern_store::{IssueFilter, Note, Noteable, Store, Tx};
use serde::Serialize;

use super::{Output, begin, commit, project, store_error, usage_error, user};
use crate::exit::Failure;
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum IssueCommand {
    /// List issues and tickets, optionally of one project.
    List {
        /// Full path of the project.
        full_path: Option<String>,
    },
    /// Show an issue or ticket with its comments.
    Show {
        /// Full path of the project.
        full_path: String,
        /// The issue's number in the project.
        iid: i64,
    },
    /// Open an issue as a user; participants are notified as for an issue opened by mail.
    Create {
        /// Full path of the project.
        full_path: String,
        /// The title.
        title: String,
        /// The author.
        #[arg(long = "as", value_name = "USERNAME")]
        author: String,
        /// The description (quick actions such as `/assign @finn` run).
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Comment on an issue or ticket as a user; participants (and a ticket's outside
    /// participants) get it by mail and can answer by mail.
    Comment {
        /// Full path of the project.
        full_path: String,
        /// The issue's number in the project.
        iid: i64,
        /// The author.
        #[arg(long = "as", value_name = "USERNAME")]
        author: String,
        /// The comment (quick actions such as `/close` run).
        body: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MrCommand {
    /// List merge requests, optionally of one project.
    List {
        /// Full path of the project.
        full_path: Option<String>,
    },
    /// Show a merge request with its commits and comments.
    Show {
        /// Full path of the project.
        full_path: String,
        /// The merge request's number in the project.
        iid: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotificationCommand {
    /// Record a notification sent to a user about an issue (or merge request) and print its
    /// reply address: mail to that address becomes the user's comment.
    Add {
        /// Full path of the project.
        full_path: String,
        /// The issue's (or with --mr the merge request's) number.
        iid: i64,
        /// The recipient.
        username: String,
        /// The number is a merge request's.
        #[arg(long)]
        mr: bool,
    },
}

/// A refusal from the tracker (permissions, validation) exits 1 with its reason; a temporary
/// failure exits 75.
pub(super) fn refused(error: postern_core::ProcessError) -> Failure {
    match error {
        postern_core::ProcessError::Rejected(rejection) => usage_error(rejection.reason),
        postern_core::ProcessError::Temporary(reason) => Failure::new(
            crate::exit::TEMPORARY,
            anyhow::anyhow!("temporary failure: {reason}"),
        ),
        other => Failure::new(crate::exit::SOFTWARE, other),
    }
}

fn notes_text(notes: &[Note]) -> String {
    notes
        .iter()
        .map(|note| {
            let by = note
                .external_author
                .as_deref()
                .map(|author| format!(" (from {author})"))
                .unwrap_or_default();
            format!(
                "  --- note {} by user {}{}{}\n  {}\n",
                note.id,
                note.author_id,
                by,
                if note.internal { " internal" } else { "" },
                note.body.replace('\n', "\n  ")
            )
        })
        .collect()
}

#[derive(Serialize)]
struct WithNotes<T: Serialize> {
    #[serde(flatten)]
    item: T,
    notes: Vec<Note>,
}

pub async fn run_issue(
    store: &Store,
    setup: &Setup,
    command: IssueCommand,
) -> Result<Output, Failure> {
    let mut tx = begin(store).await?;
    let output = match command {
        IssueCommand::Create {
            full_path,
            title,
            author,
            description,
        } => {
            let found = project(&mut tx, &full_path).await?;
            let author = user(&mut tx, &author).await?;
            let issue = postern_core::actions::open_issue(
                &mut tx,
                &setup.processor_config(),
                &found,
                &author,
                &title,
                &description,
            )
            .await
            .map_err(refused)?;
            let human = format!("opened {full_path}#{}\n", issue.iid);
            Output::new(&issue, human)?
        }
        IssueCommand::Comment {
            full_path,
            iid,
            author,
            body,
        } => {
            let found = project(&mut tx, &full_path).await?;
            let author = user(&mut tx, &author).await?;
            let issue = tx
                .issue_by_iid(found.id, iid)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage_error(format!("no issue #{iid} in {full_path}")))?;
            let note = postern_core::actions::comment(
                &mut tx,
                &setup.processor_config(),
                &found,
                &author,
                &issue,
                &body,
            )
            .await
            .map_err(refused)?;
            let human = match &note {
                Some(note) => format!("commented on {full_path}#{iid} (note {})\n", note.id),
                None => format!("ran the quick actions on {full_path}#{iid}\n"),
            };
            Output::new(&note, human)?
        }
        IssueCommand::List { full_path } => {
            let project_id = match &full_path {
                Some(path) => Some(project(&mut tx, path).await?.id),
                None => None,
            };
            let filter = IssueFilter {
                project_id,
                ..IssueFilter::default()
            };
            let issues = tx.list_issues(&filter).await.map_err(store_error)?;
            let human: String = issues
                .iter()
                .map(|i| {
                    format!(
                        "{}#{}\t{}\t{}\t{}\n",
                        i.project_id,
                        i.iid,
                        i.issue_type.as_str(),
                        i.state.as_str(),
                        i.title
                    )
                })
                .collect();
            Output::new(&issues, human)?
        }
        IssueCommand::Show { full_path, iid } => {
            let found = project(&mut tx, &full_path).await?;
            let issue = tx
                .issue_by_iid(found.id, iid)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage_error(format!("no issue #{iid} in {full_path}")))?;
            let notes = tx
                .notes_for(Noteable::Issue(issue.id))
                .await
                .map_err(store_error)?;
            let human = format!(
                "{full_path}#{} [{}] {} ({}{})\n  title: {}\n  author: user {}{}\n  labels: {}\n  participants: {}\n  description:\n  {}\n{}",
                issue.iid,
                issue.issue_type.as_str(),
                issue.state.as_str(),
                if issue.confidential {
                    "confidential"
                } else {
                    "not confidential"
                },
                issue
                    .due_date
                    .as_deref()
                    .map(|d| format!(", due {d}"))
                    .unwrap_or_default(),
                issue.title,
                issue.author_id,
                issue
                    .external_author
                    .as_deref()
                    .map(|a| format!(" for {a}"))
                    .unwrap_or_default(),
                issue.labels.join(", "),
                issue.email_participants.join(", "),
                issue.description.replace('\n', "\n  "),
                notes_text(&notes)
            );
            Output::new(&WithNotes { item: issue, notes }, human)?
        }
    };
    commit(tx).await?;
    Ok(output)
}

pub async fn run_mr(store: &Store, command: MrCommand) -> Result<Output, Failure> {
    let mut tx = begin(store).await?;
    let output = match command {
        MrCommand::List { full_path } => {
            let project_id = match &full_path {
                Some(path) => Some(project(&mut tx, path).await?.id),
                None => None,
            };
            let mrs = tx
                .list_merge_requests(project_id)
                .await
                .map_err(store_error)?;
            let human: String = mrs
                .iter()
                .map(|m| {
                    format!(
                        "{}!{}\t{} -> {}\t{}\n",
                        m.project_id, m.iid, m.source_branch, m.target_branch, m.title
                    )
                })
                .collect();
            Output::new(&mrs, human)?
        }
        MrCommand::Show { full_path, iid } => {
            let found = project(&mut tx, &full_path).await?;
            let mr = tx
                .merge_request_by_iid(found.id, iid)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage_error(format!("no merge request !{iid} in {full_path}")))?;
            let notes = tx
                .notes_for(Noteable::MergeRequest(mr.id))
                .await
                .map_err(store_error)?;
            let commits: String = mr
                .commits
                .iter()
                .map(|c| {
                    format!(
                        "  commit {} {} <{}>: {}\n",
                        c.sha, c.author_name, c.author_email, c.title
                    )
                })
                .collect();
            let human = format!(
                "{full_path}!{} {} -> {}\n  title: {}\n  author: user {}\n  description:\n  {}\n{commits}{}",
                mr.iid,
                mr.source_branch,
                mr.target_branch,
                mr.title,
                mr.author_id,
                mr.description.replace('\n', "\n  "),
                notes_text(&notes)
            );
            Output::new(&WithNotes { item: mr, notes }, human)?
        }
    };
    commit(tx).await?;
    Ok(output)
}

pub async fn run_notification(
    store: &Store,
    setup: &Setup,
    command: NotificationCommand,
) -> Result<Output, Failure> {
    let NotificationCommand::Add {
        full_path,
        iid,
        username,
        mr,
    } = command;
    let mut tx: Tx = begin(store).await?;
    let found = project(&mut tx, &full_path).await?;
    let recipient = user(&mut tx, &username).await?;
    let noteable = if mr {
        let item = tx
            .merge_request_by_iid(found.id, iid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| usage_error(format!("no merge request !{iid} in {full_path}")))?;
        Noteable::MergeRequest(item.id)
    } else {
        let item = tx
            .issue_by_iid(found.id, iid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| usage_error(format!("no issue #{iid} in {full_path}")))?;
        Noteable::Issue(item.id)
    };
    let sent = postern_core::actions::record_notification(&mut tx, &found, &recipient, noteable)
        .await
        .map_err(refused)?;
    commit(tx).await?;
    let key = sent.address_key();
    let config = setup.processor_config();
    let reply_address = config
        .incoming_address
        .as_ref()
        .map(|template: &AddressTemplate| template.address_for_key(&key));
    let references = format!("<reply-{key}@{}>", config.host);
    let human = format!(
        "reply key: {key}\nreply address: {}\nReferences: {references}\n",
        reply_address
            .as_deref()
            .unwrap_or("(no incoming address configured)")
    );
    Output::new(
        &serde_json::json!({
            "reply_key": key,
            "reply_address": reply_address,
            "references": references,
            "notification": &*sent,
        }),
        human,
    )
}
