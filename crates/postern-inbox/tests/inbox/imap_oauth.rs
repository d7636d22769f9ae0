//! OAuth for IMAP beyond Azure client credentials, against a real Dovecot whose `oauth2` passdb
//! asks a local introspection endpoint about every token, and a local stand-in for Google's
//! token endpoint (postern_testkit::oauth) that checks what Google checks: a refresh token
//! (rotated on every use, the rotation kept in a 0600 file across a restart of the watcher),
//! a service account's RS256 assertion, and the device flow's pace.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use postern_inbox::imap::{self, Auth, ImapError};
use postern_inbox::oauth::device::DeviceLogin;
use postern_inbox::oauth::{Grant, RefreshTokenFile, ServiceAccount, TokenSource};
use postern_testkit::mailserver::{MailServer, USER};
use postern_testkit::oauth::{MAIL_SCOPE, OAuthStandIn};
use postern_vocab::Secret;
use reqwest::Url;

use crate::imap_common;
use crate::imap_common::*;

const CLIENT: &str = "1234-postern.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-client-Secret_value";

/// Dovecot's `oauth2` passdb asking `introspection_url` (POST `token=…`) about each token.
fn introspection_config(dir: &Path, stand_in: &OAuthStandIn) -> String {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(parent) = dir.parent() {
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
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
    .unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    format!(
        "auth_mechanisms = plain login xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        conf.display()
    )
}

fn refresh_source(stand_in: &OAuthStandIn, file: &Path) -> TokenSource {
    TokenSource::with_grant(
        postern_inbox::http::client(None).unwrap(),
        Url::parse(&stand_in.token_url()).unwrap(),
        Grant::RefreshToken {
            client_id: CLIENT.to_owned(),
            client_secret: Some(Secret::new(SECRET)),
            scope: None,
            store: RefreshTokenFile::load(file).unwrap(),
        },
    )
}

fn saved(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_kept_across_a_restart() {
    let stand_in = OAuthStandIn::start(CLIENT, SECRET).await;
    stand_in.rotate_refresh_tokens();
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = MailServer::start_dovecot_with(&introspection_config(
        &dir.path().join("dovecot"),
        &stand_in,
    )) else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    client
        .append("INBOX", "", &message("first", 200))
        .await
        .unwrap();

    // What `postern oauth login` leaves behind.
    let first = stand_in.issue_refresh_token(USER);
    let file = dir.path().join("data/oauth/incoming_email.refresh-token");
    RefreshTokenFile::create(&file, &Secret::new(&first)).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");

    let intake = MemoryIntake::new();
    let mut config = config(&server, "inbox");
    config.auth = Auth::OAuthBearer {
        tokens: Arc::new(refresh_source(&stand_in, &file)),
    };
    let running = start(config, &intake);
    wait_until(Duration::from_secs(30), "the first message", || {
        intake.count() == 1
    })
    .await;
    running.shutdown().await;

    let second = saved(&file);
    assert_ne!(second, first, "the rotated token replaced the first");
    assert!(
        !stand_in.refresh_token_valid(&first),
        "the first is revoked"
    );
    assert!(stand_in.refresh_token_valid(&second));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "still private after the rewrite");

    // A new watcher (as after a restart of postern) reads the rotated token from the file: the
    // first one would be refused now. XOAUTH2 this time, against the same passdb.
    client
        .append("INBOX", "", &message("second", 200))
        .await
        .unwrap();
    let mut config = imap_common::config(&server, "inbox");
    config.auth = Auth::XOAuth2 {
        tokens: Arc::new(refresh_source(&stand_in, &file)),
    };
    let running = start(config, &intake);
    wait_until(Duration::from_secs(30), "the second message", || {
        intake.count() == 2
    })
    .await;
    running.shutdown().await;
    assert!(stand_in.refresh_token_valid(&saved(&file)));
    assert_ne!(saved(&file), second, "rotated again");
    assert_eq!(stand_in.grants(), vec!["refresh_token", "refresh_token"]);
    assert_eq!(
        stand_in.introspections(),
        vec![true, true],
        "Dovecot asked about each login's token"
    );
    server.stop().unwrap();
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

/// A service account key file (Google's JSON shape) with a new RSA key; returns its path and
/// the public key (PEM).
fn service_account_file(dir: &Path, email: &str, token_uri: &str) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join(format!("{email}.key.pem"));
    let public = dir.join(format!("{email}.pub.pem"));
    let key_arg = key.display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &key_arg,
    ]);
    openssl(&[
        "pkey",
        "-in",
        &key_arg,
        "-pubout",
        "-out",
        &public.display().to_string(),
    ]);
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "postern-test",
        "private_key_id": "0123abcd",
        "private_key": std::fs::read_to_string(&key).unwrap(),
        "client_email": email,
        "client_id": "1000001",
        "token_uri": token_uri,
    });
    let path = dir.join(format!("{email}.json"));
    std::fs::write(&path, json.to_string()).unwrap();
    (path, std::fs::read(&public).unwrap())
}

