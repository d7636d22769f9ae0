//! New merge request by email, with real git.

use postern_core::{ErrorKind, Outcome};
use postern_git::Identity;
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World, renamed};

const README: &[u8] = b"Sample repo for testing gitlab features\n";

/// The branches GitLab's fixtures expect: `master` with the README the patches change,
/// `feature` (one commit "Feature added", adding the file the conflicting patch creates), and
/// `with-codeowners`.
fn seed(world: &World) -> Result<postern_git::Repository, BoxError> {
    let repository = world.repositories().repository(world.project.id)?;
    let author = Identity::new("Dmitriy Zaporozhets", "dmitriy.zaporozhets@gmail.com");
    repository.commit_files("master", &[("README", README)], "Initial commit", &author)?;
    let master = repository.head_of("master")?.ok_or("master exists")?;
    repository.reset_branch("feature", Some(&master))?;
    repository.reset_branch("with-codeowners", Some(&master))?;
    repository.commit_files(
        "feature",
        &[("files/ruby/feature.rb", b"class Feature\nend\n")],
        "Feature added\n\nSigned-off-by: Dmitriy Zaporozhets <dmitriy.zaporozhets@gmail.com>\n",
        &author,
    )?;
    repository.commit_files(
        "with-codeowners",
        &[("CODEOWNERS", b"* @admin\n")],
        "Add CODEOWNERS",
        &author,
    )?;
    Ok(repository)
}

async fn merge_request(world: &World, iid: i64) -> Result<postern_store::MergeRequest, BoxError> {
    let mut tx = world.store().begin().await?;
    let mr = tx
        .merge_request_by_iid(world.project.id, iid)
        .await?
        .ok_or("merge request exists")?;
    tx.commit().await?;
    Ok(mr)
}

both!(existing_branch_becomes_a_merge_request, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(INCOMING, &world.fixture("valid_new_merge_request.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.source_branch, "feature");
    assert_eq!(mr.target_branch, "master");
    assert_eq!(mr.title, "Feature added");
    assert_eq!(mr.description, "Merge request description");
    assert_eq!(mr.author_id, world.jake.id);
    assert_eq!(mr.commits.len(), 1);

    let legacy_raw = renamed(
        &world.fixture("valid_new_merge_request_legacy.eml", 0),
        "legacy",
    );
    let legacy = world.receive(INCOMING, &legacy_raw).await?;
    assert_eq!(legacy.outcome, Outcome::Processed, "{legacy:?}");
    Ok(())
});

both!(description_falls_back_to_the_commit_body, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_new_merge_request_no_description.eml", 0),
        )
        .await?;
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(
        mr.description,
        "Signed-off-by: Dmitriy Zaporozhets <dmitriy.zaporozhets@gmail.com>"
    );
    Ok(())
});

both!(blank_subject_is_an_invalid_merge_request, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_new_merge_request_no_subject.eml", 0),
        )
        .await?;
    assert_eq!(outcome.error, Some(ErrorKind::InvalidMergeRequest));
    Ok(())
});

both!(one_patch_creates_the_branch_and_its_commit, |db| {
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_merge_request_with_patch.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.source_branch, "new-branch-with-a-patch");
    assert_eq!(mr.commits.len(), 1);
    assert_eq!(mr.commits[0].title, "A commit from a patch");
    assert!(!mr.description.contains("0001-A-commit-from-a-patch.patch"));
    let tip = repository
        .head_of("new-branch-with-a-patch")?
        .ok_or("branch")?;
    assert_eq!(tip, mr.commits[0].sha);
    Ok(())
});

both!(several_patches_apply_in_file_name_order, |db| {
    let world = World::new(db).await?;
    seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("merge_request_multiple_patches.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    let titles: Vec<_> = mr.commits.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "A commit from a patch",
            "This does not apply to the `feature` branch"
        ]
    );
    Ok(())
});

both!(
    conflicting_patch_is_refused_and_leaves_the_repository_alone,
    |db| {
        let world = World::new(db).await?;
        let repository = seed(&world)?;
        let before = repository.branches()?;
        let feature_before = repository.head_of("feature")?;
        let outcome = world
            .receive(
                INCOMING,
                &world.fixture("merge_request_with_conflicting_patch.eml", 0),
            )
            .await?;
        // GitLab appends the patches to the existing `feature` (where they conflict); postern
        // never moves an existing branch, so refuses before git runs.
        assert_eq!(outcome.error, Some(ErrorKind::InvalidMergeRequest));
        let reason = outcome.reason.unwrap_or_default();
        assert!(
            reason.contains("Source branch \"feature\" already exists"),
            "{reason}"
        );
        assert_eq!(repository.branches()?, before);
        assert_eq!(repository.head_of("feature")?, feature_before);
        Ok(())
    }
);

