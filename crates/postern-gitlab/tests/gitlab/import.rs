//! Configuration import: the seed's Postfix, Gmail, Microsoft 365 and Graph examples in the
//! gitlab.yml, gitlab.rb and mail_room.yml forms all give the same neutral settings with
//! GitLab's defaults; bad input is refused with the key or line and never echoes a secret.

use std::path::{Path, PathBuf};

use postern_gitlab::{
    ConfigFormat, DeliveryMethod, GitlabMailboxes, ImportError, InboxMethod, MailboxSettings,
    WebhookSecret, import, load,
};
use postern_store::Mailbox;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn incoming(config: &GitlabMailboxes) -> &MailboxSettings {
    config.incoming.as_ref().expect("an incoming_email section")
}

/// What every IMAP example shares, whatever the form.
fn assert_imap(m: &MailboxSettings, address: &str, user: &str, host: &str, port: u16, ssl: bool) {
    assert!(m.enabled);
    assert!(m.is_active());
    assert_eq!(m.mailbox, Mailbox::Incoming);
    assert_eq!(m.address.as_deref(), Some(address));
    assert_eq!(m.user.as_deref(), Some(user));
    assert_eq!(m.password.as_ref().map(|p| p.expose()), Some("[REDACTED]"));
    assert_eq!(m.host.as_deref(), Some(host));
    assert_eq!(m.port, port);
    assert_eq!(m.ssl, ssl);
    assert!(!m.start_tls);
    assert_eq!(m.folder, "inbox");
    assert_eq!(m.inbox_method, InboxMethod::Imap);
}

#[test]
fn postfix_in_gitlab_yml() {
    let c = load(&testdata("postfix/config/gitlab.yml")).expect("import");
    assert_eq!(c.format, ConfigFormat::GitlabYml);
    let m = incoming(&c);
    assert_imap(
        m,
        "incoming+%{key}@gitlab.example.com",
        "incoming",
        "gitlab.example.com",
        143,
        false,
    );
    assert_eq!(m.idle_timeout, 60);
    assert!(m.expunge_deleted);
    // GitLab's defaults for what the example leaves out.
    assert!(m.delete_after_delivery);
    assert_eq!(m.delivery_method, DeliveryMethod::Sidekiq);
    assert!(c.service_desk.is_none());
    assert_eq!(c.redis.url.expose(), "redis://localhost:6379");
    assert_eq!(c.redis.queue, "default");
    // GitLab's default assumed, not named; Sidekiq delivery needs it all the same.
    assert!(!c.redis.configured);
    assert!(c.arbitration_redis().is_some());
}

#[test]
fn postfix_in_gitlab_rb() {
    let c = load(&testdata("postfix.gitlab.rb")).expect("import");
    assert_eq!(c.format, ConfigFormat::GitlabRb);
    let m = incoming(&c);
    assert_imap(
        m,
        "incoming+%{key}@gitlab.example.com",
        "incoming",
        "gitlab.example.com",
        143,
        false,
    );
    assert_eq!(m.idle_timeout, 60);
    assert!(m.expunge_deleted);
    // Omnibus defaults: webhook delivery, its log file, its secret file, its Redis socket.
    assert_eq!(m.delivery_method, DeliveryMethod::Webhook);
    assert_eq!(
        m.log_path.as_deref(),
        Some(Path::new("/var/log/gitlab/mailroom/mail_room_json.log"))
    );
    assert!(matches!(m.secret, Some(WebhookSecret::File(_))));
    assert_eq!(
        c.redis.url.expose(),
        "unix:///var/opt/gitlab/redis/redis.socket"
    );
    // The bundled Redis is not on this machine: not GitLab's for sure, no arbitration.
    assert!(!Path::new("/var/opt/gitlab/redis/redis.socket").exists());
    assert!(c.arbitration_redis().is_none());
}

