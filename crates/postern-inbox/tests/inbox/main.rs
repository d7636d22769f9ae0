//! postern-inbox against real parts: the IMAP watcher against private Dovecot servers (and a
//! scripted server for hostile responses), OAuth for IMAP against Dovecot's `oauth2` passdb,
//! the Microsoft Graph watcher against the stand-in of Graph, and the LMTP/SMTP listener over
//! real TCP. Every wait is bounded; nothing asserts on timing.
#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic is the failure report"
)]

pub mod graph_support;
pub mod imap_common;
pub mod log_capture;

mod graph;
mod graph_faults;
mod graph_limits;
mod graph_logs;
mod graph_throttling;
mod imap_faults;
mod imap_limits;
mod imap_minimal_server;
mod imap_oauth;
mod imap_watch;
mod imap_xoauth2;
mod listener;
