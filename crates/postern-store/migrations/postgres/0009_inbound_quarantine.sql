-- A message that can never be processed as it is (a permanent store refusal, or the same
-- temporary failure again and again) is `quarantined`: kept with its raw bytes and the reason,
-- acknowledged to its source, skipped by every worker, and processed again only on request.
ALTER TABLE inbound_messages DROP CONSTRAINT inbound_messages_state_check;
ALTER TABLE inbound_messages ADD CONSTRAINT inbound_messages_state_check CHECK (state IN
    ('received', 'processing', 'processed', 'rejected', 'ignored', 'failed_temporary',
     'quarantined'));
-- How many attempts in a row failed temporarily with the same reason; a new reason starts
-- again at 1. Reaching the limit quarantines the message.
ALTER TABLE inbound_messages ADD COLUMN failure_streak BIGINT NOT NULL DEFAULT 0;
-- The size a source declared for a message it did not fetch because it was over the source's
-- size limit; the stored raw bytes are then only the header block. NULL: the raw bytes are the
-- whole message.
ALTER TABLE inbound_messages ADD COLUMN declared_size BIGINT;
