//! The history of an issue: system notes ("closed", "assigned to @jake", "changed due date to
//! December 1, 2026"), worded as GitLab's `SystemNotes::IssuablesService` and
//! `TimeTrackingService` word them. [`update_issue`] is the one way a person's change reaches an
//! issue (quick actions of a mail, the web UI's forms and buttons, the API), so the notes are
//! written in the transaction of the change, whatever asked for it; and the changes GitLab
//! mails about (state, assignees) are mailed from every path alike, as is the notice to a
//! Service Desk ticket's outside participants that it was closed (`notify::ticket_closed`).

use postern_store::{Issue, IssueState, IssueUpdate, NewNote, Note, Noteable, Project, Tx, User};

use crate::config::ProcessorConfig;
use crate::error::ProcessError;
use crate::quick::Refused;

/// Applies `update` to `issue` as `actor` did it, writes a system note for each thing that
/// changed, and notifies the issue's participants of a state or assignee change (and, when a
/// ticket is closed, its outside participants, if a member has answered it). Returns the issue
/// as it now is.
pub async fn update_issue(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    actor: &User,
    issue: &Issue,
    update: IssueUpdate,
) -> Result<Issue, ProcessError> {
    let after = tx.update_issue(issue.id, update).await?;
    let changes = describe(tx, issue, &after).await?;
    for change in changes {
        let note = record(tx, actor, &after, change.text).await?;
        if change.notifies {
            crate::notify::notify(
                tx,
                config,
                project,
                actor,
                crate::notify::Change::Commented {
                    note: &note,
                    issue: Some(&after),
                },
            )
            .await?;
        }
        if change.closes {
            crate::notify::ticket_closed(tx, config, project, &after, &note, actor).await?;
        }
    }
    Ok(after)
}

/// Quick actions postern recognises but does not carry out (time tracking): each is answered
/// by a system note naming it, so the person sees it did nothing rather than nothing at all.
pub async fn record_not_done(
    tx: &mut Tx,
    actor: &User,
    issue: &Issue,
    refused: &[Refused],
) -> Result<(), ProcessError> {
    for refusal in refused
        .iter()
        .filter(|r| r.reason == crate::quick::TIME_TRACKING_NOT_SUPPORTED)
    {
        let text = format!(
            "did not run `{}`: time tracking is not supported here",
            refusal.line.trim().replace('`', "'")
        );
        record(tx, actor, issue, text).await?;
    }
    Ok(())
}

/// Writes `text` as a system note on `issue` by `actor`, telling no one.
pub(crate) async fn record(
    tx: &mut Tx,
    actor: &User,
    issue: &Issue,
    text: String,
) -> Result<Note, ProcessError> {
    Ok(tx
        .create_note(NewNote {
            noteable: Noteable::Issue(issue.id),
            author_id: actor.id,
            body: text,
            external_author: None,
            in_reply_to_discussion_id: None,
            internal: false,
            system: true,
        })
        .await?)
}

/// One line of history, whether GitLab mails the participants about it, and whether it is
/// the closing (which a ticket's outside participants hear of).
struct Described {
    text: String,
    notifies: bool,
    closes: bool,
}

/// What changed from `before` to `after`, in GitLab's order and words.
async fn describe(
    tx: &mut Tx,
    before: &Issue,
    after: &Issue,
) -> Result<Vec<Described>, ProcessError> {
    let mut changes = Vec::new();
    let mut say = |text: String, notifies: bool| {
        changes.push(Described {
            text,
            notifies,
            closes: false,
        });
    };
    if before.title != after.title {
        say(
            format!(
                "changed title from **{}** to **{}**",
                inline(&before.title),
                inline(&after.title)
            ),
            false,
        );
    }
    if before.description != after.description {
        say("changed the description".to_owned(), false);
    }
    if let Some(text) = label_change(&before.labels, &after.labels) {
        say(text, false);
    }
    if before.assignee_ids != after.assignee_ids {
        let added: Vec<i64> = after
            .assignee_ids
            .iter()
            .filter(|id| !before.assignee_ids.contains(id))
            .copied()
            .collect();
        let removed: Vec<i64> = before
            .assignee_ids
            .iter()
            .filter(|id| !after.assignee_ids.contains(id))
            .copied()
            .collect();
        let added = usernames(tx, &added).await?;
        let removed = usernames(tx, &removed).await?;
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("assigned to {}", sentence(&added)));
        }
        if !removed.is_empty() {
            parts.push(format!("unassigned {}", sentence(&removed)));
        }
        if !parts.is_empty() {
            say(parts.join(" and "), true);
        }
    }
    if before.due_date != after.due_date {
        let text = match &after.due_date {
            Some(date) => format!("changed due date to {}", long_date(date)),
            None => "removed due date".to_owned(),
        };
        say(text, false);
    }
    if before.confidential != after.confidential {
        let text = if after.confidential {
            "made the issue confidential"
        } else {
            "made the issue visible to everyone"
        };
        say(text.to_owned(), false);
    }
    if before.discussion_locked != after.discussion_locked {
        let text = if after.discussion_locked {
            "locked this issue"
        } else {
            "unlocked this issue"
        };
        say(text.to_owned(), false);
    }
    if before.state != after.state {
        let closes = after.state == IssueState::Closed;
        let text = if closes { "closed" } else { "reopened" };
        changes.push(Described {
            text: text.to_owned(),
            notifies: true,
            closes,
        });
    }
    Ok(changes)
}

