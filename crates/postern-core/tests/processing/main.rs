//! End-to-end processing with GitLab's fixtures: every handler path and error kind, on a SQLite
//! file and on a private PostgreSQL server (see `postern_testkit`).

mod support;

mod access;
mod auto_mail;
mod body_of;
mod delivery;
mod hostile;
mod internal_notes;
mod issues;
mod merge_requests;
mod notes;
mod notification_levels;
mod notifications;
mod outside_unsubscribe;
mod queue;
mod service_desk;
mod settings;
mod system_notes;
mod ticket_closed;
mod titles;
