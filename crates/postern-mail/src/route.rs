//! Choosing the handler from the key's shape, in GitLab's order (`Handler.load_handlers`,
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/handler.rb>).
//!
//! The first handler whose pattern accepts the key wins. Patterns are anchored; the project slug
//! is greedy (the longest prefix that still lets the rest match), which the `regex` crate's
//! leftmost-first semantics reproduce exactly.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Serialize;

/// A reply key as an unanchored pattern: legacy 32 lowercase hex, or partitioned
/// `<partition>-<25 base36>[-<namespace id>]`.
pub const FULL_REPLY_KEY_PATTERN: &str =
    r"(?:[a-f0-9]{32})|(?:[0-9a-z]{1,4}-[0-9a-z]{25}(?:-[0-9a-z]{1,13})?)";

/// The handler a route leads to; the six the receiver chooses from are named in `postern
/// inspect`'s `handler` field as they are stored.
pub use postern_vocab::HandlerKind;

/// A notification's reply key, as parsed from an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum ReplyKey {
    /// 32 lowercase hex digits (older GitLab notifications).
    Legacy {
        /// The 32 hex digits.
        key: String,
    },
    /// `<partition base36>-<25 base36>[-<namespace id base36>]`.
    Partitioned {
        /// The partition number.
        partition: u32,
        /// The 25-character random part.
        key: String,
        /// The namespace id, when the address carries one.
        namespace_id: Option<u128>,
    },
}

impl ReplyKey {
    /// Parses a whole key (anchored).
    pub fn parse(key: &str) -> Option<ReplyKey> {
        static REPLY_KEY: LazyLock<Regex> = LazyLock::new(|| {
            anchored(
                r"(?:(?P<legacy>[a-f0-9]{32})|(?P<partition>[0-9a-z]{1,4})-(?P<key>[0-9a-z]{25})(?:-(?P<namespace>[0-9a-z]{1,13}))?)",
            )
        });
        let captures = REPLY_KEY.captures(key)?;
        if let Some(legacy) = captures.name("legacy") {
            return Some(ReplyKey::Legacy {
                key: legacy.as_str().to_owned(),
            });
        }
        let partition = u32::from_str_radix(captures.name("partition")?.as_str(), 36).ok()?;
        let namespace_id = match captures.name("namespace") {
            Some(ns) => Some(u128::from_str_radix(ns.as_str(), 36).ok()?),
            None => None,
        };
        Some(ReplyKey::Partitioned {
            partition,
            key: captures.name("key")?.as_str().to_owned(),
            namespace_id,
        })
    }

    /// The random part used for lookup (the whole key for legacy keys).
    pub fn lookup_key(&self) -> &str {
        match self {
            ReplyKey::Legacy { key } | ReplyKey::Partitioned { key, .. } => key,
        }
    }
}

/// How an address names a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum ProjectRef {
    /// `<full_path_slug>-<id>`: found by id, then the slug must equal the project's slug.
    Id {
        /// The slug as written in the address.
        slug: String,
        /// The decimal id as written (may exceed any real id; the lookup then finds nothing).
        id: String,
    },
    /// Legacy `group/project` full path.
    Path {
        /// The full path as written.
        path: String,
    },
    /// Service Desk alias `<full_path_slug>-<project_key>` (service-desk mailbox only).
    ServiceDeskKey {
        /// The slug as written.
        slug: String,
        /// The project's Service Desk key.
        key: String,
    },
}

/// The handler chosen for a key, with what the key says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "handler", rename_all = "snake_case")]
pub enum Route {
    /// Reply to a notification.
    CreateNote {
        /// The notification's reply key.
        reply_key: ReplyKey,
    },
    /// New issue by email.
    CreateIssue {
        /// The project.
        project: ProjectRef,
        /// The author's incoming-email token.
        token: String,
    },
    /// Comment on an issue by email.
    CreateNoteOnIssuable {
        /// The project.
        project: ProjectRef,
        /// The author's incoming-email token.
        token: String,
        /// The issue's project-local number, as written.
        issue_iid: String,
    },
    /// Unsubscribe from a notification's thread.
    Unsubscribe {
        /// The notification's reply key.
        reply_key: ReplyKey,
    },
    /// New merge request by email.
    CreateMergeRequest {
        /// The project.
        project: ProjectRef,
        /// The author's incoming-email token.
        token: String,
    },
    /// Service Desk ticket or reply.
    ServiceDesk {
        /// The project.
        project: ProjectRef,
    },
}

impl Route {
    /// Which handler this is.
    pub fn kind(&self) -> HandlerKind {
        match self {
            Route::CreateNote { .. } => HandlerKind::CreateNote,
            Route::CreateIssue { .. } => HandlerKind::CreateIssue,
            Route::CreateNoteOnIssuable { .. } => HandlerKind::CreateNoteOnIssuable,
            Route::Unsubscribe { .. } => HandlerKind::Unsubscribe,
            Route::CreateMergeRequest { .. } => HandlerKind::CreateMergeRequest,
            Route::ServiceDesk { .. } => HandlerKind::ServiceDesk,
        }
    }
}

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!(r"\A(?:{pattern})\z")).expect("constant pattern")
}

