-- Counters of mail sent per window of time, one row per bucket (a recipient, or the whole
-- instance): the current window's start and how much of it is used. A bucket from an earlier
-- window starts again at 1 when it is next used; stale rows are deleted in passing.
-- Same table on SQLite (migrations/sqlite/0011_send_counters.sql).
CREATE TABLE send_counters (
    bucket       TEXT   PRIMARY KEY,
    window_start BIGINT NOT NULL,
    used         BIGINT NOT NULL
);
CREATE INDEX send_counters_window_idx ON send_counters (window_start);
