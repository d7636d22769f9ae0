//! XOAUTH2 against a real Dovecot that validates JWT access tokens locally (its `oauth2`
//! passdb with `introspection_mode = local` and an HS256 key): the watcher logs in with a
//! token from its [`TokenSource`], asks once for a fresh token when the server refuses one,
//! and never shows a token in errors.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_inbox::imap::{self, Auth, ImapError, TokenFuture, TokenSource};
use postern_testkit::mailserver::{MailServer, USER};
use postern_vocab::Secret;
use sha2::{Digest as _, Sha256};

use crate::imap_common;
use crate::imap_common::*;

const KEY: &[u8] = b"postern-test-hmac-key-for-dovecot-oauth2";

/// Standard (padded) or URL-safe unpadded base64.
fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// An HS256 JWT for `sub`, valid for an hour, signed with `key`.
fn jwt(sub: &str, key: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = base64(br#"{"typ":"JWT","alg":"HS256"}"#, true);
    let claims = format!(r#"{{"sub":"{sub}","iat":{now},"exp":{}}}"#, now + 3600);
    let body = base64(claims.as_bytes(), true);
    let signature = base64(
        &hmac_sha256(key, format!("{header}.{body}").as_bytes()),
        true,
    );
    format!("{header}.{body}.{signature}")
}

/// Writes Dovecot's oauth2 passdb file and key under `dir`; returns the extra configuration.
fn oauth2_config(dir: &Path) -> String {
    let keys = dir.join("keys/default/HS256");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("default"), base64(KEY, false)).unwrap();
    let conf = dir.join("dovecot-oauth2.conf.ext");
    std::fs::write(
        &conf,
        format!(
            "introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix={}/keys/\n\
             username_attribute = sub\n",
            dir.display()
        ),
    )
    .unwrap();
    for path in [
        dir.to_path_buf(),
        dir.join("keys"),
        dir.join("keys/default"),
        keys.clone(),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for file in [keys.join("default"), conf.clone()] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    format!(
        "auth_mechanisms = plain login xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        conf.display()
    )
}

/// Hands out a token signed with the wrong key first, and a good one when asked to refresh;
/// records every request.
struct Tokens {
    asked: Mutex<Vec<bool>>,
    good_on_refresh: bool,
}

impl TokenSource for Tokens {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_> {
        self.asked.lock().unwrap().push(refresh);
        let key: &[u8] = if refresh && self.good_on_refresh {
            KEY
        } else {
            b"a-key-the-server-does-not-know"
        };
        let token = jwt(USER, key);
        Box::pin(async move { Ok(Secret::new(token)) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_logs_in_and_asks_once_for_a_fresh_token_after_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = MailServer::start_dovecot_with(&oauth2_config(dir.path())) else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    client
        .append("INBOX", "", &message("oauth", 200))
        .await
        .unwrap();

    let tokens = Arc::new(Tokens {
        asked: Mutex::new(Vec::new()),
        good_on_refresh: true,
    });
    let mut config = config(&server, "inbox");
    config.auth = Auth::XOAuth2 {
        tokens: tokens.clone(),
    };
    let report = imap::check(&config.clone().validate().unwrap())
        .await
        .unwrap();
    assert_eq!(report.messages, 1);
    assert_eq!(*tokens.asked.lock().unwrap(), vec![false, true]);

    let intake = MemoryIntake::new();
    let running = start(config, &intake);
    wait_until(Duration::from_secs(30), "the message taken", || {
        intake.count() == 1
    })
    .await;
    running.shutdown().await;

    // A source whose tokens are never accepted: a clear error, no token in it, and only one
    // retry per login.
    let refused = Arc::new(Tokens {
        asked: Mutex::new(Vec::new()),
        good_on_refresh: false,
    });
    let mut config = imap_common::config(&server, "inbox");
    config.auth = Auth::XOAuth2 {
        tokens: refused.clone(),
    };
    let error = imap::check(&config.validate().unwrap()).await.unwrap_err();
    assert!(matches!(error, ImapError::Auth(_)), "{error}");
    assert!(
        !error.to_string().contains("eyJ"),
        "a token leaked: {error}"
    );
    assert_eq!(*refused.asked.lock().unwrap(), vec![false, true]);
    server.stop().unwrap();
}
