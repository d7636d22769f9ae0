//! GitLab's pattern run as a regular expression (the implementation before the one-pass
//! scanner, quadratic on long texts): the oracle the scanner is compared with on small inputs,
//! by the tests and, with the `oracle` feature, by the `quick_actions` fuzz target.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{COMMAND_NAMES, QuickAction, without_carriage_returns};

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

/// The quick actions in `content`, in order.
/// The old `find_quick_actions`.
pub fn find_quick_actions(content: &str) -> Vec<QuickAction> {
    let content = without_carriage_returns(content);
    COMMANDS
        .captures_iter(&content)
        .filter_map(|captures| command_of(&captures))
        .collect()
}

/// `content` without its quick-action lines (GitLab's `extract_commands`, right-stripped), and the
/// actions that were removed.
/// The old `extract_quick_actions`.
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
/// The old `redact_quick_actions`.
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
