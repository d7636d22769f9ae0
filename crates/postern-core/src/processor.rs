//! Receiving one message: store it, decide, change the tracker, record the outcome — all in one
//! transaction, so a failure half-way leaves nothing behind and a retry starts clean.

use postern_store::{
    InboundFinish, InboundOrigin, InboundSource, InboundState, InsertOutcome, Mailbox, NewInbound,
    Noteable, Store, Timestamp, Tx, content_identity,
};
use postern_vocab::ErrorKind;

use crate::authentication::sender_refusal;
use crate::error::ProcessError;
use crate::handlers::{self, Context, Handled};
use crate::intake::{IntakeMessage, body_of};
use crate::notice;

pub use crate::config::ProcessorConfig;
pub use postern_work::RetryPolicy;

mod outcome;
mod prepared;

pub(crate) use outcome::quarantined_outcome;
pub use outcome::{Created, Outcome, ReceiveOutcome};
use outcome::{duplicate_outcome, is_finished, queued_outcome};
use prepared::{Decision, Prepared};

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

    /// Stores and processes one message, in one transaction when all goes well.
    ///
    /// The message is durable when this returns `Ok`, whatever became of it: processed,
    /// refused, a duplicate, `queued` (processing failed for now; the failure is recorded and
    /// the processing queue, or a redelivery of the same message, tries again) or
    /// `quarantined`. `Err` ([`ProcessError::Temporary`]) means nothing could be stored: the
    /// caller must not acknowledge the message (LMTP answers 451, the MTA pipe exits 75).
    pub async fn receive(
        &self,
        raw: &[u8],
        mailbox: Mailbox,
        source: InboundSource,
        source_identity: Option<String>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let message = IntakeMessage {
            raw: bytes::Bytes::copy_from_slice(raw),
            source_identity,
            cursor: None,
            declared_size: None,
        };
        self.receive_message(&message, mailbox, source).await
    }

    /// [`Processor::receive`] for a message as a source hands it over: with its source
    /// identity, the folder cursor to move in the same transaction (one commit instead of two,
    /// which keeps a single new message's latency near the server's own), and the declared
    /// size of a message the source refused to fetch. Sources reach it through
    /// [`crate::intake::Intake::take`], which decides when a message is processed inline.
    pub(crate) async fn receive_message(
        &self,
        message: &IntakeMessage,
        mailbox: Mailbox,
        source: InboundSource,
    ) -> Result<ReceiveOutcome, ProcessError> {
        // Parsed within the header and MIME-part caps; the raw bytes are stored whole.
        let capped = postern_mail::cap_message(&message.raw);
        let failure = match self
            .prepare(&capped, &message.raw, message.declared_size)
            .await
        {
            Ok(mut prepared) => match self
                .store_and_process(message, mailbox, source, &mut prepared)
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(failure) => failure,
            },
            Err(failure) => failure,
        };
        // Nothing of that transaction remains. Store the message alone, then record why it
        // could not be processed, so that it is durable either way and a failure that repeats
        // ends in quarantine instead of an endless retry.
        tracing::debug!(error = %failure, "processing at intake failed; storing the message alone");
        let stored = crate::intake::store_one(
            &self.store,
            mailbox,
            source,
            message,
            &self.config.quarantine_directory,
        )
        .await?;
        let id = match stored {
            crate::intake::Stored::New(id) | crate::intake::Stored::Duplicate(id) => id,
            crate::intake::Stored::Quarantined { id, reason } => {
                return Ok(quarantined_outcome(id.unwrap_or(0), reason));
            }
        };
        self.record_failure(id, &failure).await
    }

    /// Records that processing message `id` failed with `failure` (a temporary failure or an
    /// internal error; refusals are recorded by processing itself): a retry after a back-off
    /// that grows with the failure streak, or quarantine once the same reason repeated
    /// [`RetryPolicy::max_attempts`] times, or at once for an internal error.
    ///
    /// Nothing is recorded on a message that is finished: with several instances, another one
    /// may have processed it since this one's attempt was rolled back (this process was
    /// stopped, its session ended by the server, and the message taken over), and turning that
    /// message back into a failure would process it a second time.
    pub async fn record_failure(
        &self,
        id: i64,
        failure: &ProcessError,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let mut tx = self.store.begin().await?;
        if !tx.hold_unfinished_inbound(id).await? {
            let finished = tx.inbound_meta(id).await?;
            tx.commit().await?;
            tracing::info!(
                id,
                %failure,
                "processing failed here, but the message was finished meanwhile (by another instance); nothing recorded"
            );
            return Ok(duplicate_outcome(id, finished.and_then(|m| m.outcome)));
        }
        let outcome = match failure {
            ProcessError::Temporary(reason) => {
                let retry = &self.config.retry;
                let streak = tx
                    .fail_inbound_temporarily(id, ErrorKind::TemporaryFailure, reason, |streak| {
                        Timestamp::now().plus_seconds(retry.delay_seconds(streak))
                    })
                    .await?;
                if self.config.retry.gives_up(streak) {
                    let reason =
                        format!("failed {streak} times in a row, each time with: {reason}");
                    tx.quarantine_inbound(id, ErrorKind::RepeatedFailure, &reason)
                        .await?;
                    quarantined_outcome(id, reason)
                } else {
                    queued_outcome(id, reason.clone())
                }
            }
            other => {
                let reason = other.to_string();
                tx.quarantine_inbound(id, ErrorKind::Internal, &reason)
                    .await?;
                quarantined_outcome(id, reason)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn store_and_process(
        &self,
        message: &IntakeMessage,
        mailbox: Mailbox,
        source: InboundSource,
        prepared: &mut Prepared<'_>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let raw = &message.raw;
        let email = &prepared.email;
        let message_id = email.message_id().map(str::to_owned);
        let identity = content_identity(message_id.as_deref(), body_of(raw));
        self.prepare_git(prepared, mailbox).await;
        let mut tx = self.store.begin().await?;
        let inserted = tx
            .insert_inbound(&NewInbound {
                mailbox,
                source,
                message_id,
                raw: raw.as_ref().into(),
                source_identity: message.source_identity.clone(),
                content_identity: identity,
                declared_size: message.declared_size,
            })
            .await?;
        if let Some((folder, validity, position)) = &message.cursor {
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
                // transaction and then sees the message finished). A quarantined one stays
                // aside until someone asks for it.
                let stale_before = postern_store::Timestamp::now()
                    .plus_seconds(-crate::queue::STALE_CLAIM_SECONDS);
                if is_finished(state) || !tx.claim_inbound(first_id, None, stale_before).await? {
                    let first = tx.inbound_meta(first_id).await?;
                    tx.commit().await?;
                    return Ok(duplicate_outcome(first_id, first.and_then(|m| m.outcome)));
                }
                first_id
            }
        };
        let processed = async {
            let outcome = self.process_stored(&mut tx, id, prepared, mailbox).await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        if processed.is_err() {
            prepared.git.undo().await;
        }
        processed
    }

    /// Processes an already stored message again (`postern admin message reprocess`, the web
    /// mail desk's "Process again"); a quarantined one is released first.
    pub async fn reprocess(&self, id: i64) -> Result<Option<ReceiveOutcome>, ProcessError> {
        let message = {
            let mut read = self.store.begin_read_only().await?;
            match read.inbound(id).await? {
                Some(message) => message,
                None => return Ok(None),
            }
        };
        if message.meta.state == InboundState::Processed {
            // Its effect exists already; running it again would duplicate it.
            return Ok(Some(duplicate_outcome(id, message.meta.outcome)));
        }
        let capped = postern_mail::cap_message(&message.raw);
        let mut prepared = self
            .prepare(&capped, &message.raw, message.meta.declared_size)
            .await?;
        self.prepare_git(&mut prepared, message.meta.mailbox).await;
        let mut tx = self.store.begin().await?;
        tx.release_quarantined(id).await?;
        self.process_and_record(tx, &message, &mut prepared)
            .await
            .map(Some)
    }

    /// Claims and processes a stored message in one transaction: the queue's unit of work.
    /// `Ok(None)` when someone else holds it or it is finished. A claim older than
    /// `stale_before` is taken over. A failure is recorded ([`Processor::record_failure`]).
    pub async fn process_queued(
        &self,
        id: i64,
        stale_before: postern_store::Timestamp,
    ) -> Result<Option<ReceiveOutcome>, ProcessError> {
        // The raw bytes never change once stored, so they are read and parsed, and the text
        // work done, before the write transaction. On SQLite that keeps the single write lock,
        // which intake also needs, for the database work alone, and lets the queue's tasks
        // work in parallel.
        let message = {
            let mut read = self.store.begin_read_only().await?;
            match read.inbound(id).await? {
                Some(message) => message,
                None => return Ok(None),
            }
        };
        let capped = postern_mail::cap_message(&message.raw);
        let mut prepared = match self
            .prepare(&capped, &message.raw, message.meta.declared_size)
            .await
        {
            Ok(prepared) => prepared,
            Err(failure) => return self.record_failure(id, &failure).await.map(Some),
        };
        self.prepare_git(&mut prepared, message.meta.mailbox).await;
        let mut tx = self.store.begin().await?;
        if !tx.claim_inbound(id, None, stale_before).await? {
            return Ok(None);
        }
        self.process_and_record(tx, &message, &mut prepared)
            .await
            .map(Some)
    }

    /// Processes a claimed message and commits; a failure rolls that back and is recorded in
    /// a transaction of its own.
    async fn process_and_record(
        &self,
        mut tx: Tx,
        message: &postern_store::InboundMessage,
        prepared: &mut Prepared<'_>,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let processed = async {
            let outcome = self
                .process_stored(&mut tx, message.meta.id, prepared, message.meta.mailbox)
                .await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        match processed {
            Ok(outcome) => Ok(outcome),
            Err(failure) => {
                prepared.git.undo().await;
                self.record_failure(message.meta.id, &failure).await
            }
        }
    }

    async fn process_stored(
        &self,
        tx: &mut Tx,
        id: i64,
        prepared: &mut Prepared<'_>,
        mailbox: Mailbox,
    ) -> Result<ReceiveOutcome, ProcessError> {
        let decision = self.decide(tx, prepared, mailbox).await?;
        let Prepared {
            email,
            texts,
            uploads,
            git,
            trust,
            may_auto_reply,
            authenticated,
            ..
        } = prepared;
        let email = &*email;
        let (state, handler, result) = match decision {
            Decision::Ignored(rejection) => (InboundState::Ignored, None, Err(rejection)),
            Decision::Rejected(rejection) => (InboundState::Rejected, None, Err(rejection)),
            Decision::Route(route, key_only_in_references) => 'route: {
                let handler = route.kind();
                if let Some(instance) = authenticated.as_ref() {
                    // Decided again under the policy of the project the mail acts on, as
                    // that project is set now, in this transaction.
                    let project = handlers::project_of_route(tx, &route).await?;
                    if let Some(decided) = instance.for_project(project.as_ref()) {
                        *trust = decided.trust();
                        *may_auto_reply = decided.decision.may_auto_reply;
                        *authenticated = Some(decided);
                    }
                }
                if let Some(refusal) = sender_refusal(authenticated.as_ref(), &route)? {
                    break 'route (InboundState::Rejected, Some(handler), Err(refusal));
                }
                let mut context = Context {
                    tx,
                    email,
                    texts,
                    uploads,
                    config: &self.config,
                    repositories: &self.repositories,
                    git,
                    trust: *trust,
                    key_only_in_references,
                    may_auto_reply: *may_auto_reply,
                };
                match handlers::run(&mut context, &route, mailbox).await {
                    Ok(handled) => (InboundState::Processed, Some(handler), Ok(handled)),
                    Err(ProcessError::Rejected(rejection)) => {
                        (InboundState::Rejected, Some(handler), Err(rejection))
                    }
                    // Temporary failures and internal errors roll back (on PostgreSQL a failed
                    // statement spoils the transaction) and are recorded by the caller.
                    Err(failure) => return Err(failure),
                }
            }
        };
        let mut outcome = ReceiveOutcome {
            inbound_id: id,
            outcome: match state {
                InboundState::Processed => Outcome::Processed,
                InboundState::Ignored => Outcome::Ignored,
                _ => Outcome::Rejected,
            },
            handler,
            error: None,
            reason: None,
            created: None,
            reject_notice_queued: false,
            first_outcome: None,
            authentication: authenticated
                .as_ref()
                .map(|authenticated| Box::new(authenticated.record())),
        };
        match result {
            Ok(Handled { created }) => {
                if let Some(created) = &created {
                    record_origin(tx, id, created).await?;
                }
                outcome.created = created;
            }
            Err(rejection) => {
                outcome.error = Some(rejection.kind);
                outcome.reason = Some(rejection.recorded_reason().to_owned());
                if state == InboundState::Rejected {
                    outcome.reject_notice_queued = notice::queue_reject_notice(
                        tx,
                        email,
                        &rejection,
                        id,
                        &self.config,
                        *may_auto_reply,
                    )
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
                error_kind: outcome.error,
                reason: outcome.reason.clone(),
                outcome: Some(outcome_json),
            },
        )
        .await?;
        Ok(outcome)
    }

    /// Runs `git am` for a mail with patches before the write transaction, never while the
    /// store's write slot is held: the handler's checks in a read-only transaction, ended before
    /// git starts, then the patches applied without moving a ref (`handlers::merge_request`).
    async fn prepare_git(&self, prepared: &mut Prepared<'_>, mailbox: Mailbox) {
        use handlers::merge_request::{has_patches, plan};
        if prepared.early.is_some() || !has_patches(&prepared.email) {
            return;
        }
        let Ok(mut read) = self.store.begin_read_only().await else {
            return;
        };
        let plan = match self.decide(&mut read, prepared, mailbox).await {
            Ok(Decision::Route(route, _)) => {
                plan(
                    &mut read,
                    &route,
                    &prepared.email,
                    &prepared.texts,
                    &self.config,
                )
                .await
            }
            _ => None,
        };
        let _ = read.rollback().await; // read only: nothing to keep
        if let Some(plan) = plan {
            prepared.git.prepared = Some(plan.run(&self.repositories).await);
        }
    }
}

/// Records what message `inbound_id` created, so its page can show the original mail beside
/// the Markdown stored from it. Nothing is recorded when the item cannot be found again.
async fn record_origin(
    tx: &mut Tx,
    inbound_id: i64,
    created: &crate::processor::Created,
) -> Result<(), ProcessError> {
    let origin = if let Some(note_id) = created.note_id {
        tx.note_by_id(note_id).await?.map(|note| InboundOrigin {
            inbound_id,
            noteable: note.noteable,
            note_id: Some(note.id),
        })
    } else {
        let Some(iid) = created.iid else {
            return Ok(());
        };
        let Some(project) = tx.project_by_full_path(&created.project).await? else {
            return Ok(());
        };
        let noteable = match created.kind.as_str() {
            "merge_request" => tx
                .merge_request_by_iid(project.id, iid)
                .await?
                .map(|mr| Noteable::MergeRequest(mr.id)),
            _ => tx
                .issue_by_iid(project.id, iid)
                .await?
                .map(|issue| Noteable::Issue(issue.id)),
        };
        noteable.map(|noteable| InboundOrigin {
            inbound_id,
            noteable,
            note_id: None,
        })
    };
    if let Some(origin) = origin {
        tx.record_inbound_origin(&origin).await?;
    }
    Ok(())
}
