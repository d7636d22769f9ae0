//! Integration tests of postern-store on real databases: every test body runs once on a SQLite
//! file and once on a private PostgreSQL server (see `support/pg.rs`).

mod support;

mod inbound;
mod inbound_retry;
mod incoming_tokens;
mod intake;
mod issues;
mod leases;
mod lifecycle;
mod migration_0010;
mod notes;
mod notifications;
mod outbox;
mod projects;
mod quarantine;
mod schema;
mod search;
mod send_counters;
mod uploads;
mod users;
mod web;
