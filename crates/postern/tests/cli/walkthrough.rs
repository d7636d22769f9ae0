//! The README's "a first instance, from the shell", step by step: users, a project, mail in
//! through `receive`, results through `admin` — on SQLite, and once on PostgreSQL.

use std::path::Path;

use serde_json::Value;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, int_field, renamed, str_field};

/// GitLab's shared-context reply key, in `valid_reply.eml`.
const FIXTURE_KEY: &str = "59d8df8370b7e95c5a49fbf86aeb2c93";
/// The README the fixtures' patches apply to (GitLab's test repository).
const README: &str = "Sample repo for testing gitlab features\n";

/// The whole walkthrough; every assertion names the step.
fn walkthrough(sandbox: &Sandbox) {
    let world = Walkthrough::set_up(sandbox);
    let id = world.project_id;
    let jake = sandbox.admin_json(&["user", "list"]);
    let jake_id = jake[0]["id"].clone();
    assert_eq!(jake[0]["username"], "jake", "{jake:#}");

    // `admin user token jake` prints the token alone (the README captures it with `$(…)`).
    assert_eq!(
        sandbox.admin_text(&["user", "token", "jake"]).trim_end(),
        world.token
    );

    // `project show --user jake`: jake's addresses and the bare repository.
    let show = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq", "--user", "jake"]);
    let new_issue = format!(
        "incoming+gitlabhq-gitlabhq-{id}-{}-issue@appmail.adventuretime.ooo",
        world.token
    );
    let new_mr = format!(
        "incoming+gitlabhq-gitlabhq-{id}-{}-merge-request@appmail.adventuretime.ooo",
        world.token
    );
    assert_eq!(
        show["addresses"]["new_issue"],
        new_issue.as_str(),
        "{show:#}"
    );
    assert_eq!(show["addresses"]["new_merge_request"], new_mr.as_str());
    assert_eq!(show["addresses"]["service_desk"], Value::Null);
    assert_eq!(show["default_branch"], "master");
    assert_eq!(show["members"][0]["username"], "jake");
    assert_eq!(show["members"][0]["role"], "developer");
    let repository = str_field(&show, "repository").to_owned();
    assert!(Path::new(&repository).is_absolute(), "{repository}");
    assert!(
        Path::new(&repository).join("HEAD").is_file(),
        "{repository}"
    );
    // The README reads the id with `sed -n 's/^  "id": \([0-9]*\),/\1/p'`.
    let pretty = sandbox
        .run(&["admin", "project", "show", "gitlabhq/gitlabhq", "--json"])
        .stdout;
    let ids: Vec<&str> = pretty
        .lines()
        .filter_map(|line| line.strip_prefix("  \"id\": "))
        .collect();
    assert_eq!(ids, [format!("{id},")], "{pretty}");
    let human = sandbox.admin_text(&["project", "show", "gitlabhq/gitlabhq", "--user", "jake"]);
    assert!(
        human.contains(&format!("new issue: {new_issue}")),
        "{human}"
    );
    assert!(human.contains("member: jake (developer)"), "{human}");

    // New issue by email, to the address `project show` printed.
    let issue_mail = world.fixture("valid_new_issue.eml");
    assert!(String::from_utf8_lossy(&issue_mail).contains(&format!("To: {new_issue}")));
    let created = sandbox.receive(&issue_mail);
    assert_eq!(created["outcome"], "processed", "new issue: {created:#}");
    assert_eq!(created["created"]["type"], "issue");
    assert_eq!(created["created"]["iid"], 1);
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(issue["title"], "New Issue by email", "{issue:#}");
    assert_eq!(issue["author_id"], jake_id);
    assert_eq!(issue["issue_type"], "issue");
    assert!(
        str_field(&issue, "description").contains("reply by email functionality"),
        "{issue:#}"
    );
    let human = sandbox.admin_text(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert!(human.contains("title: New Issue by email"), "{human}");

    // Reply by email: a notification's reply address, and a reply to it.
    let notification =
        sandbox.admin_json(&["notification", "add", "gitlabhq/gitlabhq", "1", "jake"]);
    let key = str_field(&notification, "reply_key").to_owned();
    let reply_address = str_field(&notification, "reply_address").to_owned();
    assert_eq!(
        reply_address,
        format!("incoming+{key}@appmail.adventuretime.ooo")
    );
    assert_eq!(
        notification["references"],
        format!("<reply-{key}@localhost>")
    );
    let human = sandbox.admin_text(&["notification", "add", "gitlabhq/gitlabhq", "1", "jake"]);
    assert!(human.contains("reply address: incoming+"), "{human}");
    let reply = reply_mail(&reply_address, &key);
    let note = sandbox.receive(&reply);
    assert_eq!(note["outcome"], "processed", "reply: {note:#}");
    assert_eq!(note["handler"], "create_note");
    assert_eq!(note["created"]["type"], "note");
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    let notes = issue["notes"].as_array().cloned().unwrap_or_default();
    assert_eq!(notes.len(), 1, "{issue:#}");
    assert_eq!(notes[0]["author_id"], jake_id);
    assert_eq!(notes[0]["id"], note["created"]["note_id"]);
    assert!(
        str_field(&notes[0], "body").starts_with("I could not disagree more."),
        "{issue:#}"
    );
    // The same reply delivered again changes nothing.
    let again = sandbox.receive(&reply);
    assert_eq!(again["outcome"], "duplicate", "{again:#}");
    assert_eq!(again["first_outcome"], "processed");
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(issue["notes"].as_array().map(Vec::len), Some(1));

    // New merge request by email: branches pushed with the real git.
    let work = sandbox.path().join("work");
    std::fs::create_dir(&work).expect("work directory");
    sandbox.git(&work, &["init", "--quiet", "--initial-branch", "master"]);
    std::fs::write(work.join("README"), README).expect("README");
    sandbox.git(&work, &["add", "README"]);
    sandbox.git(&work, &["commit", "--quiet", "-m", "Initial commit"]);
    sandbox.git(&work, &["push", "--quiet", &repository, "HEAD:master"]);
    sandbox.git(&work, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(work.join("feature.rb"), "class Feature\nend\n").expect("feature.rb");
    sandbox.git(&work, &["add", "feature.rb"]);
    sandbox.git(
        &work,
        &[
            "commit",
            "--quiet",
            "-m",
            "Feature added",
            "-m",
            "Signed-off-by: Jake",
        ],
    );
    sandbox.git(&work, &["push", "--quiet", &repository, "feature"]);
    let feature_sha = sandbox
        .git(&work, &["rev-parse", "feature"])
        .trim()
        .to_owned();

    let mr_mail = world.fixture("valid_new_merge_request.eml");
    assert!(String::from_utf8_lossy(&mr_mail).contains(&format!("To: {new_mr}")));
    let mr = sandbox.receive(&mr_mail);
    assert_eq!(mr["outcome"], "processed", "new merge request: {mr:#}");
    assert_eq!(mr["created"]["type"], "merge_request");
    assert_eq!(mr["created"]["iid"], 1);
    let shown = sandbox.admin_json(&["mr", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(shown["source_branch"], "feature", "{shown:#}");
    assert_eq!(shown["target_branch"], "master");
    assert_eq!(shown["title"], "Feature added");
    assert_eq!(shown["description"], "Merge request description");
    assert_eq!(shown["author_id"], jake_id);
    assert_eq!(
        shown["commits"].as_array().map(Vec::len),
        Some(1),
        "{shown:#}"
    );
    assert_eq!(shown["commits"][0]["sha"], feature_sha.as_str());

    // A patch by mail becomes a new branch that git can fetch back.
    let patch_mail = world.fixture("valid_merge_request_with_patch.eml");
    let patched = sandbox.receive(&patch_mail);
    assert_eq!(patched["outcome"], "processed", "patch: {patched:#}");
    let shown = sandbox.admin_json(&["mr", "show", "gitlabhq/gitlabhq", "2"]);
    assert_eq!(
        shown["source_branch"], "new-branch-with-a-patch",
        "{shown:#}"
    );
    assert_eq!(shown["commits"][0]["title"], "A commit from a patch");
    sandbox.git(
        &work,
        &["fetch", "--quiet", &repository, "new-branch-with-a-patch"],
    );
    let readme = sandbox.git(&work, &["show", "FETCH_HEAD:README"]);
    assert!(readme.contains("This was applied in a patch!"), "{readme}");
    let human = sandbox.admin_text(&["mr", "show", "gitlabhq/gitlabhq", "1"]);
    assert!(
        human.contains(&format!("commit {feature_sha} Jake the Dog")),
        "{human}"
    );
    let mrs = sandbox.admin_json(&["mr", "list", "gitlabhq/gitlabhq"]);
    assert_eq!(mrs.as_array().map(Vec::len), Some(2), "{mrs:#}");

    // Service Desk: enable, then anyone's mail to the printed address is a ticket.
    let enabled = sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    assert_eq!(enabled["service_desk"]["enabled"], true, "{enabled:#}");
    let service_desk = format!("incoming+gitlabhq-gitlabhq-{id}-issue-@appmail.adventuretime.ooo");
    assert_eq!(enabled["addresses"]["service_desk"], service_desk.as_str());
    let fixture_address = format!("incoming+email-test-{id}-issue-@appmail.adventuretime.ooo");
    let to_service_desk = |name: &str| {
        String::from_utf8_lossy(&world.fixture(name))
            .replace(&fixture_address, &service_desk)
            .into_bytes()
    };
    let ticket = sandbox.receive(&to_service_desk("service_desk.eml"));
    assert_eq!(ticket["outcome"], "processed", "service desk: {ticket:#}");
    assert_eq!(ticket["handler"], "service_desk");
    assert_eq!(ticket["created"]["type"], "ticket");
    let ticket_iid = int_field(&ticket["created"], "iid").to_string();
    let shown = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", &ticket_iid]);
    assert_eq!(shown["issue_type"], "ticket", "{shown:#}");
    assert_eq!(shown["title"], "The message subject! @all");
    assert_eq!(shown["confidential"], true);
    assert_eq!(shown["external_author"], "jake@adventuretime.ooo");
    // A reply whose In-Reply-To names the ticket's first message joins it when it comes from
    // a participant (GitLab's fixture answers from alan@, who is none: here jake@ answers).
    let from_jake = String::from_utf8_lossy(&to_service_desk("service_desk_reply.eml"))
        .replace("<alan@adventuretime.ooo>", "<jake@adventuretime.ooo>");
    let joined = sandbox.receive(from_jake.as_bytes());
    assert_eq!(
        joined["outcome"], "processed",
        "service desk reply: {joined:#}"
    );
    assert_eq!(joined["created"]["type"], "note");
    let shown = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", &ticket_iid]);
    assert_eq!(
        shown["notes"].as_array().map(Vec::len),
        Some(1),
        "{shown:#}"
    );
    assert_eq!(
        shown["notes"][0]["body"],
        "Service desk reply!\n\n`/label ~label2`"
    );
    assert_eq!(
        shown["notes"][0]["external_author"],
        "jake@adventuretime.ooo"
    );

    // The inbound log: refused, fixed, processed again.
    let from_elsewhere = renamed(
        &String::from_utf8_lossy(&reply)
            .replace(
                "From: Jake the Dog <jake@adventuretime.ooo>",
                "From: Jake the Dog <jake@elsewhere.example>",
            )
            .into_bytes(),
        "elsewhere",
    );
    let refused = sandbox.receive(&from_elsewhere);
    assert_eq!(refused["outcome"], "rejected", "{refused:#}");
    assert_eq!(refused["error"], "user_not_found");
    let refused_id = int_field(&refused, "inbound_id").to_string();
    let rejected = sandbox.admin_json(&["message", "list", "--state", "rejected"]);
    assert_eq!(rejected.as_array().map(Vec::len), Some(1), "{rejected:#}");
    assert_eq!(rejected[0]["id"], refused["inbound_id"]);
    sandbox.admin_json(&[
        "user",
        "email",
        "add",
        "jake",
        "jake@elsewhere.example",
        "--verified",
    ]);
    let reprocessed = sandbox.admin_json(&["message", "reprocess", &refused_id]);
    assert_eq!(reprocessed["outcome"], "processed", "{reprocessed:#}");
    assert_eq!(reprocessed["created"]["type"], "note");
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(
        issue["notes"].as_array().map(Vec::len),
        Some(2),
        "{issue:#}"
    );
    // Processing a processed message again would duplicate its effect: it is refused.
    let human = sandbox.admin_text(&["message", "reprocess", &refused_id]);
    assert_eq!(human, format!("message {refused_id}: duplicate\n"));
    let rejected = sandbox.admin_json(&["message", "list", "--state", "rejected"]);
    assert_eq!(rejected, Value::Array(Vec::new()));

    // Every message is kept, newest first, byte for byte.
    let all = sandbox.admin_json(&["message", "list"]);
    let all = all.as_array().cloned().unwrap_or_default();
    // issue, reply (twice: one record), MR, patch MR, ticket, ticket reply, refused reply.
    assert_eq!(all.len(), 7, "{all:#?}");
    let ids: Vec<i64> = all.iter().map(|m| int_field(m, "id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let patch_id = all
        .iter()
        .find(|m| m["handler"] == "create_merge_request" && m["id"] == patched["inbound_id"])
        .map(|m| int_field(m, "id").to_string())
        .unwrap_or_else(|| panic!("the patch mail is listed: {all:#?}"));
    let raw = sandbox.run(&["admin", "message", "show", &patch_id, "--raw"]);
    raw.expect_code(0);
    assert_eq!(
        raw.stdout_bytes, patch_mail,
        "--raw is the message byte for byte"
    );
    let raw_json = sandbox.run(&["admin", "message", "show", &patch_id, "--raw", "--json"]);
    raw_json.expect_code(0);
    assert_eq!(raw_json.stdout_bytes, patch_mail, "--raw wins over --json");
    let record = sandbox.admin_json(&["message", "show", &patch_id]);
    assert_eq!(record["id"], patched["inbound_id"], "{record:#}");
    let human = sandbox.admin_text(&["message", "show", &patch_id]);
    assert!(human.contains("state: processed"), "{human}");
    assert!(human.contains("handler: create_merge_request"), "{human}");
}

/// `valid_reply.eml` answering the notification whose key and address `admin notification add`
/// printed.
fn reply_mail(address: &str, key: &str) -> Vec<u8> {
    String::from_utf8_lossy(&crate::support::read_testdata(
        "gitlab-emails/valid_reply.eml",
    ))
    .replace(
        &format!("reply+{FIXTURE_KEY}@appmail.adventuretime.ooo"),
        address,
    )
    .replace(FIXTURE_KEY, key)
    .into_bytes()
}

#[test]
fn readme_walkthrough_on_sqlite() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    walkthrough(&sandbox);
    assert!(
        sandbox
            .path()
            .join("postern-data/postern.sqlite3")
            .is_file()
    );
}

#[test]
fn readme_walkthrough_on_postgresql() {
    let admin_url = match postern_testkit::pg::shared_admin_url() {
        postern_testkit::pg::PgChoice::Skip => {
            eprintln!("POSTERN_SKIP_PG=1: skipping the walkthrough on PostgreSQL");
            return;
        }
        postern_testkit::pg::PgChoice::Url(url) => url,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to create the test database");
    let url = runtime.block_on(postern_testkit::create_database(&admin_url));
    // The private server trusts loopback, so a password in the URL is accepted and ignored:
    // it must still never be printed.
    let (url, password) = with_password(&url, "pg-walkthrough-secret");
    let sandbox = Sandbox::with_config(&format!("{WALKTHROUGH_CONFIG}store:\n  url: \"{url}\"\n"));
    walkthrough(&sandbox);
    assert!(
        !sandbox.path().join("postern-data/postern.sqlite3").exists(),
        "the store is PostgreSQL, not SQLite"
    );
    let transcript = sandbox.transcript();
    assert!(!transcript.contains(&password), "{transcript}");
}

/// `postgres://user@host/db` → `postgres://user:password@host/db`, and the password in the
/// result (an external test server's own one, if its URL has one).
fn with_password(url: &str, password: &str) -> (String, String) {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("a URL: {url}"));
    let (user, host) = rest
        .split_once('@')
        .unwrap_or_else(|| panic!("a URL with a user: {url}"));
    match user.split_once(':') {
        Some((_, existing)) => (url.to_owned(), existing.to_owned()),
        None => (
            format!("{scheme}://{user}:{password}@{host}"),
            password.to_owned(),
        ),
    }
}
