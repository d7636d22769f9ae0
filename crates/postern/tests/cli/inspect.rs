//! `postern inspect`: fields, defaults, flags, configuration and exit codes.

use serde_json::{Value, json};

use crate::support::{
    Sandbox, assert_has_keys, fixture_with, gitlab_email, read_testdata, str_field,
};

/// GitLab's shared-context reply key, in `valid_reply.eml`.
const KEY: &str = "59d8df8370b7e95c5a49fbf86aeb2c93";
const REPLY: &str = "reply+%{key}@appmail.adventuretime.ooo";

/// The fields README promises.
const FIELDS: &[&str] = &[
    "message_id",
    "subject",
    "from",
    "reply_to",
    "sender",
    "mail_key",
    "key_source",
    "handler",
    "auto_generated",
    "auto_generated_reason",
    "body",
    "elided",
    "quick_actions",
    "attachments",
    "error",
];

fn inspect(sandbox: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let value = sandbox.run(&all).json();
    assert_has_keys(&value, FIELDS);
    value
}

fn fixture_arg(name: &str) -> String {
    gitlab_email(name).display().to_string()
}

#[test]
fn valid_reply_with_the_reply_address() {
    let sandbox = Sandbox::new();
    let value = inspect(
        &sandbox,
        &["--address", REPLY, &fixture_arg("valid_reply.eml")],
    );
    assert_eq!(
        value["message_id"],
        "CADkmRc+rNGAGGbV2iE5p918UVy4UyJqVcXRO2=otppgzduJSg@mail.gmail.com"
    );
    assert_eq!(
        value["subject"],
        "re: [Discourse Meta] eviltrout posted in 'Adventure Time Sux'"
    );
    assert_eq!(value["from"], "jake@adventuretime.ooo");
    assert_eq!(value["reply_to"], Value::Null);
    assert_eq!(value["sender"], Value::Null);
    assert_eq!(value["mail_key"], KEY);
    assert_eq!(value["key_source"], "To");
    assert_eq!(value["handler"], "create_note");
    assert_eq!(value["auto_generated"], false);
    assert_eq!(value["auto_generated_reason"], Value::Null);
    assert_eq!(
        value["body"],
        "I could not disagree more. I am obviously biased but adventure time is the\n\
         greatest show ever created. Everyone should watch it.\n\n- Jake out"
    );
    assert!(
        str_field(&value, "elided")
            .starts_with("On Sun, Jun 9, 2013 at 1:39 PM, eviltrout via Discourse Meta"),
        "{value:#}"
    );
    assert_eq!(value["quick_actions"], json!([]));
    assert_eq!(value["attachments"], json!([]));
    assert_eq!(value["error"], Value::Null);
    // `incoming` is the default mailbox.
    let explicit = inspect(
        &sandbox,
        &[
            "--mailbox",
            "incoming",
            "--address",
            REPLY,
            &fixture_arg("valid_reply.eml"),
        ],
    );
    assert_eq!(explicit, value);
    // Nothing was stored: inspect touches no store.
    assert!(!sandbox.path().join("postern-data").exists());
}

#[test]
fn default_address_and_host_are_localhost() {
    let sandbox = Sandbox::new();
    // `incoming+%{key}@localhost` does not match the fixture's To, but the default host
    // `localhost` matches its `References: <reply-KEY@localhost>`.
    let value = inspect(&sandbox, &[&fixture_arg("valid_reply.eml")]);
    assert_eq!(value["mail_key"], KEY);
    assert_eq!(value["key_source"], "References");
    assert_eq!(value["handler"], "create_note");

    let other_host = inspect(
        &sandbox,
        &["--host", "example.com", &fixture_arg("valid_reply.eml")],
    );
    assert_eq!(other_host["mail_key"], Value::Null);
    assert_eq!(other_host["error"], "unknown_incoming_email");

    // A message to the default address itself.
    let raw = fixture_with(
        "valid_new_issue.eml",
        &[
            ("@appmail.adventuretime.ooo", "@localhost"),
            ("project_id", "7"),
            ("auth_token", "glimt-abc123"),
        ],
    );
    let local = sandbox.run_with_stdin(&["inspect", "-"], &raw).json();
    assert_eq!(local["mail_key"], "gitlabhq-gitlabhq-7-glimt-abc123-issue");
    assert_eq!(local["key_source"], "To");
    assert_eq!(local["handler"], "create_issue");
}

#[test]
fn fixture_bodies_match_gitlab_byte_for_byte() {
    let sandbox = Sandbox::new();
    for name in [
        "html_only.eml",
        "plaintext_only.eml",
        "on_wrote.eml",
        "html_empty_link.eml",
    ] {
        let expected =
            String::from_utf8(read_testdata(&format!("gitlab-emails/{name}.expected.txt")))
                .expect("expected text is UTF-8");
        // GitLab's trimmer, pinned: this compares with GitLab.
        let value = inspect(&sandbox, &["--mode", "gitlab", &fixture_arg(name)]);
        assert_eq!(str_field(&value, "body"), expected, "{name}");
        assert_eq!(value["reply_trimming"], "gitlab");
    }
}

