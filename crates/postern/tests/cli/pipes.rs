//! A reader that goes away early (`postern … | head`) is no crash: the command still exits 0,
//! and for `receive` the message is still stored.

use std::process::Stdio;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, gitlab_email};

/// Runs `postern args…` with standard output a pipe whose reading end is already closed, so
/// the first write fails with EPIPE; returns the exit code and standard error.
fn run_into_closed_pipe(sandbox: &Sandbox, args: &[&str], stdin: &[u8]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let input = sandbox.write("stdin.bin", stdin);
    let stdin = std::fs::File::open(input).expect("the input file");
    let output = sandbox
        .command(args)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("postern runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn closed_standard_output_is_not_a_crash() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let reply = gitlab_email("valid_reply.eml").display().to_string();
    for args in [
        &["inspect", reply.as_str()][..],
        &["trim", reply.as_str()],
        &["admin", "user", "list"],
        &["admin", "user", "list", "--json"],
    ] {
        let (code, stderr) = run_into_closed_pipe(&sandbox, args, b"");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }

    // `receive` stores and processes before it prints: the outcome is kept.
    let mail = world.fixture("valid_new_issue.eml");
    let (code, stderr) = run_into_closed_pipe(&sandbox, &["receive", "-"], &mail);
    assert_eq!(code, Some(0), "receive: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let again = sandbox.receive(&mail);
    assert_eq!(again["outcome"], "duplicate", "{again:#}");
    assert_eq!(again["first_outcome"], "processed");
}
