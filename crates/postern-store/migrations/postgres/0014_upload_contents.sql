-- The bytes of an upload (a mail attachment), kept with its row. Several instances may share one
-- PostgreSQL database, each with a data directory of its own: bytes in one instance's directory
-- could be served by that instance only. Written in the transaction that records the upload;
-- an upload recorded before this migration has no row here and stays a file under the data
-- directory of the instance that received it (see the store's `uploads`).
CREATE TABLE upload_contents (
    upload_id BIGINT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    content   BYTEA  NOT NULL
);
