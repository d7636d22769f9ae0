-- When a message that failed temporarily may be tried again (GitLab companion mode: the webhook
-- or Redis was unavailable). NULL: at once. A poison message waits its own back-off instead of
-- blocking the ones behind it. Same column on both backends.
ALTER TABLE inbound_messages ADD COLUMN next_attempt_at BIGINT;
