//! Attachments served by `postern serve` follow the issue that links them: in a public project
//! a public issue's image loads signed out, a confidential issue's never does, though its URL
//! (secret included) is known.

use std::net::Ipv4Addr;

use crate::https::Client;
use crate::serve::{connect, free_port, start, stop};
use crate::support::{Sandbox, int_field, str_field};

/// A new-issue mail from Jake with a small PNG attached, and `body` as its text.
fn with_picture(to: &str, subject: &str, body: &str) -> Vec<u8> {
    // The PNG signature and the start of an IHDR chunk: enough to be stored as an image.
    let picture = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB";
    format!(
        "From: jake@example.com\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\n{body}\r\n\
         --b1\r\nContent-Type: image/png; name=\"shot.png\"\r\n\
         Content-Disposition: attachment; filename=\"shot.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{picture}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// The `/uploads/…` path an issue's description links.
fn upload_path(description: &str) -> String {
    let start = description
        .find("/uploads/")
        .unwrap_or_else(|| panic!("no upload link in {description:?}"));
    let end = description[start..]
        .find(')')
        .map_or(description.len(), |end| start + end);
    description[start..end].to_owned()
}

#[test]
fn uploads_are_served_to_whoever_may_read_the_issue_that_links_them() {
    let web = free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{}\"\nweb:\n  listen: \"127.0.0.1:{web}\"\n",
        free_port()
    ));
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    let project = sandbox.admin_json(&["project", "add", "land/open", "--visibility", "public"]);
    let project_id = int_field(&project, "id");
    sandbox.admin_json(&["project", "member", "add", "land/open", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/open", "--user", "jake"]);
    let address = str_field(&shown["addresses"], "new_issue").to_owned();
    for (subject, body) in [
        ("public", "Look at this."),
        ("secret", "Only for the team.\n/confidential"),
    ] {
        let outcome = sandbox.receive(&with_picture(&address, subject, body));
        assert_eq!(str_field(&outcome, "outcome"), "processed", "{outcome}");
    }
    let public = sandbox.admin_json(&["issue", "show", "land/open", "1"]);
    let secret = sandbox.admin_json(&["issue", "show", "land/open", "2"]);
    assert_eq!(secret["confidential"], true, "{secret}");
    let public_upload = upload_path(str_field(&public, "description"));
    let secret_upload = upload_path(str_field(&secret, "description"));

    let child = start(&sandbox);
    drop(connect(web));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the HTTP client");
    let signed_out = Client::plain(Ipv4Addr::LOCALHOST);
    let get = |path: &str| {
        runtime
            .block_on(signed_out.get(web, path, ""))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    // Signed out: the public issue shows its picture, and the picture loads.
    let page = get(&format!("/projects/{project_id}/issues/1"));
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.body.contains(&public_upload), "{}", page.body);
    let picture = get(&public_upload);
    assert_eq!(picture.status, 200, "{public_upload}: {}", picture.head);
    assert!(picture.body.contains("PNG"), "{public_upload}");
    // The confidential issue's picture does not, secret URL or not.
    let hidden = get(&secret_upload);
    assert_ne!(hidden.status, 200, "{secret_upload}: {}", hidden.head);
    assert!(!hidden.body.contains("PNG"), "{secret_upload}");
    assert!(stop(child).success());
}
