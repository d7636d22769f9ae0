//! Integration tests of the `postern` binary: the real executable run with
//! `std::process::Command`, each test in its own temporary working directory (so the default
//! `./postern-data` lands there), against GitLab's and Discourse's fixtures in `testdata/`.
//!
//! `walkthrough` follows the README's first-instance walkthrough on SQLite and once on a
//! private PostgreSQL server (`POSTERN_SKIP_PG=1` skips that one test).

mod support;

mod admin;
mod check;
mod companion;
mod help;
mod inspect;
mod mailflow;
mod pipes;
mod receive;
mod secrets;
mod serve;
mod sources;
mod trim;
mod walkthrough;