#[test]
fn no_trim_and_append_reply_match_gitlab() {
    let sandbox = Sandbox::new();
    let name = "valid_new_issue_with_quote.eml";
    let expected = |suffix: &str| {
        String::from_utf8(read_testdata(&format!("gitlab-emails/{name}.{suffix}")))
            .expect("expected text is UTF-8")
    };
    let untrimmed = inspect(
        &sandbox,
        &["--mode", "gitlab", "--no-trim", &fixture_arg(name)],
    );
    assert_eq!(
        str_field(&untrimmed, "body"),
        expected("trim_reply_false.expected.txt")
    );
    let appended = inspect(
        &sandbox,
        &["--mode", "gitlab", "--append-reply", &fixture_arg(name)],
    );
    assert_eq!(
        str_field(&appended, "body"),
        expected("append_reply.body.expected.txt")
    );
    assert_eq!(
        str_field(&appended, "elided"),
        expected("append_reply.reply.expected.txt")
    );
}

#[test]
fn automatic_mail_is_recognised() {
    let sandbox = Sandbox::new();
    let value = inspect(&sandbox, &[&fixture_arg("auto_reply.eml")]);
    assert_eq!(value["error"], "auto_generated_email");
    assert_eq!(value["auto_generated"], true);
    assert_eq!(value["auto_generated_reason"], "x_autoreply");
}

#[test]
fn attachments_are_listed() {
    let sandbox = Sandbox::new();
    let value = inspect(&sandbox, &[&fixture_arg("attachment.eml")]);
    let attachments = value["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("attachments is a list: {value:#}"));
    let bricks = attachments
        .iter()
        .find(|a| a["filename"] == "bricks.png")
        .unwrap_or_else(|| panic!("bricks.png is listed: {value:#}"));
    assert_eq!(bricks["content_type"], "image/png");
    assert!(
        bricks["size"].as_u64().is_some_and(|size| size > 0),
        "{bricks}"
    );
}

#[test]
fn quick_actions_are_listed() {
    let sandbox = Sandbox::new();
    let value = inspect(
        &sandbox,
        &["--address", REPLY, &fixture_arg("commands_in_reply.eml")],
    );
    assert_eq!(
        value["quick_actions"],
        json!(["/close", "/todo"]),
        "{value:#}"
    );
    // The body is the reply parser's, before the handlers take the commands out.
    assert_eq!(value["body"], "Cool!\n\n/close\n/todo");
}

#[test]
fn service_desk_mailbox_and_address() {
    let sandbox = Sandbox::new();
    // The Service Desk mailbox: every key is a Service Desk key.
    let raw = String::from_utf8(read_testdata("gitlab-emails/service_desk.eml"))
        .expect("fixture is UTF-8")
        .replace(
            "incoming+email-test-project_id-issue-@appmail.adventuretime.ooo",
            "support+email-test-1-issue-@example.com",
        );
    let path = sandbox.write("sd.eml", raw.as_bytes());
    let path = path.display().to_string();
    let value = inspect(
        &sandbox,
        &[
            "--mailbox",
            "service_desk",
            "--service-desk-address",
            "support+%{key}@example.com",
            &path,
        ],
    );
    assert_eq!(value["handler"], "service_desk");
    assert_eq!(value["mail_key"], "email-test-1-issue-");

    // The same from a configuration file.
    let config = sandbox.write(
        "sd.yml",
        b"service_desk_email:\n  enabled: true\n  address: \"support+%{key}@example.com\"\n",
    );
    let config = config.display().to_string();
    let from_config = inspect(
        &sandbox,
        &["-c", &config, "--mailbox", "service_desk", &path],
    );
    assert_eq!(from_config["handler"], "service_desk");
    assert_eq!(from_config["mail_key"], "email-test-1-issue-");
}

#[test]
fn configuration_supplies_address_and_host() {
    let sandbox = Sandbox::with_config(&format!(
        "incoming_email:\n  enabled: true\n  address: \"{REPLY}\"\ninstance:\n  host: example.com\n"
    ));
    let value = inspect(&sandbox, &[&fixture_arg("valid_reply.eml")]);
    assert_eq!(value["key_source"], "To");
    assert_eq!(value["mail_key"], KEY);
    // Flags win over the configuration.
    let overridden = inspect(
        &sandbox,
        &[
            "--address",
            "other+%{key}@example.org",
            &fixture_arg("valid_reply.eml"),
        ],
    );
    // Neither the address nor the configured host (example.com) finds a key.
    assert_eq!(overridden["mail_key"], Value::Null);
    assert_eq!(overridden["error"], "unknown_incoming_email");
}

#[test]
fn standard_input_gives_the_same_answer_as_the_file() {
    let sandbox = Sandbox::new();
    let raw = read_testdata("gitlab-emails/valid_reply.eml");
    let from_stdin = sandbox
        .run_with_stdin(&["inspect", "--address", REPLY, "-"], &raw)
        .json();
    let from_file = inspect(
        &sandbox,
        &["--address", REPLY, &fixture_arg("valid_reply.eml")],
    );
    assert_eq!(from_stdin, from_file);
    // No argument means standard input too.
    let default = sandbox
        .run_with_stdin(&["inspect", "--address", REPLY], &raw)
        .json();
    assert_eq!(default, from_file);
}

#[test]
fn empty_input_is_an_empty_email() {
    let sandbox = Sandbox::new();
    let value = sandbox.run_with_stdin(&["inspect", "-"], b"").json();
    assert_has_keys(&value, FIELDS);
    assert_eq!(value["error"], "empty_email");
    let blank = sandbox
        .run_with_stdin(&["inspect", "-"], b"\r\n \n\t")
        .json();
    assert_eq!(blank["error"], "empty_email");
}

/// Deterministic bytes of every value, with NULs, bare CRs and invalid UTF-8.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

#[test]
fn any_readable_input_exits_zero_with_json() {
    let sandbox = Sandbox::new();
    let mut inputs: Vec<Vec<u8>> = (1..=4).map(|seed| garbage(seed, 4096)).collect();
    inputs.push(b"\xff\xfe\x00\x00".to_vec());
    inputs.push(b"From: \xff\r\nTo: incoming+\xfe@localhost\r\n\r\n\xc3\x28".to_vec());
    inputs.push(b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--".to_vec());
    inputs.push(b":\n:\n\n".to_vec());
    for (index, input) in inputs.iter().enumerate() {
        let run = sandbox.run_with_stdin(&["inspect", "-"], input);
        assert_eq!(run.code, Some(0), "input {index}: {}", run.stderr);
        let value: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("input {index}: no JSON ({e}): {}", run.stdout));
        assert_has_keys(&value, FIELDS);
    }
    // The same through a file, not only a pipe.
    let path = sandbox.write("garbage.bin", &garbage(9, 10_000));
    inspect(&sandbox, &[&path.display().to_string()]);
}

#[test]
fn missing_file_exits_66_with_one_line() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["inspect", "no-such-message.eml"]);
    let line = run.one_line_error(66);
    assert!(line.contains("no-such-message.eml"), "{line}");
    // A directory is not readable input either.
    let dir = sandbox.path().display().to_string();
    sandbox.run(&["inspect", &dir]).one_line_error(66);
}

