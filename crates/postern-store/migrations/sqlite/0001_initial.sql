-- postern initial schema (SQLite). Keep equivalent to migrations/postgres/0001_initial.sql:
-- same tables, columns, constraints and index names; only the types differ
-- (INTEGER PRIMARY KEY AUTOINCREMENT ~ BIGINT IDENTITY, BLOB ~ BYTEA).
-- Timestamps are UTC seconds (INTEGER). *_lower columns are folded in Rust, not with lower(),
-- so both backends agree on non-ASCII text.

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    username             TEXT    NOT NULL,
    username_lower       TEXT    NOT NULL CONSTRAINT users_username_lower_key UNIQUE,
    name                 TEXT    NOT NULL,
    state                TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
    admin                BOOLEAN NOT NULL DEFAULT FALSE,
    kind                 TEXT    NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'support_bot')),
    incoming_email_token TEXT    NOT NULL CONSTRAINT users_incoming_email_token_key UNIQUE,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
-- One Support Bot per instance (GitLab: per organization; postern has one).
CREATE UNIQUE INDEX users_one_support_bot ON users (kind) WHERE kind = 'support_bot';

CREATE TABLE user_emails (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT    NOT NULL,
    email_lower TEXT    NOT NULL CONSTRAINT user_emails_email_lower_key UNIQUE,
    is_primary  BOOLEAN NOT NULL DEFAULT FALSE,
    verified    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX user_emails_one_primary ON user_emails (user_id) WHERE is_primary;

CREATE TABLE projects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace_path  TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    full_path       TEXT    NOT NULL,
    full_path_lower TEXT    NOT NULL CONSTRAINT projects_full_path_lower_key UNIQUE,
    full_path_slug  TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    visibility      TEXT    NOT NULL DEFAULT 'private'
                            CHECK (visibility IN ('private', 'internal', 'public')),
    archived        BOOLEAN NOT NULL DEFAULT FALSE,
    default_branch  TEXT    NOT NULL DEFAULT 'main',
    -- Service Desk settings live on the project row (1:1) so that "project_key unique per
    -- slug" can be a plain table constraint.
    sd_enabled                                 BOOLEAN NOT NULL DEFAULT FALSE,
    sd_project_key                             TEXT,
    sd_custom_email                            TEXT,
    sd_custom_email_lower                      TEXT,
    sd_custom_email_enabled                    BOOLEAN NOT NULL DEFAULT FALSE,
    sd_custom_email_verification_state         TEXT
        CHECK (sd_custom_email_verification_state IN ('started', 'finished', 'failed')),
    sd_custom_email_verification_token         TEXT,
    sd_custom_email_verification_error         TEXT,
    sd_custom_email_verification_triggered_at  INTEGER,
    sd_custom_email_verification_triggerer_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    sd_tickets_confidential_by_default         BOOLEAN NOT NULL DEFAULT TRUE,
    sd_reopen_issue_on_external_participant_note BOOLEAN NOT NULL DEFAULT FALSE,
    sd_add_external_participants_from_cc       BOOLEAN NOT NULL DEFAULT FALSE,
    sd_issue_template_key                      TEXT,
    sd_issue_template_content                  TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT projects_sd_slug_key UNIQUE (full_path_slug, sd_project_key)
);
CREATE INDEX projects_full_path_slug_idx ON projects (full_path_slug);
CREATE INDEX projects_sd_custom_email_lower_idx ON projects (sd_custom_email_lower);

CREATE TABLE members (
    project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_level INTEGER NOT NULL CHECK (access_level IN (10, 20, 30, 40, 50)),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);

-- Per-project iid counters; kind is 'issue' or 'merge_request' (separate sequences, as in
-- GitLab; tickets share the issue sequence).
CREATE TABLE iid_counters (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('issue', 'merge_request')),
    last_value INTEGER NOT NULL,
    PRIMARY KEY (project_id, kind)
);

CREATE TABLE issues (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id        INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    iid               INTEGER NOT NULL,
    issue_type        TEXT    NOT NULL DEFAULT 'issue' CHECK (issue_type IN ('issue', 'ticket')),
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL DEFAULT 'opened' CHECK (state IN ('opened', 'closed')),
    confidential      BOOLEAN NOT NULL DEFAULT FALSE,
    discussion_locked BOOLEAN NOT NULL DEFAULT FALSE,
    due_date          TEXT,
    author_id         INTEGER NOT NULL REFERENCES users (id),
    external_author   TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    closed_at         INTEGER,
    CONSTRAINT issues_project_iid_key UNIQUE (project_id, iid)
);

CREATE TABLE issue_labels (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    label    TEXT    NOT NULL,
    PRIMARY KEY (issue_id, label)
);

