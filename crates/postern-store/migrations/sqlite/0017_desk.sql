-- One-click unsubscribe (RFC 8058): each notification's List-Unsubscribe carries, beside the
-- mailto, an HTTPS link with a token of its own, not the reply key: a URL ends up in proxy and
-- server logs, and the reply key acts by mail as the recipient. The token is stored as its hex
-- SHA-256, like reply keys, so a copy of the database unsubscribes no one. NULL for
-- notifications sent without a web address. Same text on both backends.
ALTER TABLE sent_notifications ADD COLUMN unsubscribe_token_hash TEXT;
CREATE UNIQUE INDEX sent_notifications_unsubscribe_token_idx
    ON sent_notifications (unsubscribe_token_hash);

-- What a processed message created (an issue, a ticket, a merge request or a comment), so the
-- page can show a readable view of the original mail (its HTML) beside the stored Markdown.
-- note_id is NULL for the item itself (its description). Goes with the message when it is
-- trimmed.
CREATE TABLE inbound_origins (
    inbound_id    INTEGER PRIMARY KEY REFERENCES inbound_messages (id) ON DELETE CASCADE,
    noteable_type TEXT    NOT NULL,
    noteable_id   INTEGER NOT NULL,
    note_id       INTEGER
);
CREATE INDEX inbound_origins_noteable_idx ON inbound_origins (noteable_type, noteable_id);