#[test]
fn unknown_configuration_key_exits_78_naming_it() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("typo.yml", b"incoming_email:\n  adress: \"x+%{key}@y\"\n");
    let config = config.display().to_string();
    let run = sandbox.run(&["inspect", "-c", &config, &fixture_arg("valid_reply.eml")]);
    let line = run.one_line_error(78);
    assert!(line.contains("adress"), "{line}");
    assert!(line.contains("typo.yml"), "{line}");

    // The same through POSTERN_CONFIG.
    let through_env = Sandbox::with_config("instance:\n  hots: example.com\n");
    let line = through_env
        .run(&["inspect", &fixture_arg("valid_reply.eml")])
        .one_line_error(78)
        .to_owned();
    assert!(line.contains("hots"), "{line}");

    // A missing configuration file is unusable configuration too.
    let run = sandbox.run(&[
        "inspect",
        "-c",
        "nowhere.yml",
        &fixture_arg("valid_reply.eml"),
    ]);
    assert!(run.one_line_error(78).contains("nowhere.yml"));
}

#[test]
fn an_empty_configuration_file_means_the_defaults() {
    let sandbox = Sandbox::with_config("");
    let value = inspect(&sandbox, &[&fixture_arg("valid_reply.eml")]);
    assert_eq!(value["key_source"], "References");
}

#[test]
fn inspect_says_which_trimmer_it_used() {
    let raw = b"From: a@example.com\r\nTo: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\r\n\
                Two findings.\r\n\r\n---\r\n\r\nThe second one is that the export job times out after 300 seconds.\r\n";
    let sandbox = Sandbox::new();
    let default = sandbox.run_with_stdin(&["inspect", "-"], raw).json();
    assert_eq!(default["reply_trimming"], "postern");
    assert!(
        str_field(&default, "body").contains("export job"),
        "{default:#}"
    );
    let gitlab = sandbox
        .run_with_stdin(&["inspect", "--mode", "gitlab", "-"], raw)
        .json();
    assert_eq!(gitlab["reply_trimming"], "gitlab");
    assert_eq!(str_field(&gitlab, "body"), "Two findings.");
    let configured = Sandbox::with_config("reply_trimming: gitlab\n");
    let value = configured.run_with_stdin(&["inspect", "-"], raw).json();
    assert_eq!(value["reply_trimming"], "gitlab");
}
