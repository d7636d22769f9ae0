//! The mail desk (administrators only): sources, the inbound log, one message, "process
//! again", and the outbox.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_inbox::status::StatusSnapshot;
use postern_store::{
    InboundFilter, InboundMessage, InboundState, Mailbox, OutboxFilter, OutboxState, Timestamp, Tx,
};
use serde::Deserialize;

use crate::session::{Admin, AdminPosted};
use crate::{WebError, WebState};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/mail", get(desk))
        .route("/admin/mail/messages/{id}", get(message))
        .route("/admin/mail/messages/{id}/raw", get(raw))
        .route("/admin/mail/messages/{id}/reprocess", post(reprocess))
        .route("/admin/mail/outbox", get(outbox))
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

async fn desk(
    State(state): State<WebState>,
    Admin(me): Admin,
    Query(query): Query<LogQuery>,
) -> Result<Response, WebError> {
    let page_size = state.config().page_size;
    let filter = query.filter(page_size)?;
    let messages = state
        .read(async |tx| Ok(tx.list_inbound(&filter).await?))
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
        messages.last().map(|m| m.id)
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

async fn message(
    State(state): State<WebState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (message, replies) = state
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
            Ok((message, replies))
        })
        .await?;
    let headers_text = String::from_utf8_lossy(header_block(&message.raw)).into_owned();
    let page = state.render(
        "message.html",
        Some(&me),
        crate::pages::page! { message => &message.meta, headers_text => headers_text, outbox => replies },
    )?;
    Ok(page.into_response())
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
    Ok(Redirect::to(&format!("/admin/mail/messages/{id}")).into_response())
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
        .read(async |tx| Ok(tx.list_outbox(&filter).await?))
        .await?;
    let page = state.render(
        "outbox.html",
        Some(&me),
        crate::pages::page! { mails => mails, state_filter => &query.state },
    )?;
    Ok(page.into_response())
}