both!(target_branch_quick_action_sets_the_target, |db| {
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("merge_request_with_patch_and_target_branch.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let mr = merge_request(&world, outcome.created.and_then(|c| c.iid).ok_or("iid")?).await?;
    assert_eq!(mr.target_branch, "with-codeowners");
    assert!(
        !mr.description.contains("/target_branch"),
        "{}",
        mr.description
    );
    // The new branch starts from the target branch.
    let base = repository.head_of("with-codeowners")?.ok_or("target")?;
    let commits = repository.commits_between(&base, "new-branch-with-a-patch")?;
    assert_eq!(commits.len(), 1);
    Ok(())
});

/// A mail from jake to his merge request address with `subject`, `body` and `.patch`
/// attachments (name, content).
fn merge_request_mail(
    world: &World,
    subject: &str,
    body: &str,
    patches: &[(&str, &[u8])],
) -> Vec<u8> {
    let to = format!(
        "incoming+gitlabhq-gitlabhq-{}-{}-merge-request@appmail.adventuretime.ooo",
        world.project.id, world.jake.incoming_email_token
    );
    let id: String = subject
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(40)
        .collect();
    crate::support::mail_from_jake_with_attachments(
        &to,
        subject,
        &format!("{id}-{}@test", body.len()),
        body,
        "text/x-patch",
        patches,
    )
}

/// `git format-patch` output with the given diffs.
fn format_patch(diffs: &str) -> Vec<u8> {
    format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: Bomb <bomb@example.com>\n\
         Date: Thu, 18 Oct 2018 13:40:35 +0200\n\
         Subject: [PATCH] Bomb\n\n---\n{diffs}--\n2.47.0\n\n"
    )
    .into_bytes()
}

/// Refs of the repository, to compare before and after.
fn refs(repository: &postern_git::Repository) -> Result<Vec<(String, Option<String>)>, BoxError> {
    let mut refs = Vec::new();
    for branch in repository.branches()? {
        let head = repository.head_of(&branch)?;
        refs.push((branch, head));
    }
    Ok(refs)
}

both!(
    patch_bombs_are_refused_with_a_notice_naming_the_limit,
    |db| {
        let world = World::new(db).await?;
        let repository = seed(&world)?;
        let before = refs(&repository)?;
        let binary = format_patch(
            "diff --git a/bomb.bin b/bomb.bin\nnew file mode 100644\n\
         index 0000000000000000000000000000000000000000..1111111111111111111111111111111111111111\n\
         GIT binary patch\nliteral 1073741824\nzcmeIuAr62b5Cp*e\n\nliteral 0\nHcmV?d00001\n\n",
        );
        let mut files = String::new();
        for i in 0..=postern_git::MAX_PATCH_FILES {
            files.push_str(&format!(
                "diff --git a/f{i} b/f{i}\nnew file mode 100644\nindex 0000000..1111111\n\
             --- /dev/null\n+++ b/f{i}\n@@ -0,0 +1 @@\n+x\n"
            ));
        }
        let files = format_patch(&files);
        let lines = postern_git::MAX_PATCH_LINES;
        let mut long = format!(
            "diff --git a/many b/many\nnew file mode 100644\nindex 0000000..1111111\n\
         --- /dev/null\n+++ b/many\n@@ -0,0 +1,{lines} @@\n"
        );
        long.push_str(&"+\n".repeat(lines));
        let long = format_patch(&long);
        let cases: [(&str, &[u8], &str); 3] = [
            ("binary-bomb", &binary, "declared by one binary patch"),
            ("file-bomb", &files, "files changed by the patches"),
            ("line-bomb", &long, "lines in the patches"),
        ];
        for (branch, patch, names) in &cases {
            let mail = merge_request_mail(
                &world,
                branch,
                "Please merge",
                &[("0001-bomb.patch", patch)],
            );
            let started = std::time::Instant::now();
            let outcome = world.receive(INCOMING, &mail).await?;
            let elapsed = started.elapsed();
            // Generous: the refusal is decided by one pass over at most 2 MiB.
            assert!(
                elapsed < std::time::Duration::from_secs(10),
                "{branch}: {elapsed:?}"
            );
            assert_eq!(outcome.outcome, Outcome::Rejected, "{outcome:?}");
            assert_eq!(outcome.error, Some(ErrorKind::LimitExceeded), "{outcome:?}");
            // One notice per sender within the window: the first refusal sends it.
            assert_eq!(
                outcome.reject_notice_queued,
                *branch == "binary-bomb",
                "{outcome:?}"
            );
            let reason = outcome.reason.unwrap_or_default();
            assert!(
            reason.starts_with(&format!("Could not apply patches to {branch}:\nThe patches are over a limit of postern: at most ")),
            "{reason}"
        );
            assert!(reason.ends_with(names), "{reason}");
            assert_eq!(refs(&repository)?, before, "{branch}");
        }
        // The binary bomb's reason names the per-hunk limit, not the size it declared.
        let reason_of = |outcome: postern_core::ReceiveOutcome| outcome.reason.unwrap_or_default();
        let again = merge_request_mail(
            &world,
            "binary-bomb-2",
            "Again",
            &[("0001-bomb.patch", &binary)],
        );
        let reason = reason_of(world.receive(INCOMING, &again).await?);
        assert!(
            reason.ends_with(&format!(
                "at most {} bytes declared by one binary patch",
                postern_git::MAX_BINARY_HUNK_BYTES
            )),
            "{reason}"
        );
        Ok(())
    }
);