fn service_account_source(file: &Path) -> TokenSource {
    let (account, token_uri) = ServiceAccount::load(file, USER, MAIL_SCOPE).unwrap();
    TokenSource::with_grant(
        postern_inbox::http::client(None).unwrap(),
        Url::parse(&token_uri.unwrap()).unwrap(),
        Grant::ServiceAccount(account),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_logs_in_for_a_user_of_its_domain() {
    let stand_in = OAuthStandIn::start(CLIENT, SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let email = "postern@postern-test.iam.gserviceaccount.com";
    let (file, public) = service_account_file(dir.path(), email, &stand_in.token_url());
    stand_in.add_service_account(email, &public);
    let Some(server) = MailServer::start_dovecot_with(&introspection_config(
        &dir.path().join("dovecot"),
        &stand_in,
    )) else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    client
        .append("INBOX", "", &message("delegated", 200))
        .await
        .unwrap();

    let mut config = config(&server, "inbox");
    config.auth = Auth::OAuthBearer {
        tokens: Arc::new(service_account_source(&file)),
    };
    let report = imap::check(&config.validate().unwrap()).await.unwrap();
    assert_eq!(report.messages, 1);
    assert_eq!(stand_in.grants(), vec!["service_account"]);

    // The same account name with a key Google does not know: the signature is refused.
    let other = dir.path().join("impostor");
    std::fs::create_dir(&other).unwrap();
    let (impostor, _) = service_account_file(&other, "impostor", &stand_in.token_url());
    let text = std::fs::read_to_string(&impostor)
        .unwrap()
        .replace("\"impostor\"", &format!("\"{email}\""));
    std::fs::write(&impostor, text).unwrap();
    let mut config = imap_common::config(&server, "inbox");
    config.auth = Auth::OAuthBearer {
        tokens: Arc::new(service_account_source(&impostor)),
    };
    let error = imap::check(&config.validate().unwrap()).await.unwrap_err();
    assert!(matches!(error, ImapError::Auth(_)), "{error}");
    assert!(error.to_string().contains("invalid_grant"), "{error}");
    assert_eq!(
        stand_in.grants(),
        vec!["service_account"],
        "no token issued"
    );
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_waits_while_pending_and_slows_down_when_asked() {
    let stand_in = OAuthStandIn::start(CLIENT, SECRET).await;
    let http = postern_inbox::http::client(None).unwrap();
    let login = DeviceLogin {
        device_url: Url::parse(&stand_in.device_url()).unwrap(),
        token_url: Url::parse(&stand_in.token_url()).unwrap(),
        client_id: CLIENT.to_owned(),
        client_secret: Some(Secret::new(SECRET)),
        scope: MAIL_SCOPE.to_owned(),
    };
    let code = login.start(&http).await.unwrap();
    assert_eq!(code.user_code, "WDJB-MJHT");
    assert!(code.verification_uri.ends_with("/device"));
    let approved = tokio::time::timeout(Duration::from_secs(60), login.finish(&http, code))
        .await
        .expect("the flow ends within its bound")
        .unwrap();
    assert!(stand_in.refresh_token_valid(approved.refresh_token.expose()));

    let polls = stand_in.polls();
    let answers: Vec<&str> = polls.iter().map(|p| p.answer.as_str()).collect();
    assert_eq!(answers, ["authorization_pending", "slow_down", "ok"]);
    assert_eq!(stand_in.polls_too_fast(), 0, "the interval was honoured");
    let after_slow_down = polls[2].at - polls[1].at;
    assert!(
        after_slow_down >= Duration::from_secs(6),
        "slow_down adds 5 s to the 1 s interval: {after_slow_down:?}"
    );

    let wrong = DeviceLogin {
        client_secret: Some(Secret::new("not-the-secret")),
        ..login
    };
    let error = wrong.start(&http).await.unwrap_err().to_string();
    assert!(error.contains("invalid_client"), "{error}");
    assert!(!error.contains("not-the-secret"), "{error}");
}
