//! Running quick actions from mail: `/close`, `/label ~bug`, `/assign @alice` …
//!
//! Each command runs only if the author may do it (GitLab silently skips the others), and every
//! recognised command line is removed from the stored text whether it ran or not. `/assign`
//! adds only people who may read the issue ([`permissions::can_read`]), as GitLab's assignee
//! filter does: a name outside a private project is dropped, and the refusal logged and kept in
//! [`Effects::refused`].

use postern_mail::QuickAction;
use postern_store::{Issue, IssueState, IssueUpdate, MergeRequestState, Project, Tx};

use crate::error::ProcessError;
use crate::permissions::{self, Actor, Readable};

/// What the commands of one message change on an issue, plus what they ask of a merge request.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    /// Changes to apply to the issue.
    pub update: IssueUpdate,
    /// `/target_branch` for a new merge request.
    pub target_branch: Option<String>,
    /// Commands that ran, for the log.
    pub applied: Vec<String>,
    /// What a command asked for and did not get, with the reason.
    pub refused: Vec<Refused>,
}

/// Part of a quick action that was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The command line.
    pub line: String,
    /// Why: `assignee_cannot_read` (the person named may not read the issue), or
    /// [`TIME_TRACKING_NOT_SUPPORTED`].
    pub reason: &'static str,
}

impl Effects {
    /// Whether anything is to change on the issue.
    pub fn changes_issue(&self) -> bool {
        let update = &self.update;
        update.title.is_some()
            || update.description.is_some()
            || update.state.is_some()
            || update.confidential.is_some()
            || update.discussion_locked.is_some()
            || update.due_date.is_some()
            || update.labels.is_some()
            || update.assignee_ids.is_some()
    }
}

/// Works out the effect of `actions` by `actor` on `issue` (or on a new issue/MR when `None`).
/// `full_rights` runs every command regardless of role (quick actions of a Service Desk template,
/// which GitLab executes as the Support Bot).
pub async fn interpret(
    tx: &mut Tx,
    actions: &[QuickAction],
    actor: &Actor<'_>,
    project: &Project,
    issue: Option<&Issue>,
    full_rights: bool,
) -> Result<Effects, ProcessError> {
    let may_update = full_rights
        || match issue {
            Some(issue) => actor.can_update_issue(project, issue),
            // The author of a new issue may shape it.
            None => actor.can_create_issue(project),
        };
    let may_admin = full_rights || actor.can_admin_issue(project);
    let mut effects = Effects::default();
    let mut labels: Vec<String> = issue.map(|i| i.labels.clone()).unwrap_or_default();
    let mut assignees: Vec<i64> = issue.map(|i| i.assignee_ids.clone()).unwrap_or_default();
    let argument = |action: &QuickAction| action.argument.clone().unwrap_or_default();
    // People `/assign` adds, with the line that named them: checked once the whole message is
    // read, against the issue as it will be (a `/confidential` further down counts).
    let mut requested: Vec<(i64, String)> = Vec::new();

    for action in actions {
        let ran = match action.command.as_str() {
            "close" if may_update => {
                effects.update.state = Some(IssueState::Closed);
                true
            }
            "reopen" if may_update => {
                effects.update.state = Some(IssueState::Opened);
                true
            }
            "title" if may_update && !argument(action).trim().is_empty() => {
                effects.update.title = Some(argument(action).trim().to_owned());
                true
            }
            "label" | "labels" if may_admin => {
                for label in parse_labels(&argument(action)) {
                    if labels.len() < MAX_LABELS_PER_ISSUE && !labels.contains(&label) {
                        labels.push(label);
                    }
                }
                effects.update.labels = Some(labels.clone());
                true
            }
            "unlabel" | "remove_label" if may_admin => {
                let named = parse_labels(&argument(action));
                if named.is_empty() {
                    labels.clear();
                } else {
                    labels.retain(|label| !named.contains(label));
                }
                effects.update.labels = Some(labels.clone());
                true
            }
            "relabel" if may_admin => {
                labels = parse_labels(&argument(action));
                effects.update.labels = Some(labels.clone());
                true
            }
            "assign" if may_admin => {
                for user_id in resolve_users(tx, &argument(action), actor).await? {
                    if !assignees.contains(&user_id) {
                        assignees.push(user_id);
                        requested.push((user_id, action.line.clone()));
                    }
                }
                effects.update.assignee_ids = Some(assignees.clone());
                true
            }
            "unassign" if may_admin => {
                let named = resolve_users(tx, &argument(action), actor).await?;
                if named.is_empty() {
                    assignees.clear();
                } else {
                    assignees.retain(|id| !named.contains(id));
                }
                effects.update.assignee_ids = Some(assignees.clone());
                true
            }
            "confidential" if may_admin => {
                effects.update.confidential = Some(true);
                true
            }
            "due" if may_admin => match parse_date(&argument(action)) {
                Some(date) => {
                    effects.update.due_date = Some(Some(date));
                    true
                }
                None => false,
            },
            "remove_due_date" if may_admin => {
                effects.update.due_date = Some(None);
                true
            }
            // Time tracking is not kept here; GitLab would record it, so the author is told
            // (`system_notes::record_not_done`) rather than left to think it was.
            "estimate"
            | "estimate_time"
            | "remove_estimate"
            | "remove_time_estimate"
            | "spend"
            | "spent"
            | "remove_time_spent"
                if may_update && issue.is_some() =>
            {
                effects.refused.push(Refused {
                    line: action.line.clone(),
                    reason: TIME_TRACKING_NOT_SUPPORTED,
                });
                false
            }
            "target_branch" if !argument(action).trim().is_empty() => {
                effects.target_branch = Some(argument(action).trim().to_owned());
                true
            }
            _ => false,
        };
        if ran {
            effects.applied.push(action.line.clone());
        }
    }
    drop_unreadable_assignees(tx, &mut effects, requested, actor, project, issue).await?;
    Ok(effects)
}

