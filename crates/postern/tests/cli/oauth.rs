//! `postern oauth login`: the device flow against a local stand-in for Google's endpoints
//! (postern_testkit::oauth), which answers "pending", then "slow down", then the tokens. The
//! refresh token ends up in the data directory, readable by its owner only, and no secret is
//! printed. Then `serve` signing in to Dovecot (whose `oauth2` passdb asks the stand-in about
//! each token) with that refresh token, and with the rotated one after a restart.

use std::os::unix::fs::PermissionsExt as _;

use postern_testkit::mailserver::{MailServer, USER};
use postern_testkit::oauth::OAuthStandIn;

use crate::sources::{
    assert_exactly_once, free_port, new_issue, preload, preload_messages, project, runtime, serve,
    serve_log, stop, wait_for_issues,
};
use crate::support::Sandbox;

const CLIENT: &str = "1234-postern.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-cli-Secret_value";

#[test]
fn oauth_login_saves_a_private_refresh_token_in_the_data_directory() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the stand-in");
    let stand_in = runtime.block_on(OAuthStandIn::start(CLIENT, SECRET));
    let sandbox = Sandbox::with_config(&format!(
        "incoming_email:\n  enabled: true\n  address: \"in+%{{key}}@example.test\"\n  \
         user: device-user@example.test\n  auth_method: oauthbearer\n  inbox_options:\n    \
         oauth_grant: refresh_token\n    client_id: \"{CLIENT}\"\n    client_secret: \"{SECRET}\"\n    \
         token_url: \"{}\"\n    device_authorization_url: \"{}\"\n",
        stand_in.token_url(),
        stand_in.device_url()
    ));
    let run = sandbox.run(&["oauth", "login", "--provider", "google"]);
    run.expect_code(0);
    let out = run.all_output();
    assert!(out.contains("enter the code WDJB-MJHT"), "{out}");
    assert!(!out.contains(SECRET), "{out}");

    let file = sandbox
        .path()
        .join("postern-data/oauth/incoming_email.refresh-token");
    let token = std::fs::read_to_string(&file).expect("the refresh token file");
    assert!(stand_in.refresh_token_valid(token.trim()));
    assert!(
        !out.contains(token.trim()),
        "the token is not printed: {out}"
    );
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let answers: Vec<String> = stand_in.polls().into_iter().map(|p| p.answer).collect();
    assert_eq!(answers, ["authorization_pending", "slow_down", "ok"]);
    assert_eq!(stand_in.polls_too_fast(), 0);
}

#[test]
fn oauth_login_without_a_client_id_names_the_key() {
    let sandbox = Sandbox::with_config(
        "incoming_email:\n  enabled: true\n  address: \"in+%{key}@example.test\"\n  \
         inbox_options:\n    oauth_grant: refresh_token\n",
    );
    let run = sandbox.run(&["oauth", "login", "--provider", "microsoft"]);
    run.expect_code(78);
    assert!(
        run.all_output()
            .contains("incoming_email.inbox_options.client_id"),
        "{}",
        run.all_output()
    );
}

/// Dovecot's `oauth2` passdb asking the stand-in's introspection endpoint about each token.
fn introspecting_dovecot(dir: &std::path::Path, stand_in: &OAuthStandIn) -> Option<MailServer> {
    std::fs::create_dir_all(dir).expect("directory");
    for path in [dir.parent().expect("parent"), dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let conf = dir.join("dovecot-oauth2.conf.ext");
    std::fs::write(
        &conf,
        format!(
            "introspection_mode = post\nintrospection_url = {}\nforce_introspection = yes\n\
             username_attribute = email\nactive_attribute = active\nactive_value = true\n",
            stand_in.introspection_url()
        ),
    )
    .expect("oauth2 configuration");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    MailServer::start_dovecot_with(&format!(
        "auth_mechanisms = plain login xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        conf.display()
    ))
}

/// `serve` with `oauth_grant: refresh_token` against Dovecot: the token saved by a login is used,
/// the provider rotates it, and the next `serve` (a restart) signs in with the rotated one.
#[test]
fn serve_signs_in_with_the_refresh_token_and_keeps_its_rotation_across_a_restart() {
    let rt = runtime();
    let stand_in = rt.block_on(OAuthStandIn::start(CLIENT, SECRET));
    stand_in.rotate_refresh_tokens();
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(server) = introspecting_dovecot(&dir.path().join("dovecot"), &stand_in) else {
        return;
    };
    let config = format!(
        "incoming_email:\n  enabled: true\n  address: \"incoming+%{{key}}@example.test\"\n  \
         user: {USER}\n  host: 127.0.0.1\n  port: {}\n  ssl: false\n  start_tls: false\n  \
         allow_plaintext: true\n  mailbox: \"oauth\"\n  idle_timeout: 60\n  \
         delete_after_delivery: true\n  auth_method: oauthbearer\n  inbox_options:\n    \
         oauth_grant: refresh_token\n    client_id: \"{CLIENT}\"\n    client_secret: \"{SECRET}\"\n    \
         token_url: \"{}\"\n    device_authorization_url: \"{}\"\n\
         instance:\n  host: example.test\n\
         listener:\n  listen: \"127.0.0.1:{}\"\n\
         web:\n  listen: \"127.0.0.1:{}\"\n",
        server.imap_port(),
        stand_in.token_url(),
        stand_in.device_url(),
        free_port(),
        free_port(),
    );
    let sandbox = Sandbox::with_config(&config);
    let to = project(&sandbox);
    // What `postern oauth login` leaves: the token in the data directory, mode 0600.
    let first = stand_in.issue_refresh_token(USER);
    let file = sandbox
        .path()
        .join("postern-data/oauth/incoming_email.refresh-token");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("oauth directory");
    std::fs::write(&file, format!("{first}\n")).expect("token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let mut sent = rt.block_on(preload(&server, "oauth", &to, 2));
    let child = serve(&sandbox);
    assert_exactly_once(&wait_for_issues(&sandbox, 2), &sent);
    stop(child);
    let second = std::fs::read_to_string(&file).expect("token file");
    let second = second.trim().to_owned();
    assert_ne!(second, first, "the rotated token was saved");
    assert!(stand_in.refresh_token_valid(&second));
    assert!(
        !stand_in.refresh_token_valid(&first),
        "the first is revoked"
    );
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A restart: only the rotated token can sign in now.
    sent.extend(rt.block_on(preload_messages(&server, "oauth", 1, |title| {
        new_issue(&to, &format!("after-restart-{title}"))
    })));
    let sent: Vec<String> = sent
        .into_iter()
        .enumerate()
        .map(|(n, title)| {
            if n < 2 {
                title
            } else {
                format!("after-restart-{title}")
            }
        })
        .collect();
    let child = serve(&sandbox);
    assert_exactly_once(&wait_for_issues(&sandbox, 3), &sent);
    stop(child);
    assert!(
        stand_in.refresh_token_valid(std::fs::read_to_string(&file).expect("token file").trim())
    );
    let grants = stand_in.grants();
    assert!(
        grants.len() >= 2 && grants.iter().all(|g| g == "refresh_token"),
        "{grants:?}"
    );
    assert!(!serve_log(&sandbox).contains(SECRET));
    let _ = server.stop();
}
