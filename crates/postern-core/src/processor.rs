//! Receiving one message: store it, decide, change the tracker, record the outcome — all in one
//! transaction, so a failure half-way leaves nothing behind and a retry starts clean.

use std::collections::HashMap;

use postern_mail::key::{CustomEmailLookup, KeyScan, custom_email_reply_parts, strip_verify};
use postern_mail::{AddressTemplate, Email, Route, auto_generated, find_mail_key};
use postern_store::{
    InboundFinish, InboundSource, InboundState, InsertOutcome, Mailbox, NewInbound, Store, Tx,
    content_identity,
};
use serde::{Deserialize, Serialize};

use crate::content::UploadPolicy;
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::handlers::{self, Context, Handled};
use crate::notice;

/// Everything the processor needs to know about this instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `incoming_email.address`; `None` when incoming email is disabled.
    pub incoming_address: Option<AddressTemplate>,
    /// `service_desk_email.address`; `None` when that mailbox is not configured.
    pub service_desk_address: Option<AddressTemplate>,
    /// Host name for `References: <reply-KEY@host>` and generated Message-IDs.
    pub host: String,
    /// Where attachments are written.
    pub uploads: UploadPolicy,
    /// `From` of the mail postern sends (reject notices).
    pub sender_address: String,
    /// Name of this instance in texts sent to people.
    pub instance_name: String,
    /// At most one reject notice per sender and reason in this many seconds (default 3600).
    pub reject_notice_window_seconds: i64,
}

/// What happened to one message, as `postern receive` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveOutcome {
    /// The stored message (the first copy, for duplicates).
    pub inbound_id: i64,
    /// `processed`, `rejected`, `duplicate` or `ignored`.
    pub outcome: String,
    /// The handler that ran.
    pub handler: Option<String>,
    /// The error kind, for rejected and ignored messages.
    pub error: Option<String>,
    /// The reason text.
    pub reason: Option<String>,
    /// What was created.
    pub created: Option<Created>,
    /// Whether a reject notice was queued for the sender.
    pub reject_notice_queued: bool,
    /// For duplicates: the outcome of the first copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_outcome: Option<String>,
}

/// A record created by a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// `issue`, `ticket`, `merge_request` or `note`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The project's full path.
    pub project: String,
    /// The or merge request's number in the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iid: Option<i64>,
    /// The comment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<i64>,
}

/// Turns raw messages into tracker changes.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    repositories: postern_git::Repositories,
    config: ProcessorConfig,
}

impl Processor {
    /// A processor over `store`, with project git repositories under `repositories`.
    pub fn new(
        store: Store,
        repositories: postern_git::Repositories,
        config: ProcessorConfig,
    ) -> Processor {
        Processor {
            store,
            repositories,
            config,
        }
    }

    /// The store this processor writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// The project repositories merge requests are applied to (the web UI shows their diffs).
    pub fn repositories(&self) -> &postern_git::Repositories {
        &self.repositories
    }

    /// Stores and processes one message in one transaction.
    ///
    /// `Err` means a temporary failure: nothing was written and the caller should retry later
    /// (the MTA pipe exits 75). Every other result, refusals included, is committed.
    pub async fn receive(
        &self,
        raw: &[u8],
        mailbox: Mailbox,
        source: InboundSource,
        source_identity: Option<String>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        self.receive_at(raw, mailbox, source, source_identity, None)
            .await
    }

    /// [`Processor::receive`] for a message a watcher fetched: stores it with its source
    /// identity, moves the folder's cursor and processes it, all in one transaction — one
    /// commit instead of two (intake, then the queue), which is what keeps a single new
    /// message's latency near the server's own.
    pub async fn receive_fetched(
        &self,
        message: &crate::intake::IntakeMessage,
        mailbox: Mailbox,
        source: InboundSource,
    ) -> Result<ReceiveOutcome, ProcessError> {
        self.receive_at(
            &message.raw,
            mailbox,
            source,
            Some(message.source_identity.clone()),
            message.cursor.as_ref(),
        )
        .await
    }

