//! postern-gitlab against real parts: configuration import from GitLab's three formats,
//! `postern check --gitlab-config`, webhook delivery to the stand-in of GitLab's mail_room
//! API, Sidekiq delivery into a private Redis, and several deliverers sharing one PostgreSQL
//! store.
#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic is the failure report"
)]

pub mod common;

mod arbiter;
mod check;
mod deliverer;
mod import;
mod sidekiq;
mod webhook;
