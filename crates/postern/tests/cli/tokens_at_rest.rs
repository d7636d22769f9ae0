//! Incoming-email tokens at rest, through the binary: the database never holds a token, what it
//! does hold works as no token, and a copy of the database without the data directory's key
//! file can neither show nor use one; `admin backup` / `restore` carry the key along.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, fixture_with, renamed};

const PROJECT: &str = "gitlabhq/gitlabhq";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of the SQLite database of `data_dir`, its write-ahead log included.
fn database_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["postern.sqlite3", "postern.sqlite3-wal"] {
        if let Ok(more) = std::fs::read(data_dir.join(name)) {
            bytes.extend(more);
        }
    }
    assert!(!bytes.is_empty(), "no database in {}", data_dir.display());
    bytes
}

/// Jake's row as the database holds it: (hash, sealed).
fn stored_token(data_dir: &Path) -> (String, String) {
    let url = format!("sqlite://{}/postern.sqlite3", data_dir.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url)
            .await
            .expect("open database");
        let row: (String, String) = sqlx::query_as(
            "SELECT incoming_email_token_hash, incoming_email_token_sealed FROM users
             WHERE username = 'jake'",
        )
        .fetch_one(&pool)
        .await
        .expect("jake's row");
        pool.close().await;
        row
    })
}

fn new_issue_mail(world: &Walkthrough, token: &str) -> Vec<u8> {
    let id = world.project_id.to_string();
    fixture_with(
        "valid_new_issue.eml",
        &[("project_id", &id), ("auth_token", token)],
    )
}

#[test]
fn the_database_alone_holds_no_usable_token() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let data_dir = sandbox.path().join("postern-data");
    let shown = sandbox.admin_text(&["project", "show", PROJECT, "--user", "jake"]);
    assert!(shown.contains(&world.token), "{shown}");

    let key = data_dir.join("secrets/token.key");
    let mode = std::fs::metadata(&key).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let key_bytes = std::fs::read(&key).expect("key file");
    assert_eq!(key_bytes.len(), 32);

    let database = database_bytes(&data_dir);
    assert!(
        !contains(&database, world.token.as_bytes()),
        "token in the database"
    );
    let random_part = world.token.trim_start_matches("glimt-");
    assert!(!contains(&database, random_part.as_bytes()));
    assert!(!contains(&database, &key_bytes), "key in the database");

    // What the row holds is no token.
    let (hash, sealed) = stored_token(&data_dir);
    for (tag, taken) in [("hash", &hash), ("sealed", &sealed)] {
        let refused = sandbox.receive(&renamed(&new_issue_mail(&world, taken), tag));
        assert_eq!(refused["outcome"], "rejected", "{refused:#}");
        assert_eq!(refused["error"], "user_not_found", "{refused:#}");
    }
    let opened = sandbox.receive(&world.fixture("valid_new_issue.eml"));
    assert_eq!(opened["outcome"], "processed", "{opened:#}");

    // A copy of the database in another data directory gets a new key, which opens nothing:
    // every command refuses, naming the key file and never printing a key.
    sandbox
        .run(&["admin", "backup", "copy.sqlite3"])
        .expect_code(0);
    let thief = Sandbox::with_config(WALKTHROUGH_CONFIG);
    std::fs::create_dir_all(thief.path().join("postern-data")).expect("data directory");
    std::fs::copy(
        sandbox.path().join("copy.sqlite3"),
        thief.path().join("postern-data/postern.sqlite3"),
    )
    .expect("copy the database only");
    let refused = thief.run_with_stdin(&["receive"], &world.fixture("valid_new_issue.eml"));
    let line = refused.one_line_error(78);
    assert!(line.contains("secrets/token.key"), "{line}");
    assert!(line.contains("not sealed with the key"), "{line}");
    let refused = thief.run(&["admin", "project", "show", PROJECT, "--user", "jake"]);
    assert!(refused.one_line_error(78).contains("secrets/token.key"));
    let thief_key = std::fs::read(thief.path().join("postern-data/secrets/token.key"))
        .expect("a new key was made");
    assert_ne!(thief_key, key_bytes);
    let printed = thief.transcript();
    assert!(!printed.contains(&world.token), "{printed}");

    // The backup carries the key: restored elsewhere with it, everything works.
    let copy = sandbox.path().join("copy.sqlite3.token-key");
    let mode = std::fs::metadata(&copy).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let heir = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let backup = sandbox.path().join("copy.sqlite3").display().to_string();
    heir.run(&["admin", "restore", &backup]).expect_code(0);
    let shown = heir.admin_text(&["project", "show", PROJECT, "--user", "jake"]);
    assert!(shown.contains(&world.token), "{shown}");
    let opened = heir.receive(&renamed(&world.fixture("valid_new_issue.eml"), "heir"));
    assert_eq!(opened["outcome"], "processed", "{opened:#}");
}
