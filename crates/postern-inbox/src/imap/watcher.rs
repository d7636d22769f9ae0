//! One connected session's work: the catch-up scan, the incremental scan after each wake-up,
//! fetching in bounded batches, handing them to the [`Intake`] and acknowledging on the
//! server only what the intake accepted.
//!
//! The order of operations is the whole point. mail_room
//! (<https://github.com/tpitale/mail_room/blob/master/lib/mail_room/imap/connection.rb>)
//! fetches `RFC822`, which sets `\Seen` at once, so a message whose delivery fails stays read
//! and is never searched again; and it flags by sequence number, which is wrong once anyone
//! else expunges. Here `BODY.PEEK[]` never sets `\Seen`; `UID STORE` runs only after `take`
//! returned `Ok`; positions are UIDs, never sequence numbers; a failed intake leaves every
//! message of the batch untouched and the same batch is offered again.

use std::collections::HashSet;

use futures_util::TryStreamExt as _;

use super::connect::{Features, Session, command_error, timed, within};
use super::uids::{plan_batches, uid_set};
use super::{ImapError, ImapSettings};
use crate::headers::header_block;
use crate::intake::{Cursor, Fetched, Intake, IntakeError, MAX_HEADER_BLOCK};
use crate::status::SourceStatus;
use postern_vocab::Shutdown;
use postern_vocab::backoff::Streak;

/// UIDs per size-planning `FETCH` and per `known()` question: keeps command lines short.
const CHUNK: usize = 500;

/// Which part of a message a `FETCH` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The whole message, but never more than the size limit plus one byte.
    Whole,
    /// The header block only, for a message known to be over the size limit.
    Header,
}

/// Why a session's work stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The connection or the server failed: reconnect.
    Imap(ImapError),
    /// Shutdown was asked for.
    Shutdown,
}

impl From<ImapError> for Stop {
    fn from(error: ImapError) -> Stop {
        Stop::Imap(error)
    }
}

/// A connected watcher with its folder selected.
pub(crate) struct Watcher<'a, I> {
    pub settings: &'a ImapSettings,
    pub intake: &'a I,
    pub status: &'a SourceStatus,
    pub shutdown: Shutdown,
    /// `None` only while IDLE owns it, or after it was lost.
    pub session: Option<Session>,
    pub validity: u32,
    pub features: Features,
    /// The highest UID handled in this session: everything at or below it is taken in (or was
    /// found already stored).
    pub last_uid: u32,
    pub source: String,
    pub intake_backoff: Streak,
}

