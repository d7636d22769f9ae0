-- Incoming-email tokens protected at rest. Keep equivalent to the other backend's 0012.
--
-- A token acts by mail as its user, so the database keeps only its hex SHA-256 (what a lookup
-- needs) and a sealed copy (ChaCha20-Poly1305 under a key kept in the data directory, never
-- here), from which the user's new-issue address is shown again. The sealing itself happens in
-- Rust after the migrations (`Store::migrate`, `seal_stored_incoming_tokens` in users.rs), and
-- only in a store opened with the key: until then a row keeps its plain token in the renamed
-- column with `incoming_email_token_sealed` NULL, and lookups accept both forms. The unique
-- constraint on the renamed column stays.
ALTER TABLE users RENAME COLUMN incoming_email_token TO incoming_email_token_hash;
ALTER TABLE users ADD COLUMN incoming_email_token_sealed TEXT;