CREATE TABLE issue_assignees (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issue_id, user_id)
);

CREATE TABLE issue_email_participants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id    INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    email       TEXT    NOT NULL,
    email_lower TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT issue_email_participants_issue_email_key UNIQUE (issue_id, email_lower)
);

-- The Message-ID of the mail that opened an issue (GitLab's Issue::Email), so a customer's
-- reply (In-Reply-To) finds its ticket.
CREATE TABLE issue_emails (
    issue_id   INTEGER NOT NULL PRIMARY KEY REFERENCES issues (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    message_id TEXT    NOT NULL
);
CREATE INDEX issue_emails_project_message_idx ON issue_emails (project_id, message_id);

CREATE TABLE merge_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    iid           INTEGER NOT NULL,
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    source_branch TEXT    NOT NULL,
    target_branch TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'opened' CHECK (state IN ('opened', 'closed', 'merged')),
    author_id     INTEGER NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT merge_requests_project_iid_key UNIQUE (project_id, iid)
);

CREATE TABLE merge_request_commits (
    merge_request_id INTEGER NOT NULL REFERENCES merge_requests (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    sha              TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    message          TEXT    NOT NULL,
    author_name      TEXT    NOT NULL,
    author_email     TEXT    NOT NULL,
    PRIMARY KEY (merge_request_id, position)
);

-- Notes point at their noteable by (type, id); no foreign key because the target table
-- depends on the type.
CREATE TABLE notes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    noteable_type   TEXT    NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id     INTEGER NOT NULL,
    author_id       INTEGER NOT NULL REFERENCES users (id),
    body            TEXT    NOT NULL,
    external_author TEXT,
    discussion_id   TEXT    NOT NULL,
    internal        BOOLEAN NOT NULL DEFAULT FALSE,
    system          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX notes_noteable_idx ON notes (noteable_type, noteable_id, id);
CREATE INDEX notes_discussion_idx ON notes (discussion_id);

CREATE TABLE sent_notifications (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    partition_id              INTEGER NOT NULL,
    reply_key                 TEXT    NOT NULL,
    namespace_id              INTEGER NOT NULL,
    recipient_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id                INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    noteable_type             TEXT    NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id               INTEGER NOT NULL,
    in_reply_to_discussion_id TEXT,
    created_at                INTEGER NOT NULL,
    CONSTRAINT sent_notifications_partition_reply_key_key UNIQUE (partition_id, reply_key)
);
CREATE INDEX sent_notifications_reply_key_idx ON sent_notifications (reply_key);

CREATE TABLE subscriptions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    noteable_type TEXT    NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id   INTEGER NOT NULL,
    subscribed    BOOLEAN NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT subscriptions_user_noteable_key UNIQUE (user_id, noteable_type, noteable_id)
);
CREATE INDEX subscriptions_noteable_idx ON subscriptions (noteable_type, noteable_id);

-- Upload metadata only; the bytes are a file under the data directory at relative_path.
CREATE TABLE uploads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret        TEXT    NOT NULL CONSTRAINT uploads_secret_key UNIQUE,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    uploaded_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    relative_path TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX uploads_project_idx ON uploads (project_id);

-- Every message received, durable before the source is acknowledged.
CREATE TABLE inbound_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at      INTEGER NOT NULL,
    mailbox          TEXT    NOT NULL CHECK (mailbox IN ('incoming', 'service_desk')),
    source           TEXT    NOT NULL CHECK (source IN ('pipe', 'lmtp', 'imap', 'graph')),
    message_id       TEXT,
    raw              BLOB    NOT NULL,
    size             INTEGER NOT NULL,
    source_identity  TEXT    CONSTRAINT inbound_messages_source_identity_key UNIQUE,
    content_identity TEXT    NOT NULL CONSTRAINT inbound_messages_content_identity_key UNIQUE,
    state            TEXT    NOT NULL DEFAULT 'received' CHECK (state IN
                         ('received', 'processing', 'processed', 'rejected', 'ignored',
                          'failed_temporary')),
    handler          TEXT,
    error_kind       TEXT,
    reason           TEXT,
    outcome          TEXT,
    processed_at     INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_at       INTEGER
);
CREATE INDEX inbound_messages_state_idx ON inbound_messages (state, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    inbound_id      INTEGER REFERENCES inbound_messages (id) ON DELETE SET NULL,
    state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER,
    dedupe_key      TEXT    CONSTRAINT outbox_dedupe_key_key UNIQUE
);
CREATE INDEX outbox_due_idx ON outbox (state, next_attempt_at);

CREATE TABLE settings (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
