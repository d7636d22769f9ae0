//! Who receives the mail about a change, decided in one place: [`notify`](super::notify),
//! [`to_external_participants`](super::to_external_participants) and
//! [`ticket_closed`](super::ticket_closed) send by it, and [`comment_audience`] answers the
//! same question for the line above a comment box.

use postern_mail::AddressTemplate;
use postern_store::{Issue, IssueType, Noteable, Project, Tx, User};

use super::Change;
use crate::config::ProcessorConfig;
use crate::error::ProcessError;
use crate::permissions::{self, Readable};

/// What a notification is about, as [`recipients`] judges it: the issue (when there is one),
/// what the recipient must be able to read, the new text (for mentions), and whether it is an
/// internal note.
#[derive(Clone, Copy)]
pub(super) struct About<'a> {
    issue: Option<&'a Issue>,
    readable: Readable<'a>,
    text: &'a str,
    internal_note: bool,
}

impl<'a> About<'a> {
    pub(super) fn of(change: Change<'a>) -> About<'a> {
        match change {
            Change::IssueOpened(issue) => About {
                issue: Some(issue),
                readable: Readable::Issue(issue),
                text: &issue.description,
                internal_note: false,
            },
            Change::Commented { note, issue } => About {
                issue,
                readable: Readable::Note {
                    issue,
                    internal: note.internal,
                },
                text: &note.body,
                internal_note: note.internal,
            },
            Change::MergeRequestOpened(mr) => About {
                issue: None,
                readable: Readable::MergeRequest,
                text: &mr.description,
                internal_note: false,
            },
        }
    }
}

/// Who hears about a change: the author, the assignees, everyone who commented, everyone
/// subscribed, the project's watchers (`notification_levels`), and the people the new text
/// mentions (`@name`, not in text from the Support Bot: outsiders do not get to page members)
/// — minus whoever unsubscribed or turned mail off for the project, the actor and the Support
/// Bot, and anyone who may
/// not read what the mail shows, as they are now ([`permissions::can_read`]: removed members of
/// a private project, blocked users, non-reporters on a confidential issue). An internal note
/// is mailed to nobody: a notification carries a reply key, and a reply by mail would come
/// back as an ordinary, public comment quoting it.
pub(super) async fn recipients(
    tx: &mut Tx,
    project: &Project,
    noteable: Noteable,
    about: About<'_>,
    actor: &User,
) -> Result<Vec<User>, ProcessError> {
    if about.internal_note {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = Vec::new();
    let About {
        issue,
        readable,
        text,
        ..
    } = about;
    if !actor.is_support_bot() {
        for name in crate::mentions::mentioned_usernames(text) {
            if let Some(user) = tx.user_by_username(&name).await? {
                ids.push(user.id);
            }
        }
    }
    match noteable {
        Noteable::Issue(_) => {
            if let Some(issue) = issue {
                ids.push(issue.author_id);
                ids.extend(&issue.assignee_ids);
            }
        }
        Noteable::MergeRequest(id) => {
            if let Some(mr) = tx.merge_request_by_id(id).await? {
                ids.push(mr.author_id);
            }
        }
    }
    for note in tx.notes_for(noteable).await? {
        if !note.system {
            ids.push(note.author_id);
        }
    }
    let mut unsubscribed = Vec::new();
    for subscription in tx.subscriptions_for(noteable).await? {
        if subscription.subscribed {
            ids.push(subscription.user_id);
        } else {
            unsubscribed.push(subscription.user_id);
        }
    }
    // GitLab's `watch` level: all activity of the project; `disabled`: no mail at all.
    ids.extend(crate::notification_levels::watchers(tx, project).await?);
    ids.sort_unstable();
    ids.dedup();
    let mut users = Vec::new();
    for id in ids {
        if id == actor.id || unsubscribed.contains(&id) {
            continue;
        }
        let level = crate::notification_levels::effective(tx, id, project.id).await?;
        if level == crate::notification_levels::Level::Disabled {
            continue;
        }
        let Some(user) = tx.user_by_id(id).await? else {
            continue;
        };
        if user.is_support_bot() || !permissions::can_read(tx, &user, project, readable).await? {
            continue;
        }
        users.push(user);
    }
    Ok(users)
}

/// The outside participants of `ticket` who receive a comment by mail from `author`, or the
/// notice that `author` closed it: none for an issue, an internal note, or the Support Bot's
/// own notes (their own mail).
pub(super) fn outside_recipients<'a>(
    ticket: &'a Issue,
    internal: bool,
    author: &User,
) -> &'a [String] {
    if ticket.issue_type != IssueType::Ticket || internal || author.is_support_bot() {
        return &[];
    }
    &ticket.email_participants
}

/// Who will receive a comment `author` is about to write on `noteable` (and `issue`, when it
/// is one) by mail, as [`notify`](super::notify) and
/// [`to_external_participants`](super::to_external_participants) will decide it, with the
/// same rules: the line above a comment box. People the text will `@mention` are not known
/// yet and not included.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// Users notified (participants, subscribers, assignees who may read it).
    pub users: Vec<User>,
    /// A ticket's outside participants, mailed from the Service Desk address.
    pub outside: Vec<String>,
}

impl Audience {
    /// Nobody will receive the comment by mail.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.outside.is_empty()
    }
}

/// See [`Audience`]. Nothing here is written; `internal` asks for an internal note's audience
/// (always empty).
pub async fn comment_audience(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    noteable: Noteable,
    issue: Option<&Issue>,
    internal: bool,
) -> Result<Audience, ProcessError> {
    let about = About {
        issue,
        readable: Readable::Note { issue, internal },
        text: "",
        internal_note: internal,
    };
    // Without a reply address no notification is composed at all (see `notify`).
    let users = if reply_template(config).is_some() {
        recipients(tx, project, noteable, about, author).await?
    } else {
        Vec::new()
    };
    let outside = match (issue, &config.incoming_address) {
        (Some(issue), Some(_)) => outside_recipients(issue, internal, author).to_vec(),
        _ => Vec::new(),
    };
    Ok(Audience { users, outside })
}

/// The reply address template notifications use, if replies by mail are possible at all.
pub(super) fn reply_template(config: &ProcessorConfig) -> Option<&AddressTemplate> {
    config
        .incoming_address
        .as_ref()
        .filter(|template| template.supports_wildcard() || !template.as_str().is_empty())
}
