//! No secret from a configuration file (mailbox and SMTP passwords, the Graph client secret,
//! the store URL's password) ever appears in any output, errors included.

use crate::support::{Sandbox, Walkthrough, gitlab_email, read_testdata};

const SECRETS: &[&str] = &[
    "imap-password-S3CRET",
    "graph-client-S3CRET",
    "service-desk-password-S3CRET",
    "smtp-password-S3CRET",
];

/// Every section that can hold a secret, filled in.
const CONFIG: &str = r#"incoming_email:
  enabled: true
  address: "incoming+%{key}@appmail.adventuretime.ooo"
  user: "gitlab-incoming@gmail.com"
  password: "imap-password-S3CRET"
  host: "imap.gmail.com"
  port: 993
  ssl: true
  start_tls: false
  mailbox: "inbox"
  idle_timeout: 60
  inbox_method: "microsoft_graph"
  inbox_options:
    tenant_id: "tenant"
    client_id: "client"
    client_secret: "graph-client-S3CRET"
service_desk_email:
  enabled: true
  address: "contact+%{key}@example.com"
  user: "contact@example.com"
  password: "service-desk-password-S3CRET"
smtp:
  host: smtp.example.com
  port: 587
  user: postern
  password: "smtp-password-S3CRET"
  from: "postern@example.com"
instance:
  host: localhost
"#;

#[track_caller]
fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} was printed:\n{text}");
    }
}

#[test]
fn no_command_prints_a_secret() {
    let sandbox = Sandbox::with_config(CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let reply = gitlab_email("valid_reply.eml").display().to_string();
    sandbox.run(&["inspect", &reply]).json();
    sandbox
        .run(&["inspect", "--mailbox", "service_desk", &reply])
        .json();
    let issue = sandbox.receive(&world.fixture("valid_new_issue.eml"));
    assert_eq!(issue["outcome"], "processed", "{issue:#}");
    // A refusal queues a reject notice through the configured SMTP sender.
    let refused = sandbox.receive(&world.fixture("wrong_authentication_token.eml"));
    assert_eq!(refused["reject_notice_queued"], true, "{refused:#}");
    sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    for args in [
        &["project", "show", "gitlabhq/gitlabhq", "--user", "jake"][..],
        &["project", "list"],
        &["user", "list"],
        &["issue", "show", "gitlabhq/gitlabhq", "1"],
        &["notification", "add", "gitlabhq/gitlabhq", "1", "jake"],
        &["message", "list"],
        &["message", "show", "1"],
        &["message", "reprocess", "2"],
    ] {
        sandbox.admin_json(args);
        sandbox.admin_text(args);
    }
    sandbox.run(&["receive", "--help"]).expect_code(0);
    sandbox.run(&["admin", "--help"]).expect_code(0);
    assert_no_secret(&sandbox.transcript(), SECRETS);
}

#[test]
fn configuration_errors_quote_no_secret() {
    let raw = read_testdata("gitlab-emails/valid_reply.eml");
    let broken = [
        // An unknown key between two secrets: the message names the key, not its neighbours.
        CONFIG.replace(
            "  host: \"imap.gmail.com\"\n",
            "  hots: \"imap.gmail.com\"\n",
        ),
        CONFIG.replace("  port: 587\n", "  port: 587\n  pasword: \"x\"\n"),
        // A wrong type on a secret's own line.
        CONFIG.replace(
            "  password: \"smtp-password-S3CRET\"\n",
            "  password: [\"smtp-password-S3CRET\"]\n",
        ),
        CONFIG.replace(
            "    client_secret: \"graph-client-S3CRET\"\n",
            "    client_secret: {graph-client-S3CRET: 1}\n",
        ),
        // Broken YAML right after a secret.
        CONFIG.replace("  port: 993\n", "  port: 993\n   - x\n"),
    ];
    for yaml in &broken {
        let sandbox = Sandbox::with_config(yaml);
        for args in [
            &["inspect", "-"][..],
            &["receive", "-"],
            &["admin", "user", "list"],
        ] {
            let run = sandbox.run_with_stdin(args, &raw);
            run.one_line_error(78);
        }
        assert_no_secret(&sandbox.transcript(), SECRETS);
    }
}

#[test]
fn store_errors_quote_no_password() {
    let raw = read_testdata("gitlab-emails/valid_reply.eml");
    let cases = [
        // Nothing listens on port 1: unavailable, try again later (`receive`'s own tests try
        // `postgres://`; each try waits for the pool's acquire timeout).
        ("postgresql://postern:store-S3CRET@127.0.0.1:1/postern", 75),
        // Unusable whatever happens later.
        ("mysql://postern:store-S3CRET@127.0.0.1/postern", 78),
        ("postern:store-S3CRET@127.0.0.1/postern", 78),
        (
            "postgres://postern:store-S3CRET@127.0.0.1:70000/postern",
            78,
        ),
        ("postgres://postern:store-S3CRET@[::1/postern", 78),
    ];
    for (url, code) in cases {
        let sandbox = Sandbox::with_config(&format!("store:\n  url: \"{url}\"\n"));
        sandbox
            .run_with_stdin(&["receive", "-"], &raw)
            .one_line_error(code);
        if code == 78 {
            sandbox
                .run(&["admin", "project", "list"])
                .one_line_error(code);
        }
        assert_no_secret(&sandbox.transcript(), &["store-S3CRET"]);
    }
}
