-- How much mail a person wants (GitLab's notification levels): per project, or for every
-- project when project_id is 0 (their global level). No row: 'global' for a project, and
-- 'participating' as the global level. postern-core's `notification_levels` reads them.
-- Same table on PostgreSQL (migrations/postgres/0018_notification_levels.sql).
CREATE TABLE notification_levels (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL,
    level      TEXT    NOT NULL
        CHECK (level IN ('global', 'participating', 'watch', 'disabled')),
    PRIMARY KEY (user_id, project_id)
);
CREATE INDEX notification_levels_project_idx ON notification_levels (project_id, level);
