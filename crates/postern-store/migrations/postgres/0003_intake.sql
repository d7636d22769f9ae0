-- How far each ordered source (an IMAP folder under one UIDVALIDITY) has been taken in, so a
-- catch-up scan finds messages another client already marked \Seen. Same table on SQLite
-- (migrations/sqlite/0003_intake.sql).
CREATE TABLE intake_cursors (
    source   TEXT   NOT NULL,
    validity BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (source, validity)
);
