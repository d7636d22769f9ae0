//! Quick actions (`/close`, `/label ~bug` …) in a mail body: finding them, and redacting them.
//!
//! The pattern is GitLab's `Gitlab::QuickActions::Extractor#commands_regex`, which has no
//! look-around or back-references, so the `regex` crate runs it unchanged (leftmost-first
//! alternation and lazy repetition behave as in Ruby) and in linear time. A command counts only at
//! the start of a line, outside fenced code, inline-code spans, HTML blocks and `>>>` quotes, and
//! only if its name is a known command (case-insensitive).

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Serialize;

/// Command names GitLab knows for issues, merge requests and tickets, aliases included.
pub const COMMAND_NAMES: &[&str] = &[
    "add_child",
    "add_contacts",
    "add_email",
    "approve",
    "assign",
    "assign_reviewer",
    "award",
    "blocked_by",
    "blocks",
    "board_move",
    "cc",
    "clone",
    "close",
    "confidential",
    "convert_to_ticket",
    "copy_metadata",
    "create_merge_request",
    "done",
    "draft",
    "due",
    "duplicate",
    "epic",
    "estimate",
    "estimate_time",
    "health_status",
    "invite_email",
    "iteration",
    "label",
    "labels",
    "lock",
    "merge",
    "milestone",
    "move",
    "parent_epic",
    "promote",
    "promote_to_incident",
    "ready",
    "reassign",
    "reassign_reviewer",
    "rebase",
    "relabel",
    "relate",
    "remove_child",
    "remove_contacts",
    "remove_due_date",
    "remove_email",
    "remove_epic",
    "remove_estimate",
    "remove_iteration",
    "remove_label",
    "remove_milestone",
    "remove_parent",
    "remove_parent_epic",
    "remove_reviewer",
    "remove_time_estimate",
    "remove_time_spent",
    "remove_weight",
    "reopen",
    "request_review",
    "reviewer",
    "set_parent",
    "severity",
    "shrug",
    "spend",
    "spent",
    "submit_review",
    "subscribe",
    "tableflip",
    "target_branch",
    "timeline",
    "title",
    "todo",
    "type",
    "unapprove",
    "unassign",
    "unassign_reviewer",
    "unlabel",
    "unlock",
    "unsubscribe",
    "weight",
    "wip",
];

/// One quick action found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuickAction {
    /// The command name, lowercased (`label`).
    pub command: String,
    /// The argument text, if any (`~bug ~"needs review"`).
    pub argument: Option<String>,
    /// The line as written, without the line break (`/label ~bug`).
    pub line: String,
}

static COMMANDS: LazyLock<Regex> = LazyLock::new(|| {
    // Longest names first so that an alias that prefixes another never shadows it.
    let mut names: Vec<&str> = COMMAND_NAMES.to_vec();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    let names = names.join("|");
    // Ruby's /mix: `m` (dot matches newline) is `s` here; Ruby's ^ and $ are always line anchors,
    // which is `m` here. The second `html` group of GitLab's pattern is renamed `quote` because
    // this engine wants unique group names; it is treated the same.
    Regex::new(&format!(
        concat!(
            r"(?msi)",
            r"(?P<code>^```.+?\n```$)",
            r"|(?P<inline_code>^.*`\n*.+?\n*`$)",
            r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)",
            r"|(?P<quote>^>>>.+?\n>>>$)",
            r"|(?:^/(?P<cmd>{names})(?:\x20(?P<arg>[^\n]*))?(?:\s*\n|$))",
        ),
        names = names
    ))
    .expect("constant pattern")
});

fn without_carriage_returns(content: &str) -> String {
    content.replace('\r', "")
}

/// The quick actions in `content`, in order.
pub fn find_quick_actions(content: &str) -> Vec<QuickAction> {
    let content = without_carriage_returns(content);
    COMMANDS
        .captures_iter(&content)
        .filter_map(|captures| command_of(&captures))
        .collect()
}

/// `content` without its quick-action lines (GitLab's `extract_commands`, right-stripped), and the
/// actions that were removed.
pub fn extract_quick_actions(content: &str) -> (String, Vec<QuickAction>) {
    let content = without_carriage_returns(content);
    let mut actions = Vec::new();
    let remaining = COMMANDS.replace_all(&content, |captures: &Captures<'_>| {
        match command_of(captures) {
            Some(action) => {
                actions.push(action);
                String::new()
            }
            None => captures[0].to_owned(),
        }
    });
    (remaining.trim_end().to_owned(), actions)
}

/// Wraps every quick action in a code span so it is shown, not run (Service Desk mail from
/// outsiders; GitLab's `redact_commands`): `/label ~x` → `` `/label ~x` ``.
pub fn redact_quick_actions(content: &str) -> String {
    let content = without_carriage_returns(content);
    let redacted = COMMANDS.replace_all(&content, |captures: &Captures<'_>| {
        let whole = &captures[0];
        match captures.name("cmd") {
            Some(cmd) => {
                let mut out = format!("`/{}", cmd.as_str());
                if let Some(arg) = captures.name("arg") {
                    out.push(' ');
                    out.push_str(arg.as_str());
                }
                out.push('`');
                if whole.contains('\n') {
                    out.push('\n');
                }
                out
            }
            None => whole.to_owned(),
        }
    });
    redacted.trim_end().to_owned()
}

fn command_of(captures: &Captures<'_>) -> Option<QuickAction> {
    let command = captures.name("cmd")?;
    let argument = captures
        .name("arg")
        .map(|arg| arg.as_str().trim().to_owned())
        .filter(|arg| !arg.is_empty());
    let line = captures[0].trim_end_matches(['\n', ' ', '\t']).to_owned();
    Some(QuickAction {
        command: command.as_str().to_lowercase(),
        argument,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_commands_at_line_start_only() {
        let actions =
            find_quick_actions("Cool!\n/close\n/label ~bug ~\"x y\"\nnot /close\n/unknown\n");
        let lines: Vec<_> = actions.iter().map(|a| a.line.as_str()).collect();
        assert_eq!(lines, ["/close", "/label ~bug ~\"x y\""]);
        assert_eq!(actions[1].argument.as_deref(), Some("~bug ~\"x y\""));
    }

    #[test]
    fn ignores_commands_in_fenced_code() {
        let actions = find_quick_actions("```\n/close\n```\n/reopen");
        let names: Vec<_> = actions.iter().map(|a| a.command.as_str()).collect();
        assert_eq!(names, ["reopen"]);
    }

    #[test]
    fn redaction_matches_gitlab_service_desk_output() {
        let body =
            "Service desk stuff!\n\n```\na = b\n```\n\n/label ~label1\n/assign @user1\n/close\n";
        assert_eq!(
            redact_quick_actions(body),
            "Service desk stuff!\n\n```\na = b\n```\n\n`/label ~label1`\n`/assign @user1`\n`/close`"
        );
    }

    #[test]
    fn extraction_removes_command_lines() {
        let (text, actions) = extract_quick_actions("Cool!\n\n/close\n/todo\n");
        assert_eq!(text, "Cool!");
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0].command, "close");
    }

    #[test]
    fn command_names_are_case_insensitive() {
        let actions = find_quick_actions("/Close");
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].command, "close");
    }
}
