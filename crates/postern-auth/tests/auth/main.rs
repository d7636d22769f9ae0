//! Sender authentication against real DNS: a private Knot server per test serves the DKIM
//! keys, SPF and DMARC records the test generates; messages are signed (and ARC-sealed) with
//! mail-auth's own signer; each test checks the verdict and what `decide` makes of it.

mod api;
mod arc;
mod common;
mod dkim;
mod dmarc;
mod dns_down;
mod hostile;
mod negative_cache;
mod spf;
mod upstream;
