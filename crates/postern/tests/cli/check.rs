//! `postern check`: one line per check, exit 1 on any failure, no secret ever printed.

use crate::support::Sandbox;

#[test]
fn defaults_pass_every_check() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["check"]);
    run.expect_code(0);
    let out = run.all_output();
    assert!(
        out.contains("OK   configuration: embedded defaults"),
        "{out}"
    );
    assert!(
        out.contains("OK   store: sqlite, schema up to date"),
        "{out}"
    );
    assert!(
        out.contains(
            "OK   outgoing mail: no smtp: section, mail is written to postern-data/outbox"
        ),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn an_unreachable_relay_fails_without_printing_its_password() {
    let port = postern_testkit::mailserver::closed_port();
    let sandbox = Sandbox::with_config(&format!(
        "smtp:\n  host: 127.0.0.1\n  port: {port}\n  tls: none\n  user: relay\n  password: \"pw-Zq81-secret\"\n  timeout: 5\n"
    ));
    let run = sandbox.run(&["check"]);
    run.expect_code(1);
    let out = run.all_output();
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].starts_with("FAIL outgoing mail: "), "{out}");
    assert!(failed[0].contains(&port.to_string()), "{out}");
    assert!(
        out.contains("OK   store"),
        "the other checks still run: {out}"
    );
    assert!(!out.contains("pw-Zq81-secret"), "{out}");
}

#[test]
fn an_unknown_key_fails_the_configuration_check_naming_it() {
    let sandbox = Sandbox::with_config("incoming_email:\n  enabled: true\n  adress: x\n");
    let run = sandbox.run(&["check"]);
    run.expect_code(1);
    let out = run.all_output();
    assert!(out.starts_with("FAIL configuration: "), "{out}");
    assert!(out.contains("adress"), "{out}");
}

#[test]
fn a_graph_page_size_out_of_range_fails_naming_the_key() {
    let sandbox = Sandbox::with_config(
        "incoming_email:\n  enabled: true\n  address: \"in+%{key}@example.com\"\n  \
         user: in@example.com\n  inbox_method: microsoft_graph\n  inbox_options:\n    \
         tenant_id: t\n    client_id: c\n    client_secret: \"graph-S3CRET\"\n    \
         page_size: 5000\n",
    );
    let run = sandbox.run(&["check"]);
    run.expect_code(1);
    let out = run.all_output();
    assert!(
        out.contains("inbox_options.page_size must be 1 to 1000"),
        "{out}"
    );
    assert!(!out.contains("graph-S3CRET"), "{out}");
}
