-- The raw bytes live in their own table, as on SQLite (where every UPDATE of a row rewrites
-- its overflow pages); one schema for both keeps the queries the same.
CREATE TABLE inbound_raw (
    inbound_id BIGINT PRIMARY KEY REFERENCES inbound_messages (id) ON DELETE CASCADE,
    raw        BYTEA  NOT NULL
);
INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound_messages;
ALTER TABLE inbound_messages DROP COLUMN raw;
