-- A large raw message may be kept as a file beside a SQLite database (see the store's
-- `raw_files`): its row then has an empty `raw` and the file's name here. NULL: the bytes are
-- in `raw`. PostgreSQL never sets it; the column exists so that both schemas stay the same.
ALTER TABLE inbound_raw ADD COLUMN file TEXT;
