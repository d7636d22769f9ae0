-- Keys and addresses that cannot be borrowed. Keep equivalent to the other backend's 0010.
--
-- Reply keys are kept as the hex SHA-256 of the key, like API tokens: a reply only needs the
-- key checked, and a copy of the database then holds no key that acts by mail. SQLite has no
-- SHA-256 function, so the hashing itself is done in Rust right after the migrations
-- (`Store::migrate`, `hash_stored_reply_keys` in notifications.rs), for both backends alike: a row whose value
-- is not 64 characters still holds a plain key (a key is 25 or 32 characters), so an
-- interrupted run is finished by the next start, and lookups accept both until then.
ALTER TABLE sent_notifications RENAME COLUMN reply_key TO reply_key_hash;

-- A Service Desk custom email belongs to one project. Existing duplicates are settled the same
-- way on every run: the verified project keeps the address, else the oldest (lowest id); the
-- others lose it (with its verification) and are listed in custom_email_cleared, which
-- `Store::migrate` logs and then empties.
CREATE TABLE custom_email_cleared (
    project_id   BIGINT NOT NULL,
    custom_email TEXT   NOT NULL
);
INSERT INTO custom_email_cleared (project_id, custom_email)
SELECT p.id, p.sd_custom_email FROM projects p
WHERE p.sd_custom_email_lower IS NOT NULL
  AND p.id <> (
      SELECT k.id FROM projects k
      WHERE k.sd_custom_email_lower = p.sd_custom_email_lower
      ORDER BY CASE WHEN k.sd_custom_email_verification_state = 'finished' THEN 0 ELSE 1 END,
               k.id
      LIMIT 1);
UPDATE projects SET
    sd_custom_email = NULL, sd_custom_email_lower = NULL, sd_custom_email_enabled = FALSE,
    sd_custom_email_verification_state = NULL, sd_custom_email_verification_token = NULL,
    sd_custom_email_verification_error = NULL, sd_custom_email_verification_triggered_at = NULL,
    sd_custom_email_verification_triggerer_id = NULL
WHERE id IN (SELECT project_id FROM custom_email_cleared);
DROP INDEX projects_sd_custom_email_lower_idx;
CREATE UNIQUE INDEX projects_sd_custom_email_lower_key ON projects (sd_custom_email_lower);

-- Branches a merge request by email may not use as its source. Every project's default
-- branch starts protected; new projects get the same row when they are created.
CREATE TABLE protected_branches (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);
INSERT INTO protected_branches (project_id, name, created_at)
SELECT id, default_branch, updated_at FROM projects;
