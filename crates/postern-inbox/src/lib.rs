//! Mail sources: the ways a message enters postern before anything else looks at it.
//!
//! Today this crate owns one source, the built-in [`listener`]: an LMTP and SMTP server that an
//! MTA (Postfix, Exim, a test) hands mail to. It owns the wire protocol and its limits (line
//! length, message size, recipients, idle time, concurrent connections) and graceful shutdown. It
//! does not own storage: every accepted message goes to an async callback supplied by the caller,
//! who wires it to the store, so this crate depends on no other postern crate.
//!
//! The one rule it keeps for the rest of the system (DESIGN.md: nothing is acknowledged to a
//! source before it is durable): the listener **never acknowledges before the callback returns
//! Ok**. A `250` after DATA is sent only once the callback has returned `Ok(())`; a temporary
//! failure answers `451` so the sending MTA keeps the message and retries, a permanent one `550`
//! so it bounces, and a disconnect, timeout or panic before that point answers nothing, which the
//! MTA also treats as "not delivered".
#![deny(missing_docs)]

pub mod listener;
