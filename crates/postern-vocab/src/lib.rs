//! The words every postern crate shares, written once: [`Secret`], a value that never prints
//! itself; [`random`], fresh tokens from the operating system's generator; [`Backoff`], how
//! long to wait before trying again; [`identifier`], a sender's identifier (a Message-ID) made
//! fit to keep and to show; [`Mailbox`], which of GitLab's two mailboxes a message came
//! through; [`outcome`], what became of an inbound message ([`HandlerKind`], [`ErrorKind`]), as
//! recorded and shown; [`Shutdown`], the one stop signal every loop watches; [`bidi`], the
//! characters that reorder text around them.
//!
//! A leaf: it depends on no other postern crate, does no I/O beyond asking for randomness, and
//! every crate may depend on it.

pub mod backoff;
pub mod bidi;
pub mod identifier;
mod mailbox;
pub mod named;
pub mod outcome;
pub mod random;
mod secret;
pub mod shutdown;

pub use backoff::Backoff;
pub use mailbox::{Mailbox, UnknownMailbox};
pub use outcome::{ErrorKind, HandlerKind};
pub use secret::Secret;
pub use shutdown::{Shutdown, Stopper};