/// Takes out of `effects` the people `/assign` added who may not read the issue as it will be
/// after this message (its confidentiality included, without counting the assignment itself).
async fn drop_unreadable_assignees(
    tx: &mut Tx,
    effects: &mut Effects,
    requested: Vec<(i64, String)>,
    actor: &Actor<'_>,
    project: &Project,
    issue: Option<&Issue>,
) -> Result<(), ProcessError> {
    let confidential = effects.update.confidential;
    let mut will_be = issue.cloned();
    if let (Some(issue), Some(confidential)) = (will_be.as_mut(), confidential) {
        issue.confidential = confidential;
    }
    let readable = match &will_be {
        Some(issue) => Readable::Issue(issue),
        None => Readable::NewIssue {
            confidential: confidential.unwrap_or(false),
            author_id: actor.user.id,
        },
    };
    for (user_id, line) in requested {
        let may_read = match tx.user_by_id(user_id).await? {
            Some(user) => permissions::can_read(tx, &user, project, readable).await?,
            None => false,
        };
        if may_read {
            continue;
        }
        if let Some(assignees) = effects.update.assignee_ids.as_mut() {
            assignees.retain(|id| *id != user_id);
        }
        tracing::info!(
            command = "assign",
            reason = "assignee_cannot_read",
            "quick action not applied in full"
        );
        effects.refused.push(Refused {
            line,
            reason: "assignee_cannot_read",
        });
    }
    Ok(())
}