    async fn receive_at(
        &self,
        raw: &[u8],
        mailbox: Mailbox,
        source: InboundSource,
        source_identity: Option<String>,
        cursor: Option<&(String, i64, i64)>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let email = Email::parse(raw);
        let message_id = email.message_id().map(str::to_owned);
        let identity = content_identity(message_id.as_deref(), body_of(raw));
        let mut tx = self.store.begin().await?;
        let inserted = tx
            .insert_inbound(&NewInbound {
                mailbox,
                source,
                message_id,
                raw: raw.into(),
                source_identity,
                content_identity: identity,
            })
            .await?;
        if let Some((folder, validity, position)) = cursor {
            tx.advance_intake_cursor(folder, *validity, *position)
                .await?;
        }
        let id = match inserted {
            InsertOutcome::New(id) => id,
            InsertOutcome::Duplicate {
                first_id, state, ..
            } => {
                // A first copy stored but never finished (a crash or a temporary failure after
                // intake) is completed by this delivery — unless the processing queue holds it
                // right now, which the claim finds out (on PostgreSQL it waits for that
                // transaction and then sees the message finished).
                let stale_before = postern_store::Timestamp::now()
                    .plus_seconds(-crate::queue::STALE_CLAIM_SECONDS);
                if is_finished(state) || !tx.claim_inbound(first_id, stale_before).await? {
                    let first = tx.inbound(first_id).await?;
                    tx.commit().await?;
                    return Ok(duplicate_outcome(
                        first_id,
                        first.and_then(|m| m.meta.outcome),
                    ));
                }
                first_id
            }
        };
        let outcome = self
            .process_stored(&mut tx, id, &email, raw, mailbox)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Processes an already stored message again (`postern admin message reprocess`).
    pub async fn reprocess(&self, id: i64) -> Result<Option<ReceiveOutcome>, ProcessError> {
        let mut tx = self.store.begin().await?;
        let Some(message) = tx.inbound(id).await? else {
            return Ok(None);
        };
        if message.meta.state == InboundState::Processed {
            // Its effect exists already; running it again would duplicate it.
            return Ok(Some(duplicate_outcome(id, message.meta.outcome)));
        }
        let email = Email::parse(&message.raw);
        self.process_and_commit(tx, &message, &email)
            .await
            .map(Some)
    }

    /// Claims and processes a stored message in one transaction: the queue's unit of work.
    /// `Ok(None)` when someone else holds it or it is finished. A claim older than
    /// `stale_before` is taken over.
    pub async fn process_queued(
        &self,
        id: i64,
        stale_before: postern_store::Timestamp,
    ) -> Result<Option<ReceiveOutcome>, ProcessError> {
        // The raw bytes never change once stored, so they are read and parsed (base64 and
        // quoted-printable decoding: milliseconds for a large message) before the write
        // transaction. On SQLite that keeps the single write lock, which intake also needs,
        // for the database work alone, and lets the queue's tasks parse in parallel.
        let message = {
            let mut read = self.store.begin_read_only().await?;
            match read.inbound(id).await? {
                Some(message) => message,
                None => return Ok(None),
            }
        };
        let email = Email::parse(&message.raw);
        let mut tx = self.store.begin().await?;
        if !tx.claim_inbound(id, stale_before).await? {
            return Ok(None);
        }
        self.process_and_commit(tx, &message, &email)
            .await
            .map(Some)
    }

    async fn process_and_commit(
        &self,
        mut tx: Tx,
        message: &postern_store::InboundMessage,
        email: &Email<'_>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let outcome = self
            .process_stored(
                &mut tx,
                message.meta.id,
                email,
                &message.raw,
                message.meta.mailbox,
            )
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn process_stored(
        &self,
        tx: &mut Tx,
        id: i64,
        email: &Email<'_>,
        raw: &[u8],
        mailbox: Mailbox,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let decision = self.decide(tx, email, raw, mailbox).await?;
        let (state, handler, result) = match decision {
            Decision::Ignored(rejection) => (InboundState::Ignored, None, Err(rejection)),
            Decision::Rejected(rejection) => (InboundState::Rejected, None, Err(rejection)),
            Decision::Route(route) => {
                let handler = route.kind().as_str().to_owned();
                let mut context = Context {
                    tx,
                    email,
                    config: &self.config,
                    repositories: &self.repositories,
                };
                match handlers::run(&mut context, &route, mailbox).await {
                    Ok(handled) => (InboundState::Processed, Some(handler), Ok(handled)),
                    Err(ProcessError::Rejected(rejection)) => {
                        (InboundState::Rejected, Some(handler), Err(rejection))
                    }
                    Err(ProcessError::Internal(message)) => (
                        InboundState::Rejected,
                        Some(handler),
                        Err(Rejection::with_reason(
                            ErrorKind::Internal,
                            format!("internal error: {message}"),
                        )),
                    ),
                    Err(temporary) => return Err(temporary),
                }
            }
        };
        let mut outcome = ReceiveOutcome {
            inbound_id: id,
            outcome: match state {
                InboundState::Processed => "processed",
                InboundState::Ignored => "ignored",
                _ => "rejected",
            }
            .to_owned(),
            handler: handler.clone(),
            error: None,
            reason: None,
            created: None,
            reject_notice_queued: false,
            first_outcome: None,
        };
        match result {
            Ok(Handled { created }) => outcome.created = created,
            Err(rejection) => {
                outcome.error = Some(rejection.kind.as_str().to_owned());
                outcome.reason = Some(rejection.reason.clone());
                if state == InboundState::Rejected {
                    outcome.reject_notice_queued =
                        notice::queue_reject_notice(tx, email, &rejection, id, &self.config)
                            .await?;
                }
            }
        }
        let outcome_json =
            serde_json::to_string(&outcome).map_err(|e| ProcessError::Internal(e.to_string()))?;
        tx.finish_inbound(
            id,
            &InboundFinish {
                state,
                handler,
                error_kind: outcome.error.clone(),
                reason: outcome.reason.clone(),
                outcome: Some(outcome_json),
            },
        )
        .await?;
        Ok(outcome)
    }

    /// The receiver's checks before any handler: blank, automatic, key, route.
    async fn decide(
        &self,
        tx: &mut Tx,
        email: &Email<'_>,
        raw: &[u8],
        mailbox: Mailbox,
    ) -> Result<Decision, ProcessError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Decision::Rejected(Rejection::new(ErrorKind::EmptyEmail)));
        }
        if let Some(reason) = auto_generated(email) {
            return Ok(Decision::Ignored(Rejection::with_reason(
                ErrorKind::AutoGeneratedEmail,
                format!("automatic mail ({})", reason.as_str()),
            )));
        }
        let template = match mailbox {
            Mailbox::Incoming => self.config.incoming_address.as_ref(),
            Mailbox::ServiceDesk => self.config.service_desk_address.as_ref(),
        };
        let custom = CustomEmails::load(tx).await?;
        let scan = KeyScan {
            template,
            host: Some(&self.config.host),
            custom_emails: Some(&custom),
        };
        let Some(key) = find_mail_key(email, &scan) else {
            return Ok(Decision::Rejected(Rejection::new(
                ErrorKind::UnknownIncomingEmail,
            )));
        };
        let route = match mailbox {
            Mailbox::Incoming => {
                let wildcard = template.is_some_and(AddressTemplate::supports_wildcard);
                postern_mail::route_incoming(&key.key, wildcard)
            }
            Mailbox::ServiceDesk => Some(postern_mail::route_service_desk(&key.key)),
        };
        Ok(match route {
            Some(route) => Decision::Route(route),
            None => Decision::Rejected(Rejection::new(ErrorKind::UnknownIncomingEmail)),
        })
    }
}

