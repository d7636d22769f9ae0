-- The bytes of an upload, kept with its row: what a PostgreSQL store does, so that any instance
-- sharing the database serves any upload. A SQLite database is one machine's, and its uploads
-- stay files under the data directory (written once, outside the WAL); the table exists so that
-- both schemas, and the query that reads an upload's bytes, stay the same.
CREATE TABLE upload_contents (
    upload_id INTEGER PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    content   BLOB    NOT NULL
);
