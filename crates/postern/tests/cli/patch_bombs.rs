//! Merge requests by email that would make git write or allocate without bound, or that name a
//! branch git cannot have, through `postern receive`: refused for good (exit 0, never 75) with a
//! notice, no branch created, in bounded time.

use std::time::{Duration, Instant};

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, str_field};

/// Generous: the refusal is one pass over the patch, before git runs.
const BOUND: Duration = Duration::from_secs(10);

/// A mail from jake to his merge request address for `branch` with one `.patch` attachment.
fn merge_request_mail(world: &Walkthrough, branch: &str, patch: &str) -> Vec<u8> {
    format!(
        "From: Jake the Dog <jake@adventuretime.ooo>\r\n\
         To: incoming+gitlabhq-gitlabhq-{}-{}-merge-request@appmail.adventuretime.ooo\r\n\
         Subject: {branch}\r\nMessage-ID: <{branch}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nPlease merge.\r\n\
         --b\r\nContent-Type: text/x-patch\r\n\
         Content-Disposition: attachment; filename=\"0001-{branch}.patch\"\r\n\r\n{patch}\r\n--b--\r\n",
        world.project_id, world.token
    )
    .into_bytes()
}

/// `git format-patch` output around `diffs`.
fn format_patch(diffs: &str) -> String {
    format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\r\n\
         From: Bomb <bomb@example.com>\r\nDate: Thu, 18 Oct 2018 13:40:35 +0200\r\n\
         Subject: [PATCH] Bomb\r\n\r\n---\r\n{diffs}--\r\n2.47.0\r\n"
    )
}

fn branches(sandbox: &Sandbox, world: &Walkthrough) -> String {
    let repository = sandbox.path().join(format!(
        "postern-data/repositories/{}.git",
        world.project_id
    ));
    if !repository.exists() {
        return String::new();
    }
    sandbox.git(&repository, &["for-each-ref", "refs/heads/"])
}

#[test]
fn patch_bombs_are_refused_with_a_notice_naming_the_limit() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let binary = format_patch(
        "diff --git a/bomb.bin b/bomb.bin\r\nnew file mode 100644\r\n\
         index 0000000000000000000000000000000000000000..1111111111111111111111111111111111111111\r\n\
         GIT binary patch\r\nliteral 1073741824\r\nzcmeIuAr62b5Cp*e\r\n\r\nliteral 0\r\nHcmV?d00001\r\n\r\n",
    );
    let mut long = "diff --git a/many b/many\r\nnew file mode 100644\r\n\
                    --- /dev/null\r\n+++ b/many\r\n@@ -0,0 +1,300000 @@\r\n"
        .to_owned();
    long.push_str(&"+\r\n".repeat(300_000));
    let long = format_patch(&long);
    for (branch, patch, limit) in [
        ("binary-bomb", &binary, "bytes declared by one binary patch"),
        ("line-bomb", &long, "lines in the patches"),
    ] {
        let started = Instant::now();
        let outcome = sandbox.receive(&merge_request_mail(&world, branch, patch));
        assert!(
            started.elapsed() < BOUND,
            "{branch}: {:?}",
            started.elapsed()
        );
        assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
        assert_eq!(outcome["error"], "limit_exceeded", "{outcome:#}");
        let reason = str_field(&outcome, "reason");
        assert!(
            reason.starts_with(&format!("Could not apply patches to {branch}:\n")),
            "{reason}"
        );
        assert!(reason.ends_with(limit), "{reason}");
        assert!(
            !reason.contains("postern-data"),
            "no path in the notice: {reason}"
        );
    }
    assert_eq!(branches(&sandbox, &world), "", "no branch created");
    let notices = sandbox.admin_json(&["outbox", "list"]);
    let keys: Vec<&str> = notices
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|n| n["dedupe_key"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        keys.iter().any(|key| key.contains(":limit_exceeded:")),
        "a reject notice: {notices:#}"
    );
}

#[test]
fn an_invalid_target_branch_is_refused_not_retried() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let mail = String::from_utf8(world.fixture("merge_request_with_patch_and_target_branch.eml"))
        .expect("UTF-8 fixture")
        .replace("/target_branch with-codeowners", "/target_branch a..b");
    let outcome = sandbox.receive(mail.as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "invalid_attachment", "{outcome:#}");
    assert_eq!(
        str_field(&outcome, "reason"),
        "Could not apply patches to new-branch-with-a-patch:\n\
         Failed to create branch 'new-branch-with-a-patch': invalid reference name 'a..b'"
    );
    assert_eq!(branches(&sandbox, &world), "");
}
