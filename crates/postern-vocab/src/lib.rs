//! The words every postern crate shares, written once: [`Secret`], a value that never prints
//! itself; [`random`], fresh tokens from the operating system's generator.
//!
//! A leaf: it depends on no other postern crate, does no I/O beyond asking for randomness, and
//! every crate may depend on it.

pub mod random;
mod secret;

pub use secret::Secret;