fn capture(captures: &Captures<'_>, name: &str) -> Option<String> {
    captures.name(name).map(|m| m.as_str().to_owned())
}

/// The project part of the new-style keys: greedy slug, then a decimal id.
const BASE: &str = r"(?P<slug>.+)-(?P<id>[0-9]+)";

static CREATE_ISSUE: LazyLock<Regex> =
    LazyLock::new(|| anchored(&format!(r"{BASE}-(?P<token>.+)-issue")));
static CREATE_ISSUE_LEGACY: LazyLock<Regex> =
    LazyLock::new(|| anchored(r"(?P<path>[^+]*)\+(?P<token>.*)"));
static NOTE_ON_ISSUABLE: LazyLock<Regex> =
    LazyLock::new(|| anchored(&format!(r"{BASE}-(?P<token>.+)-issue-(?P<iid>[0-9]+)")));
static UNSUBSCRIBE: LazyLock<Regex> = LazyLock::new(|| {
    anchored(&format!(
        r"(?P<reply>{FULL_REPLY_KEY_PATTERN})(?:-unsubscribe|\+unsubscribe)"
    ))
});
static MERGE_REQUEST: LazyLock<Regex> =
    LazyLock::new(|| anchored(&format!(r"{BASE}-(?P<token>.+)-merge-request")));
// Not end-anchored in GitLab either: `path+merge-request+token…` accepts anything after.
static MERGE_REQUEST_LEGACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A(?P<path>[^+]*)\+merge-request\+(?P<token>.*)").expect("constant pattern")
});
static SERVICE_DESK: LazyLock<Regex> = LazyLock::new(|| anchored(&format!(r"{BASE}-issue-")));
static SERVICE_DESK_LEGACY: LazyLock<Regex> = LazyLock::new(|| anchored(r"(?P<path>[^+]*)"));
static SERVICE_DESK_PROJECT_KEY: LazyLock<Regex> =
    LazyLock::new(|| anchored(r"(?P<slug>.+)-(?P<key>[a-z0-9_]+)"));

fn by_id(captures: &Captures<'_>) -> Option<ProjectRef> {
    Some(ProjectRef::Id {
        slug: capture(captures, "slug")?,
        id: capture(captures, "id")?,
    })
}

/// Chooses the handler for a key from the incoming-email mailbox: the first of GitLab's six
/// handlers whose pattern accepts it.
///
/// `service_desk_supported` is GitLab's `ServiceDesk.supported?`: incoming email is enabled and its
/// address has a `%{key}` placeholder. Without it, Service Desk keys route nowhere.
pub fn route_incoming(key: &str, service_desk_supported: bool) -> Option<Route> {
    if let Some(reply_key) = ReplyKey::parse(key) {
        return Some(Route::CreateNote { reply_key });
    }
    if let Some(route) = create_issue(key) {
        return Some(route);
    }
    if let Some(captures) = NOTE_ON_ISSUABLE.captures(key) {
        return Some(Route::CreateNoteOnIssuable {
            project: by_id(&captures)?,
            token: capture(&captures, "token")?,
            issue_iid: capture(&captures, "iid")?,
        });
    }
    if let Some(captures) = UNSUBSCRIBE.captures(key) {
        let reply_key = ReplyKey::parse(captures.name("reply")?.as_str())?;
        return Some(Route::Unsubscribe { reply_key });
    }
    if let Some(route) = create_merge_request(key) {
        return Some(route);
    }
    if service_desk_supported {
        return service_desk(key).map(|project| Route::ServiceDesk { project });
    }
    None
}

/// The route for a key found by the Service Desk mailbox: always Service Desk (GitLab's
/// `ServiceDeskReceiver` chooses no handler).
///
/// The key may be the id form, the legacy path form, or the alias form `<slug>-<project_key>`.
pub fn route_service_desk(key: &str) -> Route {
    let project =
        service_desk(key).unwrap_or_else(|| match SERVICE_DESK_PROJECT_KEY.captures(key) {
            Some(captures) => ProjectRef::ServiceDeskKey {
                slug: capture(&captures, "slug").unwrap_or_default(),
                key: capture(&captures, "key").unwrap_or_default(),
            },
            // No form matches: GitLab's handler finds no project and reports ProjectNotFound.
            None => ProjectRef::Path {
                path: key.to_owned(),
            },
        });
    Route::ServiceDesk { project }
}

