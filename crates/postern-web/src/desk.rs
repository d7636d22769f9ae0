//! The mail desk (administrators only): sources, the inbound log, one message, "process
//! again", and the outbox.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_inbox::status::StatusSnapshot;
use postern_store::{
    InboundFilter, InboundMessage, InboundMeta, InboundState, Mailbox, Noteable, OutboxFilter,
    OutboxMail, OutboxState, Timestamp, Tx,
};
use serde::Deserialize;

use crate::error::Path;
use crate::session::{Admin, AdminPosted};
use crate::{WebError, WebState};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/mail", get(desk))
        .route("/admin/mail/messages/{id}", get(message))
        .route("/admin/mail/messages/{id}/raw", get(raw))
        .route("/admin/mail/messages/{id}/reprocess", post(reprocess))
        .route("/admin/mail/outbox", get(outbox))
        .route("/admin/mail/outbox/{id}", get(outbox_mail))
        .route("/admin/mail/outbox/{id}/raw", get(outbox_raw))
}

/// What a mail says about itself, for scanning a list: From, To and Subject.
#[derive(Debug, Default, serde::Serialize)]
struct Envelope {
    from: String,
    to: String,
    subject: String,
}

impl Envelope {
    /// The header fields of `raw` (only its header block is read).
    fn of(raw: &[u8]) -> Envelope {
        let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return Envelope::default();
        };
        fn list(address: Option<&mail_parser::Address<'_>>) -> String {
            address
                .map(|address| {
                    address
                        .iter()
                        .filter_map(|addr| addr.address().or(addr.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        }
        Envelope {
            from: list(message.from()),
            to: list(message.to()),
            subject: message.subject().unwrap_or_default().to_owned(),
        }
    }
}

/// A link to what a message created, for the desk and the message page.
#[derive(Debug, serde::Serialize)]
struct CreatedLink {
    href: String,
    text: String,
}

/// What message `id` created (the issue, ticket, merge request or comment), as a link.
async fn created_link(tx: &mut Tx, id: i64) -> Result<Option<CreatedLink>, WebError> {
    let Some(origin) = tx.inbound_origin(id).await? else {
        return Ok(None);
    };
    let (project_id, segment, sigil, iid) = match origin.noteable {
        Noteable::Issue(issue) => match tx.issue_by_id(issue).await? {
            Some(issue) => (issue.project_id, "issues", '#', issue.iid),
            None => return Ok(None),
        },
        Noteable::MergeRequest(mr) => match tx.merge_request_by_id(mr).await? {
            Some(mr) => (mr.project_id, "merge_requests", '!', mr.iid),
            None => return Ok(None),
        },
    };
    let path = tx
        .project_by_id(project_id)
        .await?
        .map_or_else(String::new, |p| p.full_path);
    let (anchor, what) = match origin.note_id {
        Some(note) => (format!("#note-{note}"), "comment on "),
        None => (String::new(), ""),
    };
    Ok(Some(CreatedLink {
        href: format!("/projects/{project_id}/{segment}/{iid}{anchor}"),
        text: format!("{what}{path}{sigil}{iid}"),
    }))
}

/// Query of the inbound log; empty strings mean "any".
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) mailbox: String,
    pub(crate) before: Option<i64>,
}

impl LogQuery {
    pub(crate) fn filter(&self, limit: i64) -> Result<InboundFilter, WebError> {
        let state = match self.state.as_str() {
            "" => None,
            s => Some(
                s.parse::<InboundState>()
                    .map_err(|_| WebError::BadRequest(format!("unknown state {s:?}")))?,
            ),
        };
        let mailbox = match self.mailbox.as_str() {
            "" => None,
            s => Some(
                s.parse::<Mailbox>()
                    .map_err(|_| WebError::BadRequest(format!("unknown mailbox {s:?}")))?,
            ),
        };
        Ok(InboundFilter {
            state,
            mailbox,
            before_id: self.before,
            limit,
            oldest_first: false,
        })
    }
}

/// A row of the inbound log: the message, its From, To and Subject, and what it created.
#[derive(serde::Serialize)]
struct DeskRow {
    #[serde(flatten)]
    meta: InboundMeta,
    #[serde(flatten)]
    envelope: Envelope,
    created: Option<CreatedLink>,
}

/// A source's status with times as text for the page.
#[derive(serde::Serialize)]
struct SourceRow {
    #[serde(flatten)]
    status: StatusSnapshot,
    last_message: Option<String>,
    token_expires: Option<String>,
}

fn time_text(at: Option<std::time::SystemTime>) -> Option<String> {
    at.map(|t| {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Timestamp(secs).to_string()
    })
}

/// Bytes of each listed message read for its From, To and Subject: a page of 50 costs at most
/// 50 of these, however large the messages (a header block longer than this shows what fits).
const LISTED_HEAD_BYTES: usize = 64 * 1024;

async fn desk(
    State(state): State<WebState>,
    Admin(me): Admin,
    Query(query): Query<LogQuery>,
) -> Result<Response, WebError> {
    let page_size = state.config().page_size;
    let filter = query.filter(page_size)?;
    let messages = state
        .read(async |tx| {
            let mut rows = Vec::new();
            for meta in tx.list_inbound(&filter).await? {
                let envelope = match tx.inbound_head(meta.id, LISTED_HEAD_BYTES).await? {
                    Some(head) => Envelope::of(&head),
                    None => Envelope::default(),
                };
                let created = created_link(tx, meta.id).await?;
                rows.push(DeskRow {
                    meta,
                    envelope,
                    created,
                });
            }
            Ok(rows)
        })
        .await?;
    let sources: Vec<SourceRow> = state
        .inner
        .sources
        .iter()
        .map(|s| {
            let status = s.snapshot();
            SourceRow {
                last_message: time_text(status.last_message_at),
                token_expires: time_text(status.token_expires_at),
                status,
            }
        })
        .collect();
    let next_before = if i64::try_from(messages.len()).unwrap_or(0) == page_size {
        messages.last().map(|m| m.meta.id)
    } else {
        None
    };
    let states: Vec<&str> = InboundState::ALL.iter().map(|s| s.as_str()).collect();
    let page = state.render(
        "desk.html",
        Some(&me),
        crate::pages::page! {
            sources => sources, messages => messages, states => states,
            state_filter => &query.state, mailbox_filter => &query.mailbox,
            next_before => next_before,
        },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct MessageQuery {
    /// Set by "Process again" on its way back: the page says what came of it.
    #[serde(default)]
    reprocessed: Option<String>,
}

async fn message(
    State(state): State<WebState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Query(query): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let (message, replies, created, markdown) = state
        .read(async |tx| {
            let message = inbound(tx, id).await?;
            let replies = tx
                .list_outbox(&OutboxFilter {
                    limit: 1000,
                    ..OutboxFilter::default()
                })
                .await?
                .into_iter()
                .filter(|mail| mail.inbound_id == Some(id))
                .collect::<Vec<_>>();
            let created = created_link(tx, id).await?;
            let markdown = stored_markdown(tx, id).await?;
            Ok((message, replies, created, markdown))
        })
        .await?;
    let headers_text = String::from_utf8_lossy(header_block(&message.raw)).into_owned();
    let envelope = Envelope::of(&message.raw);
    let outcome: Option<serde_json::Value> = message
        .meta
        .outcome
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok());
    let authentication = outcome
        .as_ref()
        .and_then(|o| o.get("authentication"))
        .filter(|a| !a.is_null())
        .and_then(|a| serde_json::to_string_pretty(a).ok());
    let html_view = crate::markdown::mail_view(&message.raw, &markdown);
    let text_body = if html_view.is_some() {
        None
    } else {
        text_body(&message.raw)
    };
    let notice = query.reprocessed.map(|_| {
        let meta = &message.meta;
        let mut text = format!("Processed again: {}", meta.state);
        if let Some(kind) = meta.error_kind {
            text.push_str(&format!(" ({kind})"));
        }
        if let Some(reason) = &meta.reason {
            text.push_str(&format!(": {reason}"));
        }
        text
    });
    let page = state.render(
        "message.html",
        Some(&me),
        crate::pages::page! {
            message => &message.meta, headers_text => headers_text, outbox => replies,
            envelope => envelope, authentication => authentication, created => created,
            html_view => html_view, text_body => text_body, notice => notice,
        },
    )?;
    Ok(page.into_response())
}

/// The Markdown stored from message `id` (what its inline images were uploaded into), or
/// nothing.
async fn stored_markdown(tx: &mut Tx, id: i64) -> Result<String, WebError> {
    let Some(origin) = tx.inbound_origin(id).await? else {
        return Ok(String::new());
    };
    Ok(match (origin.note_id, origin.noteable) {
        (Some(note), _) => tx.note_by_id(note).await?.map(|n| n.body),
        (None, Noteable::Issue(issue)) => tx.issue_by_id(issue).await?.map(|i| i.description),
        (None, Noteable::MergeRequest(mr)) => {
            tx.merge_request_by_id(mr).await?.map(|m| m.description)
        }
    }
    .unwrap_or_default())
}

/// The text body of `raw`, for a mail without an HTML part.
fn text_body(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    message.body_text(0).map(|text| text.into_owned())
}

/// Stored message `id`, or not found.
async fn inbound(tx: &mut Tx, id: i64) -> Result<InboundMessage, WebError> {
    tx.inbound(id).await?.ok_or(WebError::NotFound)
}

/// The header block of a raw message (up to the first empty line).
fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    &raw[..end]
}

async fn raw(
    State(state): State<WebState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let message = state.read(async |tx| inbound(tx, id).await).await?;
    let disposition = format!("attachment; filename=\"message-{id}.eml\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        message.raw,
    )
        .into_response())
}

