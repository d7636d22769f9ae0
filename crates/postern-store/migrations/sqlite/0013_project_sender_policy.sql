-- A project's own sender-authentication policy: 'dmarc' or 'require'; NULL follows the
-- instance's `sender_authentication: policy`. A project only ever tightens the instance's
-- policy (postern-core's `authentication::effective_policy`).
-- Same column on PostgreSQL (migrations/postgres/0013_project_sender_policy.sql).
ALTER TABLE projects ADD COLUMN sender_policy TEXT
    CHECK (sender_policy IS NULL OR sender_policy IN ('dmarc', 'require'));