#[test]
fn postfix_in_mail_room_yml() {
    let c = load(&testdata("mail_room/postfix-webhook.yml")).expect("import");
    assert_eq!(c.format, ConfigFormat::MailRoomYml);
    let m = incoming(&c);
    assert_eq!(m.user.as_deref(), Some("incoming"));
    assert_eq!(m.host.as_deref(), Some("gitlab.example.com"));
    assert_eq!((m.port, m.ssl, m.idle_timeout), (143, false, 60));
    assert!(m.delete_after_delivery && m.expunge_deleted);
    assert_eq!(m.delivery_method, DeliveryMethod::Webhook);
    assert_eq!(m.gitlab_url.as_deref(), Some("https://gitlab.example.com"));
    assert_eq!(
        m.secret,
        Some(WebhookSecret::File(
            "/home/git/gitlab/.gitlab_mailroom_secret".into()
        ))
    );
    assert_eq!(
        m.log_path.as_deref(),
        Some(Path::new("/home/git/gitlab/log/mail_room_json.log"))
    );
    assert_eq!(c.active().count(), 1);
}

#[test]
fn gmail_in_gitlab_yml_with_resque_yml() {
    let c = load(&testdata("gmail/config/gitlab.yml")).expect("import");
    let m = incoming(&c);
    assert_imap(
        m,
        "gitlab-incoming+%{key}@gmail.com",
        "gitlab-incoming@gmail.com",
        "imap.gmail.com",
        993,
        true,
    );
    // The queues Redis comes from the sibling resque.yml, as Rails reads it.
    assert_eq!(
        c.redis.url.expose(),
        "redis://:s3cret@redis.example.com:6380"
    );
    assert_eq!(c.redis.db, Some(2));
    assert!(c.redis.configured);
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "Debug must not show the Redis password"
    );
}

#[test]
fn gmail_in_gitlab_rb() {
    let c = load(&testdata("gmail.gitlab.rb")).expect("import");
    let m = incoming(&c);
    assert_imap(
        m,
        "gitlab-incoming+%{key}@gmail.com",
        "gitlab-incoming@gmail.com",
        "imap.gmail.com",
        993,
        true,
    );
    assert!(m.expunge_deleted);
}

#[test]
fn gmail_in_mail_room_yml_with_sidekiq_and_service_desk() {
    let c = load(&testdata("mail_room/gmail-sidekiq.yml")).expect("import");
    let m = incoming(&c);
    assert_eq!(m.delivery_method, DeliveryMethod::Sidekiq);
    assert_eq!(m.user.as_deref(), Some("gitlab-incoming@gmail.com"));
    let sd = c.service_desk.as_ref().expect("service desk entry");
    assert_eq!(sd.user.as_deref(), Some("gitlab-servicedesk@gmail.com"));
    assert_eq!(sd.mailbox, Mailbox::ServiceDesk);
    // mail_room's own default for an entry that leaves it out.
    assert!(!sd.delete_after_delivery);
    assert_eq!(c.redis.url.expose(), "redis://localhost:6379");
    assert_eq!(c.redis.queue, "default");
    assert_eq!(c.active().count(), 2);
}

#[test]
fn office365_in_both_gitlab_forms() {
    let rb = load(&testdata("office365.gitlab.rb")).expect("import");
    assert_imap(
        incoming(&rb),
        "incoming+%{key}@office365.example.com",
        "incoming@office365.example.com",
        "outlook.office365.com",
        993,
        true,
    );
    let yml = load(&testdata("office365/config/gitlab.yml")).expect("import");
    // The page's source-install example has the ".comm" typo; it is read as written.
    assert_imap(
        incoming(&yml),
        "incoming+%{key}@office365.example.comm",
        "incoming@office365.example.comm",
        "outlook.office365.com",
        993,
        true,
    );
    // Keys the examples leave out get GitLab's defaults.
    for m in [incoming(&rb), incoming(&yml)] {
        assert_eq!(m.idle_timeout, 60);
        assert!(m.delete_after_delivery);
        assert!(!m.expunge_deleted);
    }
}

