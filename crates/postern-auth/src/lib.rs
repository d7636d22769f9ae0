//! Sender authentication for postern: who really sent a mail, and what that allows.
//!
//! Mail is postern's login form, so the From address must be one the sender can prove. For
//! each message [`Authenticator::verify`] checks DKIM (every signature, up to
//! [`MAX_DKIM_SIGNATURES`]), the ARC chain, SPF (when the client IP and envelope sender are
//! known) and DMARC with alignment against the From domain, all with Stalwart's mail-auth and
//! a resolver of our own with bounded caches. Where an MTA in front of postern already
//! verified and stamped `Authentication-Results`, and its authserv-id is configured as
//! trusted, its verdict is used instead (the rules are in `upstream.rs`).
//! [`decide`] turns a [`Verdict`] into what the mail may do under a [`Policy`].
//!
//! Invariants:
//! - an `Authentication-Results` header counts only with a trusted authserv-id and above the
//!   trusted MTA's own `Received` line; every other one is attacker text and is ignored;
//! - a DNS temporary error is `temperror`, never a pass, and [`decide`] makes it
//!   [`Permission::Temporary`] where the answer depends on it;
//! - bounded work per message: capped signatures, ARC sets and header fields, DNS timeouts
//!   and an overall deadline; no panic escapes `verify` (it becomes a `permerror`).
//!
//! This crate depends on nothing of postern's: the caller passes the raw message and the
//! SMTP facts ([`Connection`]).

mod cache;
mod config;
mod headers;
mod outcome;
mod policy;
mod received;
mod upstream;
mod verdict;
mod verify;

pub use config::{
    AuthConfig, CACHE_ENTRIES, CACHE_MAX_TTL, DnsConfig, MAX_ARC_SETS, MAX_DKIM_SIGNATURES,
    MAX_HEADER_FIELDS, MAX_SIGNED_HEADERS,
};
pub use policy::{Decision, Permission, Policy, decide};
pub use received::{Connection, connection_from_received};
pub use verdict::{AuthResult, DkimCheck, DmarcCheck, DmarcPolicy, Source, SpfCheck, Verdict};
pub use verify::{AuthError, Authenticator};
