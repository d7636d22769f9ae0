//! Tests of the configuration file's reading and defaults.

use super::*;

#[test]
fn the_shipped_example_uses_only_known_keys() {
    let example = include_str!("../../../dist/postern.example.yml");
    let config = Config::parse(example).expect("dist/postern.example.yml parses");
    assert!(config.incoming_email.is_some() && config.log.is_some());
}

#[test]
fn unknown_keys_are_named() {
    let error = Config::parse("incoming_email:\n  adress: x\n").expect_err("typo must fail");
    assert!(format!("{error:#}").contains("adress"), "{error:#}");
}

#[test]
fn errors_quote_no_line_of_the_file() {
    let text = "incoming_email:\n  password: \"hunter2\"\n  adress: x\n";
    let error = Config::parse(text).expect_err("typo must fail");
    let message = format!("{error:#}");
    assert!(message.contains("adress"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn gitlab_section_is_accepted_verbatim() {
    let text = r#"
incoming_email:
  enabled: true
  address: "gitlab-incoming+%{key}@gmail.com"
  user: "gitlab-incoming@gmail.com"
  password: "[REDACTED]"
  host: "imap.gmail.com"
  port: 993
  ssl: true
  start_tls: false
  mailbox: "inbox"
  idle_timeout: 60
  log_path: "log/mail_room_json.log"
  expunge_deleted: false
  delete_after_delivery: true
  inbox_method: "microsoft_graph"
  inbox_options:
    tenant_id: "t"
    client_id: "c"
    client_secret: "s"
    poll_interval: 60
instance:
  host: gitlab.example.com
"#;
    let config = Config::parse(text).expect("valid");
    assert_eq!(
        config.incoming_address().as_deref(),
        Some("gitlab-incoming+%{key}@gmail.com")
    );
    assert_eq!(config.host(), "gitlab.example.com");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("[REDACTED]") && !debug.contains("\"s\""),
        "{debug}"
    );
}

#[test]
fn mail_room_log_path_is_accepted_and_ignored() {
    let config = Config::parse("incoming_email:\n  log_path: log/mail_room_json.log\n")
        .expect("log_path is part of a pasted gitlab.yml section");
    assert!(config.incoming_email.is_some());
}

#[test]
fn gitlab_delivery_keys_are_refused_with_the_way_to_companion_mode() {
    for line in [
        "delivery_method: webhook",
        "gitlab_url: https://gitlab.example.com",
        "secret_file: /etc/gitlab/.gitlab_mailroom_secret",
        "auth_token:\n    secret: webhook-S3CRET",
        "public_key_files: [a.pem]",
    ] {
        let text = format!("incoming_email:\n  address: a+%{{key}}@b\n  {line}\n");
        let error = Config::parse(&text).expect_err(line);
        let message = format!("{error:#}");
        assert!(message.contains("--gitlab-config"), "{line}: {message}");
        let key = line.split(':').next().unwrap_or_default();
        assert!(message.contains(key), "{line}: {message}");
        assert!(!message.contains("S3CRET"), "{message}");
    }
}

#[test]
fn encrypted_secret_file_is_refused() {
    let text = "service_desk_email:\n  encrypted_secret_file: x.yaml.enc\n";
    let message = format!("{:#}", Config::parse(text).expect_err("refused"));
    assert!(message.contains("encrypted"), "{message}");
    assert!(message.contains("password"), "{message}");
}

#[test]
fn empty_file_means_embedded_defaults() {
    let config = Config::parse("").expect("empty is fine");
    assert_eq!(
        config.incoming_address().as_deref(),
        Some(DEFAULT_INCOMING_ADDRESS)
    );
    assert_eq!(config.host(), DEFAULT_HOST);
}

#[test]
fn a_section_reads_into_the_typed_mailbox_model_with_defaults() {
    let text = r#"
incoming_email:
  enabled: true
  address: "in+%{key}@example.com"
  user: in@example.com
  password: "p"
  host: imap.example.com
  ssl: true
service_desk_email:
  enabled: true
  address: "desk+%{key}@example.com"
  user: desk@example.com
  inbox_method: microsoft_graph
  inbox_options:
    tenant_id: "t"
    client_id: "c"
    client_secret: "s"
    page_size: 10
"#;
    let config = Config::parse(text).expect("valid");
    let incoming = config
        .incoming_email
        .as_ref()
        .expect("section")
        .settings(postern_store::Mailbox::Incoming);
    assert!(incoming.enabled && incoming.ssl && !incoming.start_tls);
    assert_eq!(incoming.port, 993, "implicit TLS defaults to 993");
    assert_eq!(incoming.folder, "inbox");
    assert_eq!(incoming.idle_timeout, 60);
    assert!(incoming.delete_after_delivery && !incoming.expunge_deleted);
    assert!(
        !incoming.allow_plaintext,
        "postern.yml must ask for plaintext"
    );
    assert_eq!(incoming.inbox_method, InboxMethod::Imap);
    assert_eq!(incoming.password.as_ref().map(Secret::expose), Some("p"));

    let desk = config
        .service_desk_email
        .as_ref()
        .expect("section")
        .settings(postern_store::Mailbox::ServiceDesk);
    assert_eq!(desk.mailbox, postern_store::Mailbox::ServiceDesk);
    assert_eq!(desk.inbox_method, InboxMethod::MicrosoftGraph);
    assert_eq!(desk.port, 143);
    let graph = desk.inbox_options.expect("options");
    assert_eq!(graph.tenant_id.as_deref(), Some("t"));
    assert_eq!(graph.poll_interval, 60);
    assert_eq!(graph.azure_ad_endpoint, "https://login.microsoftonline.com");
    assert_eq!(graph.graph_endpoint, "https://graph.microsoft.com");
    assert_eq!(graph.page_size, Some(10));
}

#[test]
fn an_unknown_inbox_method_is_refused_when_read() {
    let text = "incoming_email:\n  inbox_method: pop3\n";
    let error = format!("{:#}", Config::parse(text).expect_err("refused"));
    assert!(
        error.contains("pop3") && error.contains("microsoft_graph"),
        "{error}"
    );
}
