-- no-transaction
-- A message that can never be processed as it is (a permanent store refusal, or the same
-- temporary failure again and again) is `quarantined`: kept with its raw bytes and the reason,
-- acknowledged to its source, skipped by every worker, and processed again only on request.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (SQLite's own
-- procedure, https://www.sqlite.org/lang_altertable.html#otheralter). Foreign keys are off
-- while it runs: with them on, dropping the old table would delete every `inbound_raw` row
-- (ON DELETE CASCADE) and unlink every outbox row. The pragma cannot change inside a
-- transaction, hence `no-transaction` above and the explicit BEGIN/COMMIT.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE inbound_messages_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at      INTEGER NOT NULL,
    mailbox          TEXT    NOT NULL CHECK (mailbox IN ('incoming', 'service_desk')),
    source           TEXT    NOT NULL CHECK (source IN ('pipe', 'lmtp', 'imap', 'graph')),
    message_id       TEXT,
    size             INTEGER NOT NULL,
    source_identity  TEXT    CONSTRAINT inbound_messages_source_identity_key UNIQUE,
    content_identity TEXT    NOT NULL CONSTRAINT inbound_messages_content_identity_key UNIQUE,
    state            TEXT    NOT NULL DEFAULT 'received' CHECK (state IN
                         ('received', 'processing', 'processed', 'rejected', 'ignored',
                          'failed_temporary', 'quarantined')),
    handler          TEXT,
    error_kind       TEXT,
    reason           TEXT,
    outcome          TEXT,
    processed_at     INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_at       INTEGER,
    next_attempt_at  BIGINT,
    -- How many attempts in a row failed temporarily with the same reason; a new reason
    -- starts again at 1. Reaching the limit quarantines the message.
    failure_streak   INTEGER NOT NULL DEFAULT 0,
    -- The size a source declared for a message it did not fetch because it was over the
    -- source's size limit; the stored raw bytes are then only the header block.
    declared_size    INTEGER
);
INSERT INTO inbound_messages_rebuilt (id, received_at, mailbox, source, message_id, size,
                                      source_identity, content_identity, state, handler,
                                      error_kind, reason, outcome, processed_at, attempts,
                                      claimed_at, next_attempt_at)
    SELECT id, received_at, mailbox, source, message_id, size, source_identity,
           content_identity, state, handler, error_kind, reason, outcome, processed_at,
           attempts, claimed_at, next_attempt_at
    FROM inbound_messages;
DROP TABLE inbound_messages;
ALTER TABLE inbound_messages_rebuilt RENAME TO inbound_messages;
CREATE INDEX inbound_messages_state_idx ON inbound_messages (state, id);
COMMIT;
PRAGMA foreign_keys = ON;