fn create_issue(key: &str) -> Option<Route> {
    if !key.contains('/')
        && let Some(captures) = CREATE_ISSUE.captures(key)
    {
        return Some(Route::CreateIssue {
            project: by_id(&captures)?,
            token: capture(&captures, "token")?,
        });
    }
    let captures = CREATE_ISSUE_LEGACY.captures(key)?;
    let token = capture(&captures, "token")?;
    // GitLab's `can_handle_legacy_format?`: a `+` in the token means another handler's legacy form.
    if token.contains('+') || key.contains("+unsubscribe") {
        return None;
    }
    Some(Route::CreateIssue {
        project: ProjectRef::Path {
            path: capture(&captures, "path")?,
        },
        token,
    })
}

fn create_merge_request(key: &str) -> Option<Route> {
    if !key.contains('/')
        && let Some(captures) = MERGE_REQUEST.captures(key)
    {
        return Some(Route::CreateMergeRequest {
            project: by_id(&captures)?,
            token: capture(&captures, "token")?,
        });
    }
    let captures = MERGE_REQUEST_LEGACY.captures(key)?;
    Some(Route::CreateMergeRequest {
        project: ProjectRef::Path {
            path: capture(&captures, "path")?,
        },
        token: capture(&captures, "token")?,
    })
}

fn service_desk(key: &str) -> Option<ProjectRef> {
    if !key.contains('/')
        && let Some(captures) = SERVICE_DESK.captures(key)
    {
        return by_id(&captures);
    }
    let captures = SERVICE_DESK_LEGACY.captures(key)?;
    let path = capture(&captures, "path")?;
    path.contains('/').then_some(ProjectRef::Path { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(key: &str) -> Option<HandlerKind> {
        route_incoming(key, true).map(|route| route.kind())
    }

    #[test]
    fn each_sample_key_matches_exactly_its_handler() {
        // GitLab's handler_spec invariant, with its sample keys.
        let key = "59d8df8370b7e95c5a49fbf86aeb2c93";
        assert_eq!(
            kind(&format!("{key}-unsubscribe")),
            Some(HandlerKind::Unsubscribe)
        );
        assert_eq!(kind(key), Some(HandlerKind::CreateNote));
        assert_eq!(
            kind("path-to-project-123-user_email_token-merge-request"),
            Some(HandlerKind::CreateMergeRequest)
        );
        assert_eq!(
            kind("path-to-project-123-user_email_token-issue"),
            Some(HandlerKind::CreateIssue)
        );
        assert_eq!(
            kind(&format!("{key}+unsubscribe")),
            Some(HandlerKind::Unsubscribe)
        );
        assert_eq!(
            kind("path/to/project+merge-request+user_email_token"),
            Some(HandlerKind::CreateMergeRequest)
        );
        assert_eq!(
            kind("path/to/project+user_email_token"),
            Some(HandlerKind::CreateIssue)
        );
        assert_eq!(kind(""), None);
    }

    #[test]
    fn note_on_issuable_and_service_desk_forms() {
        assert_eq!(
            route_incoming("gitlab-org-gitlab-ce-20-TOKEN-issue-34", true),
            Some(Route::CreateNoteOnIssuable {
                project: ProjectRef::Id {
                    slug: "gitlab-org-gitlab-ce".into(),
                    id: "20".into()
                },
                token: "TOKEN".into(),
                issue_iid: "34".into(),
            })
        );
        assert_eq!(
            kind("gitlab-org-gitlab-ce-20-issue-"),
            Some(HandlerKind::ServiceDesk)
        );
        assert_eq!(kind("gitlab-org/gitlab-ce"), Some(HandlerKind::ServiceDesk));
        assert_eq!(
            route_incoming("gitlab-org-gitlab-ce-20-issue-", false),
            None
        );
        assert_eq!(route_incoming("plainword", true), None);
    }

    #[test]
    fn slug_is_greedy() {
        let route = route_incoming("a-1-2-tok-issue", true);
        assert_eq!(
            route,
            Some(Route::CreateIssue {
                project: ProjectRef::Id {
                    slug: "a-1".into(),
                    id: "2".into()
                },
                token: "tok".into()
            })
        );
    }

    #[test]
    fn partitioned_reply_keys_parse() {
        assert_eq!(
            ReplyKey::parse("rs-0000000000000000000000abc-rs"),
            Some(ReplyKey::Partitioned {
                partition: u32::from_str_radix("rs", 36).expect("base36"),
                key: "0000000000000000000000abc".into(),
                namespace_id: Some(u128::from_str_radix("rs", 36).expect("base36")),
            })
        );
        assert_eq!(ReplyKey::parse("59D8DF8370B7E95C5A49FBF86AEB2C93"), None);
    }

    #[test]
    fn service_desk_mailbox_accepts_the_project_key_form() {
        assert_eq!(
            route_service_desk("mygroup-myproject-support"),
            Route::ServiceDesk {
                project: ProjectRef::ServiceDeskKey {
                    slug: "mygroup-myproject".into(),
                    key: "support".into()
                }
            }
        );
        assert_eq!(
            route_service_desk("email-test-7-issue-"),
            Route::ServiceDesk {
                project: ProjectRef::Id {
                    slug: "email-test".into(),
                    id: "7".into()
                }
            }
        );
    }
}
