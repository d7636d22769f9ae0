-- A sender claims an outbox entry before handing it to the relay, so two workers (or a worker
-- restarted after a crash) never send the same entry at the same time. NULL: not claimed.
-- Same column on SQLite (migrations/sqlite/0002_outbox_claim.sql).
ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
