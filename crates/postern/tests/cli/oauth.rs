//! `postern oauth login`: the device flow against a local stand-in for Google's endpoints
//! (postern_testkit::oauth), which answers "pending", then "slow down", then the tokens. The
//! refresh token ends up in the data directory, readable by its owner only, and no secret is
//! printed.

use std::os::unix::fs::PermissionsExt as _;

use postern_testkit::oauth::OAuthStandIn;

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
