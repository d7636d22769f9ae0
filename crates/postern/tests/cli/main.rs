//! Integration tests of the `postern` binary: the real executable run with
//! `std::process::Command`, each test in its own temporary working directory (so the default
//! `./postern-data` lands there), against GitLab's and Discourse's fixtures in `testdata/`.
//!
//! `browser` runs `postern serve` without configuration on its default ports and drives the
//! first run in headless Chromium (`POSTERN_SKIP_CHROMIUM=1` skips it).
//!
//! `walkthrough` follows the README's first-instance walkthrough on SQLite and once on a
//! private PostgreSQL server (`POSTERN_SKIP_PG=1` skips that one test).

mod support;

mod access;
mod admin;
mod borrowing;
mod browser;
mod chaos;
mod check;
mod companion;
mod deb;
mod help;
mod hostile;
mod https;
mod inspect;
mod inspect_agrees;
mod instances;
mod logs;
mod mailflow;
mod oauth;
mod package;
mod patch_bombs;
mod pipes;
mod proxy;
mod receive;
mod secrets;
mod sender_auth;
mod serve;
mod sign_in;
mod sources;
mod tls;
mod tokens_at_rest;
mod tracker_rules;
mod trim;
mod uploads;
mod walkthrough;