async fn reprocess(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(_, _): AdminPosted,
) -> Result<Response, WebError> {
    state
        .processor()
        .reprocess(id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Redirect::to(&format!("/admin/mail/messages/{id}?reprocessed=1")).into_response())
}

#[derive(Deserialize)]
struct OutboxQuery {
    #[serde(default)]
    state: String,
}

async fn outbox(
    State(state): State<WebState>,
    Admin(me): Admin,
    Query(query): Query<OutboxQuery>,
) -> Result<Response, WebError> {
    let state_filter = match query.state.as_str() {
        "" => None,
        s => Some(
            s.parse::<OutboxState>()
                .map_err(|_| WebError::BadRequest(format!("unknown state {s:?}")))?,
        ),
    };
    let filter = OutboxFilter {
        state: state_filter,
        kind: None,
        limit: state.config().page_size,
    };
    let mails = state
        .read(async |tx| {
            let mut rows = Vec::new();
            for mail in tx.list_outbox(&filter).await? {
                let envelope = match tx.outbox_head(mail.id, LISTED_HEAD_BYTES).await? {
                    Some(head) => Envelope::of(&head),
                    None => Envelope::default(),
                };
                rows.push(OutboxRow { mail, envelope });
            }
            Ok(rows)
        })
        .await?;
    let page = state.render(
        "outbox.html",
        Some(&me),
        crate::pages::page! { mails => mails, state_filter => &query.state },
    )?;
    Ok(page.into_response())
}