both!(invalid_target_branch_is_refused_for_good, |db| {
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let before = refs(&repository)?;
    // Without patches: the existing `feature` branch, and a target git cannot name.
    let mail = merge_request_mail(&world, "feature", "Merge it\n\n/target_branch a..b", &[]);
    let outcome = world.receive(INCOMING, &mail).await?;
    assert_eq!(outcome.outcome, Outcome::Rejected, "{outcome:?}");
    assert_eq!(
        outcome.error,
        Some(ErrorKind::InvalidMergeRequest),
        "{outcome:?}"
    );
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .ends_with("- Target branch \"a..b\" does not exist"),
        "{outcome:?}"
    );
    assert!(outcome.reject_notice_queued);

    // With a patch for a new branch: GitLab's create-branch error.
    let patches =
        postern_testkit::fixtures::gitlab_email_with("valid_merge_request_with_patch.eml", &[]);
    let patch = patch_attachment(&patches)?;
    let mail = merge_request_mail(
        &world,
        "new-branch",
        "/target_branch a..b",
        &[("0001-A-commit-from-a-patch.patch", &patch)],
    );
    let outcome = world.receive(INCOMING, &mail).await?;
    assert_eq!(
        outcome.error,
        Some(ErrorKind::InvalidAttachment),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "Could not apply patches to new-branch:\nFailed to create branch 'new-branch': invalid reference name 'a..b'"
        )
    );

    // A source branch name no file system can store is invalid, not a temporary failure.
    let long = "x".repeat(300);
    let mail = merge_request_mail(
        &world,
        &long,
        "Merge",
        &[("0001-A-commit-from-a-patch.patch", &patch)],
    );
    let outcome = world.receive(INCOMING, &mail).await?;
    assert_eq!(
        outcome.error,
        Some(ErrorKind::InvalidMergeRequest),
        "{outcome:?}"
    );
    assert_eq!(refs(&repository)?, before);
    Ok(())
});

/// The `.patch` attachment of a fixture mail, decoded.
fn patch_attachment(raw: &[u8]) -> Result<Vec<u8>, BoxError> {
    let email = postern_mail::Email::parse(raw);
    let attachments = postern_mail::attachments(&email);
    let patch = postern_mail::patches(&attachments)
        .into_iter()
        .next()
        .ok_or("the fixture has a patch")?;
    Ok(patch.content.to_vec())
}

both!(git_am_runs_outside_the_write_transaction, |db| {
    use std::time::Duration;
    let world = World::new(db).await?;
    let repository = seed(&world)?;
    let dir = world.data.path();
    let (started, go) = (dir.join("am-started"), dir.join("am-go"));
    // A git that, for `am`, says it started and waits (at most 30 s) to be let go.
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = am ]; then touch '{started}'; i=0; \
         while [ ! -e '{go}' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; break; fi; done\n\
         exec git \"$@\"\n",
        started = started.display(),
        go = go.display(),
    );
    let wrapper = dir.join("waiting-git");
    // Written by a child process: a file this process held open for writing could be
    // inherited by another test's fork and make executing it fail with "text file busy".
    let status = std::process::Command::new("sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\" && chmod +x \"$2\"", "sh"])
        .arg(&script)
        .arg(&wrapper)
        .status()?;
    assert!(status.success());
    let processor = postern_core::Processor::new(
        world.store().clone(),
        world.repositories().with_git_binary(&wrapper),
        world.config(INCOMING),
    );
    let raw = world.fixture("valid_merge_request_with_patch.eml", 0);
    let receiving = tokio::spawn(async move {
        processor
            .receive(
                &raw,
                postern_store::Mailbox::Incoming,
                postern_store::InboundSource::Pipe,
                None,
            )
            .await
    });
    for _ in 0..300 {
        if started.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.exists(), "git am started");

    // While git am runs, the store takes writes.
    let write = async {
        let mut tx = world.store().begin().await?;
        tx.create_user(postern_store::NewUser::new(
            "finn",
            "Finn",
            "finn@adventuretime.ooo",
        ))
        .await?;
        tx.commit().await?;
        Ok::<_, BoxError>(())
    };
    let written = tokio::time::timeout(Duration::from_secs(10), write).await;
    std::fs::write(&go, b"")?;
    written.map_err(|_| "the write transaction waited for git am")??;

    let outcome = receiving.await??;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert!(repository.branch_exists("new-branch-with-a-patch")?);
    Ok(())
});
