//! postern-git against the real git: creating and reading repositories, applying GitLab's
//! fixture patches, refusing patch bombs, branch-name rules, and the timeout and
//! concurrent-change guards (with stand-in git scripts written by `common::write_script`).
#![allow(
    clippy::unwrap_used,
    reason = "in a test, a panic is the failure report"
)]

pub mod common;

mod apply_patches;
mod concurrent_change;
mod patch_bombs;
mod refname;
mod repository;
mod timeout;
