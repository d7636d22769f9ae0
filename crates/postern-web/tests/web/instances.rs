//! Several instances on one PostgreSQL store, each with a data directory of its own: an
//! attachment that came in through one is served by the web UI of every other, under the same
//! access rules. On SQLite (one machine) it is a file of the instance that received it.

use axum::http::StatusCode;
use postern_core::Outcome;
use postern_store::{Backend, Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

/// Bytes 0 to 255 in base64: an attachment that only survives byte for byte.
const EVERY_BYTE_BASE64: &str = "\
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n\
OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\n\
cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq\r\n\
q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj\r\n\
5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==\r\n";

/// Every file below `directory`, recursively (a missing directory has none).
fn files_below(directory: &std::path::Path) -> usize {
    let mut count = 0;
    let mut pending = vec![directory.to_owned()];
    // Bounded: a test's data directory holds a handful of entries.
    for _ in 0..1000 {
        let Some(next) = pending.pop() else {
            break;
        };
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

both!(
    an_attachment_received_by_one_instance_is_served_by_another,
    |db| {
        let a = Web::new(db).await?;
        let b = a.another_instance().await?;
        let alice = a.user("alice", false).await?;
        a.user("eve", false).await?;
        let project = a.project("p", Visibility::Private).await?;
        a.member(&project, &alice, Role::Developer).await?;

        // Into instance A: a new issue by mail, with a binary attachment.
        let plain = a.new_issue_mail(&project, &alice, "with attachment", "");
        let (headers, _) = plain
            .split_once("Content-Type: text/plain")
            .ok_or("the mail has a Content-Type")?;
        let mail = format!(
            "{headers}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe bytes, attached.\r\n\
         --b\r\nContent-Type: application/octet-stream; name=\"bytes.bin\"\r\n\
         Content-Disposition: attachment; filename=\"bytes.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{EVERY_BYTE_BASE64}--b--\r\n"
        );
        let outcome = a.receive(&mail).await?;
        assert!(matches!(outcome.outcome, Outcome::Processed), "{outcome:?}");
        let mut tx = a.store().begin_read_only().await?;
        let uploads = tx.uploads_for_project(project.id).await?;
        tx.rollback().await?;
        let [upload] = &uploads[..] else {
            return Err(format!("one upload, not {uploads:?}").into());
        };
        let url = format!("/uploads/{}/{}", upload.file.secret, upload.file.filename);
        let every_byte: Vec<u8> = (0..=255).collect();

        // Instance A serves it, as before.
        let alice_a = a.login("alice").await?;
        let from_a = a.get(&url, alice_a.cookie()).await;
        assert_eq!(from_a.status, StatusCode::OK);
        assert_eq!(&from_a.bytes[..], &every_byte[..]);

        let alice_b = b.login("alice").await?;
        let from_b = b.get(&url, alice_b.cookie()).await;
        match b.store().backend() {
            Backend::Postgres => {
                // Instance B, whose data directory never saw the mail, serves the same bytes, to
                // the same people only; neither instance wrote an upload file.
                assert_eq!(from_b.status, StatusCode::OK);
                assert_eq!(&from_b.bytes[..], &every_byte[..]);
                assert_eq!(
                    from_b.header("content-disposition"),
                    "attachment; filename=\"bytes.bin\""
                );
                let eve = b.login("eve").await?;
                for cookie in [eve.cookie(), None] {
                    let refused = b.get(&url, cookie).await;
                    assert_ne!(refused.status, StatusCode::OK);
                    assert_ne!(&refused.bytes[..], &every_byte[..]);
                }
                for instance in [&a, &b] {
                    assert_eq!(files_below(&instance.data.path().join("uploads")), 0);
                }
            }
            Backend::Sqlite => {
                // One machine: the file is instance A's.
                assert_eq!(files_below(&a.data.path().join("uploads")), 1);
                assert_eq!(from_b.status, StatusCode::NOT_FOUND);
            }
        }
        Ok(())
    }
);
