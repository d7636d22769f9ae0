-- How far each ordered source (an IMAP folder under one UIDVALIDITY) has been taken in, so a
-- catch-up scan finds messages another client already marked \Seen. Same table on PostgreSQL
-- (migrations/postgres/0003_intake.sql).
CREATE TABLE intake_cursors (
    source   TEXT    NOT NULL,
    validity INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (source, validity)
);
