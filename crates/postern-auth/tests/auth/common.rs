//! What the sender-authentication tests share: a private DNS zone with fresh keys and
//! records, signed test messages, and an authenticator pointed at the zone.

use postern_auth::{AuthConfig, Authenticator, DnsConfig};
pub use postern_testkit::dkim::{GOOD_IP, domain_records, ed25519_key, rsa_key};
use postern_testkit::dns::DnsServer;
use std::time::Duration;

/// The zone every test serves; domains are `<name>.test`.
pub const ORIGIN: &str = "test.";

/// A plain message from `from`.
pub fn message(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@postern.test\r\nSubject: {subject}\r\n\
         Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@client>\r\n\r\n{body}\r\n"
    )
}

/// A DNS configuration for `server`: short timeouts, so a dead server fails fast.
pub fn dns_config(server: &DnsServer) -> DnsConfig {
    DnsConfig {
        nameservers: vec![server.addr()],
        timeout: Duration::from_millis(500),
        attempts: 1,
    }
}

/// An authenticator using `server`, trusting `trusted` authserv-ids.
pub fn authenticator(server: &DnsServer, trusted: &[&str]) -> Authenticator {
    Authenticator::new(&AuthConfig {
        dns: dns_config(server),
        trusted_authserv_ids: trusted.iter().map(|s| s.to_string()).collect(),
        trusted_hosts: Vec::new(),
    })
    .expect("building the authenticator")
}