impl<I: Intake> Watcher<'_, I> {
    fn name(&self) -> &str {
        &self.settings.config().name
    }

    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.is_stopping()
    }

    pub(crate) fn session(&mut self) -> Result<&mut Session, Stop> {
        self.session
            .as_mut()
            .ok_or_else(|| Stop::Imap(ImapError::Connection("connection lost".to_owned())))
    }

    /// Finds everything not yet taken in, `\Seen` or not: every UID above the intake's cursor
    /// (all of them when the cursor is unknown or UIDVALIDITY changed), plus messages below it
    /// that were never acknowledged — those already stored are only acknowledged, the others
    /// fetched.
    pub(crate) async fn catch_up(&mut self) -> Result<(), Stop> {
        let source = self.source.clone();
        let validity = self.validity;
        let intake = self.intake;
        let cursor = self
            .with_intake(|| intake.cursor(&source, u64::from(validity)))
            .await?;
        // A cursor from another server's numbering cannot exceed u32; treat nonsense as none.
        let cursor = cursor
            .and_then(|c| u32::try_from(c).ok())
            .filter(|&c| c > 0);
        let mut wanted = match cursor {
            Some(c) => self.search_above(c).await?,
            None => self.search("ALL").await?,
        };
        if let Some(c) = cursor {
            let unacknowledged = if self.settings.config().delete_after_delivery {
                "UNDELETED"
            } else {
                "UNSEEN"
            };
            let below = self
                .search(&format!("UID 1:{c} {unacknowledged}"))
                .await?
                .into_iter()
                .filter(|&uid| uid <= c)
                .collect::<Vec<_>>();
            let stored = self.stored(&below).await?;
            let (acknowledge, fetch): (Vec<u32>, Vec<u32>) =
                below.into_iter().partition(|uid| stored.contains(uid));
            if !acknowledge.is_empty() {
                tracing::info!(
                    mailbox = %self.name(),
                    count = acknowledge.len(),
                    "acknowledging messages stored before an interruption"
                );
                self.acknowledge(&acknowledge).await?;
            }
            wanted.extend(fetch);
            wanted.sort_unstable();
            wanted.dedup();
        }
        self.last_uid = cursor.unwrap_or(0);
        tracing::info!(
            mailbox = %self.name(),
            uidvalidity = validity,
            cursor = cursor.unwrap_or(0),
            backlog = wanted.len(),
            "catch-up scan"
        );
        self.take_in(wanted).await
    }

    /// Takes in every message above the last UID handled.
    pub(crate) async fn incremental(&mut self) -> Result<(), Stop> {
        let wanted = self.search_above(self.last_uid).await?;
        self.take_in(wanted).await
    }

    /// UIDs above `uid`. `UID n:*` always matches the newest message, even below `n`, hence
    /// the filter.
    async fn search_above(&mut self, uid: u32) -> Result<Vec<u32>, Stop> {
        let Some(next) = uid.checked_add(1) else {
            return Ok(Vec::new());
        };
        Ok(self
            .search(&format!("UID {next}:*"))
            .await?
            .into_iter()
            .filter(|&found| found > uid)
            .collect())
    }

    /// `UID SEARCH query`, sorted.
    async fn search(&mut self, query: &str) -> Result<Vec<u32>, Stop> {
        let settings = self.settings;
        let session = self.session()?;
        let found = timed(settings, "UID SEARCH", async {
            session
                .uid_search(query)
                .await
                .map_err(|e| command_error(settings, "UID SEARCH", e))
        })
        .await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Which of `uids` the intake already stores.
    async fn stored(&mut self, uids: &[u32]) -> Result<HashSet<u32>, Stop> {
        let mut stored = HashSet::new();
        for chunk in uids.chunks(CHUNK) {
            let identities: Vec<String> = chunk
                .iter()
                .map(|&uid| self.settings.identity(self.validity, uid))
                .collect();
            let intake = self.intake;
            let known = self.with_intake(|| intake.known(&identities)).await?;
            stored.extend(
                chunk
                    .iter()
                    .zip(&identities)
                    .filter(|(_, identity)| known.contains(*identity))
                    .map(|(&uid, _)| uid),
            );
        }
        Ok(stored)
    }

    /// Fetches `uids` (sorted) in planned batches and hands each to the intake, acknowledging
    /// after each `Ok`.
    async fn take_in(&mut self, uids: Vec<u32>) -> Result<(), Stop> {
        if uids.is_empty() {
            self.status.set_backlog(0);
            return Ok(());
        }
        let mut remaining = uids.len() as u64;
        self.status.set_backlog(remaining);
        let config = self.settings.config();
        let max = config.max_message_size;
        let mut sizes = Vec::with_capacity(uids.len());
        if let [uid] = uids[..] {
            // One message is one batch whatever its size: the round trip for its size would
            // only delay it (the common case of a message announced during IDLE). Its fetch
            // is capped at the size limit anyway.
            sizes.push((uid, 0));
        } else {
            for chunk in uids.chunks(CHUNK) {
                sizes.extend(self.sizes(chunk).await?);
            }
        }
        // Known to be too large: only the header block is fetched, and planned as such.
        let oversized: HashSet<u32> = sizes
            .iter()
            .filter(|(_, size)| u64::from(*size) > max)
            .map(|(uid, _)| *uid)
            .collect();
        let header_size = u32::try_from(MAX_HEADER_BLOCK).unwrap_or(u32::MAX);
        for (uid, size) in &mut sizes {
            if oversized.contains(uid) {
                *size = header_size;
            }
        }
        let batches = plan_batches(&sizes, config.batch_max_messages, config.batch_max_bytes);
        for batch in batches {
            // Between batches is the one place shutdown interrupts a scan: nothing is in hand.
            if self.stopping() {
                return Err(Stop::Shutdown);
            }
            let started = std::time::Instant::now();
            let fetched = self.fetch(&batch, &oversized).await?;
            let fetch_ms = started.elapsed().as_millis() as u64;
            let count = fetched.len() as u64;
            let bytes: usize = fetched.iter().map(|m| m.raw.len()).sum();
            let intake = self.intake;
            self.with_intake(|| intake.take(fetched.clone())).await?;
            let store_ms = started.elapsed().as_millis() as u64 - fetch_ms;
            self.acknowledge(&batch).await?;
            let acknowledge_ms = started.elapsed().as_millis() as u64 - fetch_ms - store_ms;
            self.intake_backoff.reset();
            self.status.taken(count);
            remaining = remaining.saturating_sub(batch.len() as u64);
            self.status.set_backlog(remaining);
            if let Some(&highest) = batch.last() {
                self.last_uid = self.last_uid.max(highest);
            }
            tracing::info!(
                mailbox = %self.name(),
                messages = count,
                bytes,
                backlog = remaining,
                fetch_ms,
                store_ms,
                acknowledge_ms,
                "batch taken in and acknowledged"
            );
        }
        Ok(())
    }

    /// `(uid, RFC822.SIZE)` of `uids`, in UID order; messages gone meanwhile are left out.
    async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, Stop> {
        let settings = self.settings;
        let set = uid_set(uids);
        let session = self.session()?;
        let mut sizes = timed(settings, "UID FETCH (RFC822.SIZE)", async {
            let mut stream = session
                .uid_fetch(&set, "(UID RFC822.SIZE)")
                .await
                .map_err(|e| command_error(settings, "UID FETCH", e))?;
            let mut sizes = Vec::new();
            while let Some(fetch) = stream
                .try_next()
                .await
                .map_err(|e| command_error(settings, "UID FETCH", e))?
            {
                if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
                    sizes.push((uid, size));
                }
            }
            Ok(sizes)
        })
        .await?;
        sizes.sort_unstable();
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// One batch with `BODY.PEEK[]` (so nothing is flagged yet), the messages in `oversized`
    /// as their header block only. Every message asked for must come back, unless it is
    /// verifiably gone from the folder: a response cut short by a dropped connection must not
    /// look like a smaller batch. A message found larger than the limit only now (by its
    /// `RFC822.SIZE` or by what arrived) is handed on as its header block too.
    async fn fetch(
        &mut self,
        uids: &[u32],
        oversized: &HashSet<u32>,
    ) -> Result<Vec<Fetched>, Stop> {
        let max = self.settings.config().max_message_size;
        let (headers_only, whole): (Vec<u32>, Vec<u32>) =
            uids.iter().partition(|uid| oversized.contains(uid));
        let mut found = Vec::with_capacity(uids.len());
        if !whole.is_empty() {
            found.extend(self.fetch_part(&whole, Part::Whole).await?);
        }
        if !headers_only.is_empty() {
            found.extend(self.fetch_part(&headers_only, Part::Header).await?);
        }
        found.sort_by_key(|(uid, _, _, _)| *uid);
        found.dedup_by_key(|(uid, _, _, _)| *uid);
        let returned: HashSet<u32> = found.iter().map(|(uid, _, _, _)| *uid).collect();
        let missing: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|uid| !returned.contains(uid))
            .collect();
        if !missing.is_empty() {
            let still_there: Vec<u32> = self
                .search(&format!("UID {}", uid_set(&missing)))
                .await?
                .into_iter()
                .filter(|uid| missing.contains(uid))
                .collect();
            if !still_there.is_empty() {
                return Err(Stop::Imap(ImapError::Protocol(format!(
                    "the server did not return UID {} of the batch",
                    uid_set(&still_there)
                ))));
            }
            tracing::info!(
                mailbox = %self.name(),
                uids = %uid_set(&missing),
                "messages removed by another client before they were fetched"
            );
        }
        Ok(found
            .into_iter()
            .map(|(uid, part, declared, data)| {
                let arrived = data.len() as u64;
                let too_large = part == Part::Header
                    || arrived > max
                    || declared.is_some_and(|size| u64::from(size) > max);
                let (raw, oversized) = if too_large {
                    let size = declared.map_or(arrived, u64::from).max(arrived);
                    (header_block(&data, MAX_HEADER_BLOCK).to_vec(), Some(size))
                } else {
                    (data, None)
                };
                tracing::info!(
                    mailbox = %self.name(),
                    uid,
                    bytes = raw.len(),
                    oversized,
                    message_id = postern_mail::message_id_for_log(&raw).as_deref(),
                    "message fetched"
                );
                if let Some(size) = oversized {
                    tracing::warn!(
                        mailbox = %self.name(),
                        uid,
                        size,
                        max,
                        "message over the size limit: handed on as its header block"
                    );
                }
                Fetched {
                    identity: self.settings.identity(self.validity, uid),
                    cursor: Some(Cursor {
                        source: self.source.clone(),
                        validity: u64::from(self.validity),
                        position: u64::from(uid),
                    }),
                    raw: raw.into(),
                    oversized,
                }
            })
            .collect())
    }

    /// `UID FETCH` of one part of `uids`: `(uid, part, RFC822.SIZE, bytes)` per message
    /// returned. Each message may take `command_timeout` to arrive: a slow server that keeps
    /// sending is fine, a silent one is not.
    async fn fetch_part(
        &mut self,
        uids: &[u32],
        part: Part,
    ) -> Result<Vec<(u32, Part, Option<u32>, Vec<u8>)>, Stop> {
        let settings = self.settings;
        let per_response = settings.config().command_timeout;
        // A partial fetch: the server never sends more than this, whatever the message holds.
        let items = match part {
            Part::Whole => {
                let most = settings.config().max_message_size.saturating_add(1);
                let most = u32::try_from(most).unwrap_or(u32::MAX);
                format!("(UID RFC822.SIZE BODY.PEEK[]<0.{most}>)")
            }
            Part::Header => format!("(UID RFC822.SIZE BODY.PEEK[HEADER]<0.{MAX_HEADER_BLOCK}>)"),
        };
        let set = uid_set(uids);
        let session = self.session()?;
        let mut stream = timed(settings, "UID FETCH", async {
            session
                .uid_fetch(&set, &items)
                .await
                .map_err(|e| command_error(settings, "UID FETCH", e))
        })
        .await?;
        let mut found = Vec::with_capacity(uids.len());
        while let Some(fetch) = within(per_response, "UID FETCH (a message body)", async {
            stream
                .try_next()
                .await
                .map_err(|e| command_error(settings, "UID FETCH", e))
        })
        .await?
        {
            let data = match part {
                Part::Whole => fetch.body(),
                Part::Header => fetch.header(),
            };
            if let (Some(uid), Some(data)) = (fetch.uid, data) {
                found.push((uid, part, fetch.size, data.to_vec()));
            }
        }
        Ok(found)
    }

    /// Marks `uids` as handled on the server: `\Seen`, or `\Seen \Deleted` and then
    /// `UID EXPUNGE` of exactly these UIDs (with UIDPLUS) or a plain `EXPUNGE` when the
    /// settings ask for it on servers without UIDPLUS.
    async fn acknowledge(&mut self, uids: &[u32]) -> Result<(), Stop> {
        let settings = self.settings;
        let config = settings.config();
        let features = self.features;
        for chunk in uids.chunks(CHUNK) {
            let set = uid_set(chunk);
            let flags = if config.delete_after_delivery {
                "(\\Seen \\Deleted)"
            } else {
                "(\\Seen)"
            };
            let session = self.session()?;
            run(
                settings,
                session,
                "UID STORE",
                &format!("UID STORE {set} +FLAGS.SILENT {flags}"),
            )
            .await?;
            if config.delete_after_delivery {
                if features.uidplus {
                    run(
                        settings,
                        session,
                        "UID EXPUNGE",
                        &format!("UID EXPUNGE {set}"),
                    )
                    .await?;
                } else if config.expunge_deleted {
                    run(settings, session, "EXPUNGE", "EXPUNGE").await?;
                }
            }
        }
        Ok(())
    }

    /// Calls the intake until it answers: an unavailable store is waited for with back-off
    /// while the connection is kept alive (and checked) with `NOOP`; shutdown ends the wait.
    async fn with_intake<T, F, Fut>(&mut self, call: F) -> Result<T, Stop>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, IntakeError>>,
    {
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let delay = self.intake_backoff.next_delay();
                    tracing::warn!(
                        mailbox = %self.name(),
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "the store did not take the messages; nothing acknowledged, retrying"
                    );
                    if self.shutdown.sleep(delay).await {
                        return Err(Stop::Shutdown);
                    }
                    let settings = self.settings;
                    let session = self.session()?;
                    run(settings, session, "NOOP", "NOOP").await?;
                }
            }
        }
    }
}

/// Runs one command that answers only with its tagged status, which must be `OK`.
async fn run(
    settings: &ImapSettings,
    session: &mut Session,
    what: &str,
    command: &str,
) -> Result<(), ImapError> {
    timed(settings, what, async {
        session
            .run_command_and_check_ok(command)
            .await
            .map_err(|e| command_error(settings, what, e))
    })
    .await
}
