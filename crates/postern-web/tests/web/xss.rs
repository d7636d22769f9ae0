//! An XSS corpus sent as mail through `Processor::receive` and shown inert on the issue page.

use postern_core::Outcome;
use postern_store::{Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

/// Each entry tries a different way to run script or load content in a browser.
const CORPUS: &[&str] = &[
    "<script>alert('s1')</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert('s2')>",
    "<body onload=alert('s3')>",
    "<a href=\"javascript:alert('s4')\">j1</a>",
    "<a href=\"JaVaScRiPt:alert('s5')\">j2</a>",
    "<a href=\"&#106;avascript:alert('s6')\">j3</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d1</a>",
    "<img src=\"data:image/svg+xml,<svg onload=alert('s7')>\">",
    "<svg><script>alert('s8')</script></svg>",
    "<svg onload=alert('s9')><circle r=1 /></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('s10')>",
    "<div style=\"background:url(javascript:alert('s11'))\">c1</div>",
    "<div style=\"width: expression(alert('s12'))\">c2</div>",
    "<style>body{background:url(javascript:alert('s13'))}</style>",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<object data=\"https://evil.example/x.swf\"></object>",
    "<embed src=\"https://evil.example/x.swf\">",
    "<form action=\"https://evil.example/\"><button>f1</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
    "<base href=\"https://evil.example/\">",
    "<link rel=stylesheet href=\"https://evil.example/x.css\">",
    "<details open ontoggle=alert('s14')>",
    "<input autofocus onfocus=alert('s15')>",
    "[md link](javascript:alert('s16'))",
    "![md image](javascript:alert('s17'))",
    "[md data](data:text/html,<script>alert('s18')</script>)",
];

/// Elements that run script, load documents or carry CSS.
const FORBIDDEN_TAGS: &[&str] = &[
    "script", "svg", "math", "iframe", "object", "embed", "form", "meta", "base", "link", "style",
    "input", "button",
];

/// What no attribute may carry: event handlers, script and data URLs, CSS.
const FORBIDDEN_IN_TAGS: &[&str] = &[
    " on",
    "javascript:",
    "vbscript:",
    "data:",
    "style=",
    "expression(",
];

fn description(page: &str) -> &str {
    let start = page.find("id=\"description\">").expect("description block") + 17;
    let end = page[start..]
        .find("<h2>Comments")
        .expect("comments heading")
        + start;
    &page[start..end]
}

/// Checks every tag of sanitised output. Text is escaped (`&lt;`), so each `<` opens a real tag
/// and an attack left as visible text is inert.
fn assert_inert(html: &str) {
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("").to_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            !FORBIDDEN_TAGS.contains(&name.as_str()),
            "<{tag}> survived in:\n{html}"
        );
        for bad in FORBIDDEN_IN_TAGS {
            assert!(!tag.contains(bad), "{bad} survived in <{tag}>:\n{html}");
        }
    }
}

both!(
    xss_corpus_in_html_and_plain_mail_is_inert_on_the_page,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let key = format!(
            "{}-{}-{}-issue",
            project.full_path_slug, project.id, alice.incoming_email_token
        );
        let body = CORPUS.join("\r\n<br>\r\n");
        for (n, content_type) in [(1, "text/html"), (2, "text/plain")] {
            let mail = format!(
                "From: alice <alice@example.com>\r\nTo: incoming+{key}@example.com\r\n\
             Subject: corpus {n}\r\nMessage-ID: <corpus-{n}@example.com>\r\n\
             Content-Type: {content_type}; charset=utf-8\r\n\r\n<html><body>{body}</body></html>\r\n"
            );
            let outcome = web.receive(&mail).await?;
            assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        }
        let session = web.login("alice").await?;
        for iid in [1, 2] {
            let page = web
                .get(
                    &format!("/projects/{}/issues/{iid}", project.id),
                    session.cookie(),
                )
                .await;
            assert_eq!(page.status, StatusCode::OK);
            let shown = description(&page.body);
            assert_inert(shown);
            // The harmless text around the attacks is still there.
            assert!(shown.contains("j1"), "{shown}");
            // And the page as a whole runs nothing either.
            assert!(!page.body.to_lowercase().contains("<script"));
        }
        Ok(())
    }
);

use axum::http::StatusCode;