/// Runs the state commands GitLab offers on a merge request note: `/close` on an open one and
/// `/reopen` on a closed one (a merged one stays merged), for developers and up or the merge
/// request's author (`update_merge_request`). Other commands are skipped, as GitLab skips what
/// does not apply. Returns the new state when it changed.
pub async fn run_on_merge_request(
    tx: &mut Tx,
    actions: &[QuickAction],
    actor: &Actor<'_>,
    project: &Project,
    merge_request_id: i64,
) -> Result<Option<MergeRequestState>, ProcessError> {
    let Some(mr) = tx.merge_request_by_id(merge_request_id).await? else {
        return Ok(None);
    };
    let may_update = actor.can_update_merge_request(project)
        || (mr.author_id == actor.user.id && actor.can_create_note(project, None));
    if !may_update {
        return Ok(None);
    }
    let mut state = mr.state;
    for action in actions {
        state = match (action.command.as_str(), state) {
            ("close", MergeRequestState::Opened) => MergeRequestState::Closed,
            ("reopen", MergeRequestState::Closed) => MergeRequestState::Opened,
            (_, unchanged) => unchanged,
        };
    }
    if state == mr.state {
        return Ok(None);
    }
    tx.set_merge_request_state(mr.id, state).await?;
    Ok(Some(state))
}

/// The reason of a time-tracking command (`/estimate`, `/spend` …): postern keeps no time.
pub const TIME_TRACKING_NOT_SUPPORTED: &str = "time_tracking_not_supported";

/// Labels one issue may carry; further ones are not added. Each `/label` then costs at most
/// this many comparisons per label, whatever the mail holds.
pub const MAX_LABELS_PER_ISSUE: usize = 100;

/// Longest label, in characters (GitLab's label title limit); longer ones are not labels.
pub const MAX_LABEL_CHARS: usize = 255;

/// Users one `/assign` or `/unassign` names; further names are not looked up.
pub const MAX_USERS_PER_ACTION: usize = 100;

/// `~bug ~"needs review" plain` → `["bug", "needs review", "plain"]`: at most
/// [`MAX_LABELS_PER_ISSUE`] distinct labels of at most [`MAX_LABEL_CHARS`] characters.
pub fn parse_labels(argument: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut rest = argument.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let without_tilde = rest.strip_prefix('~').unwrap_or(rest);
        let (label, after) = if let Some(quoted) = without_tilde.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            let end = without_tilde
                .find([' ', ',', '\t'])
                .unwrap_or(without_tilde.len());
            (&without_tilde[..end], &without_tilde[end..])
        };
        let label = label.trim();
        if !label.is_empty() && label.chars().count() <= MAX_LABEL_CHARS && seen.insert(label) {
            labels.push(label.to_owned());
            if labels.len() == MAX_LABELS_PER_ISSUE {
                break;
            }
        }
        rest = after;
    }
    labels
}

/// `@alice @bob`, `me` → user ids (unknown names are skipped, as GitLab does).
async fn resolve_users(
    tx: &mut Tx,
    argument: &str,
    actor: &Actor<'_>,
) -> Result<Vec<i64>, ProcessError> {
    let mut ids = Vec::new();
    for word in argument
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .take(MAX_USERS_PER_ACTION)
    {
        let id = if word == "me" {
            Some(actor.user.id)
        } else {
            let name = word.trim_start_matches('@');
            tx.user_by_username(name).await?.map(|user| user.id)
        };
        if let Some(id) = id
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// An ISO date `YYYY-MM-DD`; other forms are left alone rather than guessed.
fn parse_date(argument: &str) -> Option<String> {
    let date = argument.trim();
    let parts: Vec<&str> = date.split('-').collect();
    let valid = parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0));
    valid.then(|| date.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_quotes_and_tildes() {
        assert_eq!(
            parse_labels("~bug ~\"needs review\" plain,~bug"),
            ["bug", "needs review", "plain"]
        );
        assert!(parse_labels("").is_empty());
    }

    #[test]
    fn only_iso_dates_are_accepted() {
        assert_eq!(parse_date("2026-12-01").as_deref(), Some("2026-12-01"));
        assert_eq!(parse_date("tomorrow"), None);
        assert_eq!(parse_date("2026-13-01"), None);
    }
}
