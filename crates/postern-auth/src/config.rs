//! What an [`crate::Authenticator`] is built from: the DNS resolver to ask, the upstream
//! verifiers to trust, and the caps that keep one hostile message's work bounded.

use std::net::SocketAddr;
use std::time::Duration;

/// Where DNS questions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Resolvers to ask (UDP, then TCP for truncated answers). Empty: the system's resolvers
    /// from `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// How long one query may take before it is retried or given up.
    pub timeout: Duration,
    /// How many times a query is sent before it counts as a temporary error. The whole
    /// verification of one message gets six unanswered queries' worth of time (UDP and TCP),
    /// at most 30 s, before it is a temporary error.
    pub attempts: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            // Shorter than a stub resolver's 5 s: a mail whose DNS is this slow is retried
            // later rather than holding a worker.
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

/// Everything [`crate::Authenticator::new`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// The resolver.
    pub dns: DnsConfig,
    /// `authserv-id`s (RFC 8601) of the MTAs whose `Authentication-Results` are believed.
    /// Empty: every such header is ignored and each message is verified here.
    pub trusted_authserv_ids: Vec<String>,
    /// Host names the trusted MTAs write after `by` in their `Received` lines. Empty: the
    /// `trusted_authserv_ids` (an authserv-id is conventionally the MTA's host name).
    pub trusted_hosts: Vec<String>,
}

impl AuthConfig {
    /// The host names that mark a trusted MTA's `Received` line, lower-case.
    pub(crate) fn trusted_hosts(&self) -> Vec<String> {
        let hosts = if self.trusted_hosts.is_empty() {
            &self.trusted_authserv_ids
        } else {
            &self.trusted_hosts
        };
        hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect()
    }
}

/// DKIM signatures verified per message. Each costs a DNS query for a name the sender chose
/// and a public-key operation; ten covers the author's, a list's and an ESP's signatures with
/// room to spare, while a message carrying thousands cannot make us send thousands of
/// queries. Signatures of the From domain are taken first, so padding cannot push them out.
pub const MAX_DKIM_SIGNATURES: usize = 10;

/// ARC sets verified per message (RFC 8617 allows 50). Each set costs two DNS queries and two
/// signature checks; real chains have a handful of hops. A longer chain is reported as failed.
pub const MAX_ARC_SETS: usize = 10;

/// Header fields one DKIM or ARC signature may name (`h=`). Real signers name 10 to 50,
/// over-signing included; the cost of finding them grows with this number times the fields in
/// the message, so a longer list is a `permerror` without being checked.
pub const MAX_SIGNED_HEADERS: usize = 100;

/// Header fields read when looking for upstream `Authentication-Results` and `Received`
/// lines (a header block longer than this is read only this far), and the most a message may
/// have for its DKIM and ARC signatures to be checked (real mail has well under a hundred).
pub const MAX_HEADER_FIELDS: usize = 1000;

/// Entries kept per DNS record type in the parsed-record caches.
pub const CACHE_ENTRIES: usize = 4096;

/// Longest time a cached record is believed, whatever its TTL says, so a rotated DKIM key
/// or a tightened DMARC policy is seen within the hour.
pub const CACHE_MAX_TTL: Duration = Duration::from_secs(3600);

/// Shortest time an answer that a name does not exist is believed, when the answer carries no
/// SOA to say how long (see the resolver options in `verify.rs`).
pub const NEGATIVE_MIN_TTL: Duration = Duration::from_secs(300);