enum Decision {
    Ignored(Rejection),
    Rejected(Rejection),
    Route(Route),
}

fn is_finished(state: InboundState) -> bool {
    matches!(
        state,
        InboundState::Processed | InboundState::Rejected | InboundState::Ignored
    )
}

fn duplicate_outcome(first_id: i64, stored: Option<String>) -> ReceiveOutcome {
    let first: Option<ReceiveOutcome> = stored.and_then(|json| serde_json::from_str(&json).ok());
    ReceiveOutcome {
        inbound_id: first_id,
        outcome: "duplicate".to_owned(),
        handler: first.as_ref().and_then(|f| f.handler.clone()),
        error: first.as_ref().and_then(|f| f.error.clone()),
        reason: first.as_ref().and_then(|f| f.reason.clone()),
        created: first.as_ref().and_then(|f| f.created.clone()),
        reject_notice_queued: false,
        first_outcome: first.map(|f| f.outcome),
    }
}

/// The bytes after the header block: the part of a message that transports do not change.
pub fn body_of(raw: &[u8]) -> &[u8] {
    // One pass to the first blank line, `\r\n\r\n` or `\n\n`, whichever ends first. (Two
    // searches, one per kind, each read all of a large message that used only the other.)
    // The result feeds stored content identities, so it must never change for any input.
    let mut from = 0;
    while let Some(offset) = raw[from..].iter().position(|&byte| byte == b'\n') {
        let at = from + offset;
        match raw.get(at + 1) {
            Some(b'\n') => return &raw[at + 2..],
            Some(b'\r') if at > 0 && raw[at - 1] == b'\r' && raw.get(at + 2) == Some(&b'\n') => {
                return &raw[at + 3..];
            }
            _ => from = at + 1,
        }
    }
    raw
}

/// Custom Service Desk emails of all projects, loaded once per message (spec §1.5).
#[derive(Default)]
struct CustomEmails {
    /// Lowercased custom email → the project's default Service Desk key.
    keys: HashMap<String, String>,
}

impl CustomEmails {
    async fn load(tx: &mut Tx) -> Result<CustomEmails, ProcessError> {
        let mut keys = HashMap::new();
        for project in tx.projects_with_custom_email().await? {
            if let Some(email) = &project.service_desk.custom_email {
                keys.insert(
                    email.to_lowercase(),
                    format!("{}-{}-issue-", project.full_path_slug, project.id),
                );
            }
        }
        Ok(CustomEmails { keys })
    }
}

impl CustomEmailLookup for CustomEmails {
    fn reply_key(&self, address: &str) -> Option<String> {
        let (key, custom) = custom_email_reply_parts(address)?;
        self.keys
            .contains_key(&custom.to_lowercase())
            .then_some(key)
    }

    fn service_desk_key(&self, address: &str) -> Option<String> {
        self.keys
            .get(&strip_verify(address).to_lowercase())
            .cloned()
    }
}
