//! postern-outbox against real servers: mail queued in the store (SQLite and PostgreSQL) goes
//! through a private Postfix into a private Dovecot and is read back over IMAP; the folder
//! transport writes files; failures are retried or failed as they should; two workers never
//! send one mail twice. Loops are bounded; no timing is asserted.

mod folder;
mod race;
mod smtp;
mod support;
