-- The raw bytes move to their own table. SQLite rewrites a whole row, overflow pages included,
-- on every UPDATE: with the raw message in `inbound_messages`, each claim and each outcome
-- wrote the message to the WAL again (and the checkpoint copied it again), three to four times
-- the message's size per message processed. State changes now touch a row of a few hundred bytes.
CREATE TABLE inbound_raw (
    inbound_id INTEGER PRIMARY KEY REFERENCES inbound_messages (id) ON DELETE CASCADE,
    raw        BLOB    NOT NULL
);
INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound_messages;
ALTER TABLE inbound_messages DROP COLUMN raw;
