//! HTTP tests of postern-web: every route and permission, on SQLite and PostgreSQL, through the
//! real router (tower `oneshot`) and, for `serve`, a real listener on 127.0.0.1.
#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod support;

mod access;
mod accounts;
mod anonymous;
mod api;
mod auth;
mod chromium;
mod chromium_search;
mod chromium_pages;
mod desk;
mod fields;
mod instances;
mod merge_requests;
mod ops;
mod pages;
mod projects;
mod search;
mod sender_policy;
mod settings;
mod throttle;
mod tracker;
mod xss;
