//! `--help` of every command and subcommand exits 0 and explains it.

use crate::support::Sandbox;

/// The subcommands listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_help() {
    let sandbox = Sandbox::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    // Bounded: the tree has a few dozen commands.
    for _ in 0..200 {
        let Some(path) = pending.pop() else {
            break;
        };
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = sandbox.run(&args);
        run.expect_code(0);
        let help = &run.stdout;
        let usage = format!("Usage: postern {}", path.join(" "));
        assert!(help.contains(usage.trim_end()), "{args:?}:\n{help}");
        // The first line says what the command does.
        let about = help.lines().next().unwrap_or_default();
        assert!(
            !about.trim().is_empty() && !about.starts_with("Usage:"),
            "{args:?} has no description:\n{help}"
        );
        for name in subcommands(help) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        seen.push(path.join(" "));
    }
    assert!(pending.is_empty(), "more commands than expected");
    for expected in [
        "inspect",
        "trim",
        "receive",
        "admin",
        "admin user add",
        "admin user token",
        "admin user email add",
        "admin project add",
        "admin project show",
        "admin project member add",
        "admin project service-desk enable",
        "admin project service-desk set",
        "admin issue show",
        "admin mr show",
        "admin notification add",
        "admin message list",
        "admin message show",
        "admin message reprocess",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} not reached: {seen:?}"
        );
    }
}

#[test]
fn inspect_and_receive_help_explain_their_options() {
    let sandbox = Sandbox::new();
    let inspect = sandbox.run(&["inspect", "--help"]);
    inspect.expect_code(0);
    for option in [
        "--config",
        "--mailbox",
        "--address",
        "--service-desk-address",
        "--host",
        "--no-trim",
        "--append-reply",
        "incoming+%{key}@localhost",
        "service_desk",
    ] {
        assert!(
            inspect.stdout.contains(option),
            "{option}:\n{}",
            inspect.stdout
        );
    }
    let receive = sandbox.run(&["receive", "--help"]);
    receive.expect_code(0);
    for text in ["--config", "--mailbox", "75", "78", "postern-data"] {
        assert!(receive.stdout.contains(text), "{text}:\n{}", receive.stdout);
    }
    let trim = sandbox.run(&["trim", "--help"]);
    trim.expect_code(0);
    for field in ["trimmed", "elided", "embedded", "before"] {
        assert!(trim.stdout.contains(field), "{field}:\n{}", trim.stdout);
    }
    let admin = sandbox.run(&["admin", "--help"]);
    admin.expect_code(0);
    assert!(admin.stdout.contains("--json"), "{}", admin.stdout);
}

#[test]
fn version_and_usage_errors() {
    let sandbox = Sandbox::new();
    let version = sandbox.run(&["--version"]);
    version.expect_code(0);
    assert!(version.stdout.starts_with("postern "), "{}", version.stdout);
    let help = sandbox.run(&["help", "receive"]);
    help.expect_code(0);
    assert!(
        help.stdout.contains("Usage: postern receive"),
        "{}",
        help.stdout
    );
    // No command, an unknown command or option: usage on stderr, exit 2.
    for args in [&[][..], &["serve-forever"], &["inspect", "--bogus"]] {
        let run = sandbox.run(args);
        run.expect_code(2);
        assert!(run.stderr.contains("Usage:"), "{args:?}: {}", run.stderr);
    }
}