/// `@name` of each user (those since deleted are left out).
async fn usernames(tx: &mut Tx, ids: &[i64]) -> Result<Vec<String>, ProcessError> {
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(user) = tx.user_by_id(*id).await? {
            names.push(format!("@{}", user.username));
        }
    }
    Ok(names)
}

/// `a`, `a and b`, `a, b, and c` (GitLab's `to_sentence`).
fn sentence(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

/// A label as GitLab references it: `~bug`, or `~"needs review"` when it has a space.
fn label_reference(label: &str) -> String {
    if label.contains(char::is_whitespace) {
        format!("~\"{}\"", label.replace('"', "'"))
    } else {
        format!("~{label}")
    }
}

/// GitLab's label note: `added ~bug label`, `removed ~a ~b labels`, `added ~a label and
/// removed ~b label`.
fn label_change(before: &[String], after: &[String]) -> Option<String> {
    let added: Vec<String> = after
        .iter()
        .filter(|l| !before.contains(l))
        .map(|l| label_reference(l))
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|l| !after.contains(l))
        .map(|l| label_reference(l))
        .collect();
    let part = |verb: &str, labels: &[String]| {
        let noun = if labels.len() == 1 { "label" } else { "labels" };
        format!("{verb} {} {noun}", labels.join(" "))
    };
    match (added.is_empty(), removed.is_empty()) {
        (true, true) => None,
        (false, true) => Some(part("added", &added)),
        (true, false) => Some(part("removed", &removed)),
        (false, false) => Some(format!(
            "{} and {}",
            part("added", &added),
            part("removed", &removed)
        )),
    }
}

/// `2026-12-01` → `December 1, 2026` (Ruby's `Date#to_fs(:long)`); anything else as it is.
fn long_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut parts = date.splitn(3, '-');
    let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next()) else {
        return date.to_owned();
    };
    match (month.parse::<usize>(), day.parse::<u32>()) {
        (Ok(month @ 1..=12), Ok(day)) => format!("{} {day}, {year}", MONTHS[month - 1]),
        _ => date.to_owned(),
    }
}

/// A title inside `**…**`: one line, its own asterisks escaped so it cannot end the emphasis.
fn inline(text: &str) -> String {
    text.replace(['\r', '\n'], " ").replace('*', "\\*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_worded_as_gitlab_words_them() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            label_change(&s(&[]), &s(&["bug"])).as_deref(),
            Some("added ~bug label")
        );
        assert_eq!(
            label_change(&s(&["a", "needs review"]), &s(&[])).as_deref(),
            Some("removed ~a ~\"needs review\" labels")
        );
        assert_eq!(
            label_change(&s(&["a"]), &s(&["b"])).as_deref(),
            Some("added ~b label and removed ~a label")
        );
        assert_eq!(label_change(&s(&["a"]), &s(&["a"])), None);
    }

    #[test]
    fn dates_and_lists_read_as_in_gitlab() {
        assert_eq!(long_date("2026-12-01"), "December 1, 2026");
        assert_eq!(long_date("soon"), "soon");
        let names = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(sentence(&names(&["@a", "@b"])), "@a and @b");
        assert_eq!(sentence(&names(&["@a", "@b", "@c"])), "@a, @b, and @c");
    }
}
