//! HTTP tests of postern-web: every route and permission, on SQLite and PostgreSQL, through the
//! real router (tower `oneshot`) and, for `serve`, a real listener on 127.0.0.1.
#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod support;

mod access;
mod accounts;
mod agents;
mod anonymous;
mod api;
mod auth;
mod chromium;
mod chromium_desk;
mod chromium_pages;
mod chromium_search;
mod desk;
mod desk_readable;
mod desk_unsubscribe;
mod fields;
mod in_chromium;
mod instances;
mod mailout;
mod merge_requests;
mod ops;
mod pages;
mod projects;
mod search;
mod sender_policy;
mod settings;
mod throttle;
mod ticket_flow;
mod tracker;
mod xss;
