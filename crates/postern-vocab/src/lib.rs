//! The words every postern crate shares, written once: [`Secret`], a value that never prints
//! itself; [`random`], fresh tokens from the operating system's generator; [`outcome`], what
//! became of an inbound message ([`HandlerKind`], [`ErrorKind`]), as recorded and shown.
//!
//! A leaf: it depends on no other postern crate, does no I/O beyond asking for randomness, and
//! every crate may depend on it.

pub mod outcome;
pub mod random;
mod secret;

pub use outcome::{ErrorKind, HandlerKind};
pub use secret::Secret;