#[test]
fn graph_in_gitlab_rb_and_gitlab_yml() {
    let rb = load(&testdata("graph.gitlab.rb")).expect("import");
    let m = incoming(&rb);
    assert_eq!(m.inbox_method, InboxMethod::MicrosoftGraph);
    let g = m.inbox_options.as_ref().expect("inbox_options");
    assert_eq!(g.tenant_id.as_deref(), Some("<YOUR-TENANT-ID>"));
    assert_eq!(g.client_id.as_deref(), Some("<YOUR-CLIENT-ID>"));
    assert_eq!(
        g.client_secret.as_ref().map(|s| s.expose()),
        Some("<YOUR-CLIENT-SECRET>")
    );
    assert_eq!(g.poll_interval, 60);
    assert_eq!(g.azure_ad_endpoint, "https://login.microsoftonline.com");
    assert_eq!(g.graph_endpoint, "https://graph.microsoft.com");
    assert!(!format!("{rb:?}").contains("YOUR-CLIENT-SECRET"));

    let gov = load(&testdata("graph-us-gov.gitlab.rb")).expect("import");
    let g = incoming(&gov).inbox_options.clone().expect("inbox_options");
    assert_eq!(g.azure_ad_endpoint, "https://login.microsoftonline.us");
    assert_eq!(g.graph_endpoint, "https://graph.microsoft.us");

    let yml = load(&testdata("graph/config/gitlab.yml")).expect("import");
    let m = incoming(&yml);
    assert_eq!(m.inbox_method, InboxMethod::MicrosoftGraph);
    assert_eq!(
        m.inbox_options.as_ref().map(|g| g.graph_endpoint.as_str()),
        Some("https://graph.microsoft.us")
    );
    assert!(!m.delete_after_delivery);
    assert_eq!(
        yml.gitlab_url.as_deref(),
        Some("https://gitlab.example.com")
    );
    assert_eq!(yml.gitlab_host.as_deref(), Some("gitlab.example.com"));
    // Relative secret_file is resolved against the Rails root (the parent of config/).
    assert_eq!(
        m.secret,
        Some(WebhookSecret::File(testdata(
            "graph/.gitlab_mailroom_secret"
        )))
    );
}

fn parse_rb(text: &str) -> Result<GitlabMailboxes, ImportError> {
    import::parse(
        text,
        ConfigFormat::GitlabRb,
        "gitlab.rb",
        Path::new("/etc/gitlab"),
    )
}

fn parse_yml(text: &str) -> Result<GitlabMailboxes, ImportError> {
    import::parse(
        text,
        ConfigFormat::GitlabYml,
        "gitlab.yml",
        Path::new("/home/git/gitlab/config"),
    )
}