/// A row of the outbox: the mail and its Subject.
#[derive(serde::Serialize)]
struct OutboxRow {
    #[serde(flatten)]
    mail: OutboxMail,
    #[serde(flatten)]
    envelope: Envelope,
}

/// One mail of the outbox as it is (or was) sent: its headers and a readable body.
async fn outbox_mail(
    State(state): State<WebState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (mail, raw) = state
        .read(async |tx| {
            let mail = tx.outbox_mail(id).await?.ok_or(WebError::NotFound)?;
            let raw = tx.outbox_raw(id).await?.ok_or(WebError::NotFound)?;
            Ok((mail, raw))
        })
        .await?;
    let headers_text = String::from_utf8_lossy(header_block(&raw)).into_owned();
    let html_view = crate::markdown::mail_view(&raw, "");
    let page = state.render(
        "outbox_mail.html",
        Some(&me),
        crate::pages::page! {
            mail => mail, envelope => Envelope::of(&raw), headers_text => headers_text,
            html_view => html_view, text_body => text_body(&raw),
        },
    )?;
    Ok(page.into_response())
}

async fn outbox_raw(
    State(state): State<WebState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let raw = state
        .read(async |tx| tx.outbox_raw(id).await?.ok_or(WebError::NotFound))
        .await?;
    let disposition = format!("attachment; filename=\"outbox-{id}.eml\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        raw,
    )
        .into_response())
}