#[test]
fn gitlab_rb_refuses_expressions_naming_the_line_and_not_the_value() {
    let text = "external_url 'https://gitlab.example.com'\n\ngitlab_rails['incoming_email_password'] = ENV['IMAP_PASSWORD']\n";
    let e = parse_rb(text).expect_err("an expression");
    assert!(matches!(e, ImportError::Ruby { line: 3, .. }), "{e:?}");
    assert!(e.to_string().contains("line 3"), "{e}");

    let e = parse_rb("gitlab_rails['incoming_email_passwrd'] = 'hunter2'\n").expect_err("a typo");
    assert!(e.to_string().contains("incoming_email_passwrd"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");

    // Unrelated Ruby is ignored; external_url gives GitLab's URL and host.
    let c = parse_rb("external_url 'https://gitlab.example.com'\nnginx['x'] = File.read('/y')\ngitlab_rails['incoming_email_enabled'] = true\ngitlab_rails['incoming_email_address'] = \"in+%{key}@example.com\"\n").expect("import");
    assert_eq!(c.gitlab_url.as_deref(), Some("https://gitlab.example.com"));
    assert_eq!(c.gitlab_host.as_deref(), Some("gitlab.example.com"));
    assert!(incoming(&c).is_active());
}

#[test]
fn gitlab_rb_auth_token_and_redis_host() {
    let c = parse_rb("gitlab_rails['incoming_email_auth_token'] = 'AAAA'\ngitlab_rails['redis_host'] = 'redis.internal'\ngitlab_rails['redis_password'] = 'p@ss:word'\ngitlab_rails['redis_database'] = 3\n").expect("import");
    assert!(matches!(
        incoming(&c).secret,
        Some(WebhookSecret::Inline(_))
    ));
    assert_eq!(
        c.redis.url.expose(),
        "redis://:p%40ss%3Aword@redis.internal:6379"
    );
    assert_eq!(c.redis.db, Some(3));
    assert!(c.arbitration_redis().is_some());
}

#[test]
fn mail_room_yml_arbitration_names_gitlabs_redis() {
    let text = "---\n:mailboxes:\n  -\n    :host: \"imap.example.com\"\n    :email: \"incoming\"\n    \
                :name: \"inbox\"\n    :delivery_method: postback\n    :delivery_options:\n      \
                :delivery_url: \"https://gitlab.example.com/api/v4/internal/mail_room/incoming_email\"\n    \
                :arbitration_method: \"redis\"\n    :arbitration_options:\n      \
                :redis_url: \"redis://redis.internal:6379\"\n      :namespace: \"mail_room:gitlab\"\n";
    let c = import::parse(
        text,
        ConfigFormat::MailRoomYml,
        "mail_room.yml",
        Path::new("/home/git/gitlab/config"),
    )
    .expect("import");
    let redis = c
        .arbitration_redis()
        .expect("arbitration through GitLab's Redis");
    assert_eq!(redis.url.expose(), "redis://redis.internal:6379");
    assert_eq!(redis.namespace.as_deref(), Some("mail_room:gitlab"));
    // Without it, mail_room.yml names no Redis for webhook delivery.
    let plain = load(&testdata("mail_room/postfix-webhook.yml")).expect("import");
    assert!(plain.arbitration_redis().is_none());
}

#[test]
fn yaml_with_erb_is_refused_with_its_line() {
    let e = parse_yml("production:\n  incoming_email:\n    password: <%= ENV['X'] %>\n")
        .expect_err("ERB");
    assert_eq!(
        e,
        ImportError::Erb {
            path: "gitlab.yml".to_owned(),
            line: 3
        }
    );
}

#[test]
fn gitlab_yml_unknown_keys_and_wrong_types_are_named() {
    let e = parse_yml("production:\n  incoming_email:\n    enabled: true\n    mailbx: inbox\n")
        .expect_err("typo");
    assert!(
        e.to_string().contains("production.incoming_email.mailbx"),
        "{e}"
    );
    let e = parse_yml("production:\n  incoming_email:\n    port: imap\n").expect_err("type");
    assert!(
        e.to_string().contains("production.incoming_email.port"),
        "{e}"
    );
    let e = parse_yml("development:\n  incoming_email: {}\n").expect_err("no production");
    assert!(e.to_string().contains("production"), "{e}");
    // A mailbox without an address is not active (GitLab's enabled check).
    let c = parse_yml("production:\n  incoming_email:\n    enabled: true\n").expect("import");
    assert_eq!(c.active().count(), 0);
}

#[test]
fn mail_room_yml_needs_to_know_the_mailbox() {
    let text = ":mailboxes:\n  - :email: a\n    :password: b\n    :name: inbox\n    :delivery_method: postback\n    :delivery_options:\n      :delivery_url: https://x/hook\n";
    let e = import::parse(
        text,
        ConfigFormat::MailRoomYml,
        "mail_room.yml",
        Path::new("/"),
    )
    .expect_err("unknown mailbox");
    assert!(e.to_string().contains("which GitLab mailbox"), "{e}");
    let text = ":mailboxes:\n  - :email: a\n    :delivery_method: logger\n    :delivery_options:\n      :delivery_url: https://x/api/v4/internal/mail_room/incoming_email\n";
    let e = import::parse(
        text,
        ConfigFormat::MailRoomYml,
        "mail_room.yml",
        Path::new("/"),
    )
    .expect_err("logger");
    assert!(e.to_string().contains("delivery_method"), "{e}");
}
