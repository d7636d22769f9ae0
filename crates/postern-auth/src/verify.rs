//! [`Authenticator`]: the resolver, its caches and the verification of one message, locally
//! with mail-auth or from a trusted upstream header.

use crate::cache::{BoundedCache, Caches};
use crate::config::{
    AuthConfig, CACHE_ENTRIES, CACHE_MAX_TTL, DnsConfig, MAX_ARC_SETS, MAX_DKIM_SIGNATURES,
    MAX_HEADER_FIELDS, MAX_SIGNED_HEADERS, NEGATIVE_MIN_TTL,
};
use crate::outcome::{
    dkim_check, dkim_result, dmarc_check, failed_verdict, record_policy, spf_result, unchecked,
};
use crate::received::{Connection, connection_from_received};
use crate::upstream::{Upstream, trusted_results};
use crate::verdict::{
    AuthResult, DkimCheck, DmarcCheck, DmarcPolicy, Source, SpfCheck, Verdict, signer_aligned,
};
use futures_util::FutureExt as _;
use mail_auth::dmarc::Dmarc;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DnsError, Error, MX, MessageAuthenticator, Parameters, RecordSet,
    SpfOutput, Txt,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

/// The resolver could not be set up (for the system resolver: `/etc/resolv.conf` unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(String);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DNS resolver: {}", self.0)
    }
}

impl std::error::Error for AuthError {}

/// Verifies messages. Build one per process and share it: its caches are what make a warm
/// verification cheap.
pub struct Authenticator {
    resolver: LazyResolver,
    caches: Caches,
    trusted_ids: Vec<String>,
    trusted_hosts: Vec<String>,
    deadline: Duration,
}

/// The cache types handed to every mail-auth call.
type Params<'x, P> = Parameters<
    'x,
    P,
    BoundedCache<Box<str>, Txt>,
    BoundedCache<Box<str>, RecordSet<MX>>,
    BoundedCache<Box<str>, RecordSet<Ipv4Addr>>,
    BoundedCache<Box<str>, RecordSet<Ipv6Addr>>,
    BoundedCache<IpAddr, RecordSet<Box<str>>>,
>;

impl Authenticator {
    /// A verifier with the resolver and trust of `config`. Needs a Tokio runtime with timers
    /// when [`Authenticator::verify`] runs, not when built.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        let resolver = LazyResolver::new(&config.dns)?;
        // A query that gets no answer costs its timeout per attempt over UDP, then again over
        // TCP. Six such queries in turn (a DKIM key, the DMARC record, a few SPF includes) fit
        // in the deadline; a message cannot hold a worker for longer than 30 s.
        let attempts = u32::try_from(config.dns.attempts.max(1)).unwrap_or(u32::MAX);
        let per_query = config
            .dns
            .timeout
            .saturating_mul(attempts)
            .saturating_mul(2);
        let deadline = per_query
            .saturating_mul(6)
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        Ok(Authenticator {
            resolver,
            caches: Caches::new(),
            trusted_ids: config.trusted_authserv_ids.clone(),
            trusted_hosts: config.trusted_hosts(),
            deadline,
        })
    }

    /// The SMTP facts recorded by the trusted MTA's `Received` line (see
    /// [`connection_from_received`]); empty when no trusted host is configured or found.
    pub fn connection_from_received(&self, raw: &[u8]) -> Connection {
        connection_from_received(raw, &self.trusted_hosts)
    }

    /// The verdict for `raw` (the whole message as received) and what the receiving server
    /// knew of the SMTP session. Never fails: what cannot be checked is `temperror` (DNS,
    /// deadline) or `permerror` (unreadable message).
    pub async fn verify(&self, raw: &[u8], connection: &Connection) -> Verdict {
        let parsed = std::panic::catch_unwind(|| AuthenticatedMessage::parse(raw));
        let Ok(Some(message)) = parsed else {
            return failed_verdict(
                AuthResult::PermError,
                "the message has no readable header".to_string(),
                None,
            );
        };
        let mut reasons = Vec::new();
        let from_domain = single_from_domain(&message, &mut reasons);
        let resolver = match self.resolver.get() {
            Ok(resolver) => resolver,
            Err(e) => return failed_verdict(AuthResult::TempError, e.to_string(), from_domain),
        };
        let work = self.verify_parsed(
            resolver,
            raw,
            message,
            connection,
            from_domain.clone(),
            reasons,
        );
        let work = std::panic::AssertUnwindSafe(work).catch_unwind();
        match tokio::time::timeout(self.deadline, work).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) => failed_verdict(
                AuthResult::PermError,
                "the verifier failed on this message".to_string(),
                from_domain,
            ),
            Err(_) => failed_verdict(
                AuthResult::TempError,
                format!(
                    "verification did not finish within {} ms (DNS too slow)",
                    self.deadline.as_millis()
                ),
                from_domain,
            ),
        }
    }

    async fn verify_parsed<'x>(
        &self,
        resolver: &MessageAuthenticator,
        raw: &[u8],
        message: AuthenticatedMessage<'x>,
        connection: &Connection,
        from_domain: Option<String>,
        mut reasons: Vec<String>,
    ) -> Verdict {
        if let Some(upstream) = trusted_results(raw, &self.trusted_ids, &self.trusted_hosts) {
            match self
                .upstream_verdict(resolver, upstream, from_domain.clone(), &mut reasons)
                .await
            {
                Some(verdict) => return verdict,
                None => reasons.push("verified locally instead".to_string()),
            }
        }
        self.verify_locally(resolver, message, connection, from_domain, reasons)
            .await
    }

    fn params<P>(&self, params: P) -> Params<'_, P> {
        Parameters::new(params)
            .with_txt_cache(&self.caches.txt)
            .with_mx_cache(&self.caches.mx)
            .with_ipv4_cache(&self.caches.ipv4)
            .with_ipv6_cache(&self.caches.ipv6)
            .with_ptr_cache(&self.caches.ptr)
    }

    async fn verify_locally(
        &self,
        resolver: &MessageAuthenticator,
        mut message: AuthenticatedMessage<'_>,
        connection: &Connection,
        from_domain: Option<String>,
        mut reasons: Vec<String>,
    ) -> Verdict {
        let from = from_domain.as_deref().unwrap_or_default();
        // Signatures of the From domain first, so padding cannot push them past the cap.
        // (Subdomains of the From domain next: DMARC's relaxed alignment may accept them.)
        message.dkim_headers.sort_by_key(|h| {
            let d = &h.header.d;
            (!signer_aligned(d, from), !signer_aligned(from, d))
        });
        if message.dkim_headers.len() > MAX_DKIM_SIGNATURES {
            reasons.push(format!(
                "{} DKIM signatures: only {MAX_DKIM_SIGNATURES} checked",
                message.dkim_headers.len()
            ));
            message.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
        }
        message.errors.truncate(MAX_DKIM_SIGNATURES);
        // Finding the fields a signature names costs (names listed) × (fields in the
        // message): both are capped before anything is hashed.
        let too_many_fields = message.headers.len() > MAX_HEADER_FIELDS;
        if too_many_fields {
            reasons.push(format!(
                "{} header fields: more than the {MAX_HEADER_FIELDS} a signature is checked over",
                message.headers.len()
            ));
        }
        let mut dkim: Vec<DkimCheck> = Vec::new();
        message.dkim_headers.retain(|h| {
            let checkable = !too_many_fields && h.header.h.len() <= MAX_SIGNED_HEADERS;
            if !checkable {
                dkim.push(unchecked(&h.header.d, &h.header.s, from, &mut reasons));
            }
            checkable
        });
        let message = message;

        let dkim_output = resolver.verify_dkim(self.params(&message)).await;
        dkim.extend(
            dkim_output
                .iter()
                .take(MAX_DKIM_SIGNATURES)
                .map(|o| dkim_check(o, from, &mut reasons)),
        );
        dkim.truncate(MAX_DKIM_SIGNATURES);

        let arc = if too_many_fields
            || message
                .ams_headers
                .iter()
                .any(|h| h.header.h.len() > MAX_SIGNED_HEADERS)
        {
            reasons.push("ARC: a signature too large to check".to_string());
            AuthResult::PermError
        } else if message.ams_headers.len() > MAX_ARC_SETS {
            reasons.push(format!(
                "ARC chain of {} sets: longer than the {MAX_ARC_SETS} checked",
                message.ams_headers.len()
            ));
            AuthResult::Fail
        } else {
            let output = resolver.verify_arc(self.params(&message)).await;
            let result = dkim_result(output.result());
            if !matches!(result, AuthResult::Pass | AuthResult::None) {
                reasons.push(format!("ARC: {}", output.result()));
            }
            result
        };

        let (spf_output, spf_domain) = self.spf(resolver, connection).await;
        let spf = SpfCheck {
            result: spf_result(spf_output.result()),
            domain: (!spf_output.domain().is_empty()).then(|| spf_output.domain().to_string()),
        };
        if spf.result != AuthResult::Pass && connection.client_ip.is_some() {
            reasons.push(format!(
                "SPF for {}: {}",
                spf.domain.as_deref().unwrap_or("(no domain)"),
                crate::policy::result_name(spf.result)
            ));
        }

        let dmarc = match &from_domain {
            None => DmarcCheck {
                result: AuthResult::PermError,
                policy: DmarcPolicy::NoRecord,
                from_domain: None,
                aligned_dkim: None,
                aligned_spf: None,
            },
            Some(domain) => {
                let output = resolver
                    .verify_dmarc(self.params(DmarcParameters::new(
                        &message,
                        &dkim_output,
                        &spf_domain,
                        &spf_output,
                    )))
                    .await;
                dmarc_check(&output, domain, &dkim, &spf, &mut reasons)
            }
        };
        Verdict {
            source: Source::Local,
            dkim,
            arc,
            spf,
            dmarc,
            reasons,
        }
    }

    /// SPF of the envelope sender (or of the HELO name for a bounce), and the domain DMARC
    /// aligns it against.
    async fn spf(
        &self,
        resolver: &MessageAuthenticator,
        connection: &Connection,
    ) -> (SpfOutput, String) {
        let (Some(ip), Some(mail_from)) = (connection.client_ip, connection.mail_from.as_deref())
        else {
            return (SpfOutput::default(), String::new());
        };
        let sender_domain = mail_from
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .filter(|d| !d.is_empty());
        let helo = connection
            .helo
            .clone()
            .or_else(|| sender_domain.clone())
            .unwrap_or_default();
        let host = self
            .trusted_hosts
            .first()
            .map_or("localhost", String::as_str);
        match sender_domain {
            Some(domain) => {
                let output = resolver
                    .verify_spf(
                        self.params(SpfParameters::verify_mail_from(ip, &helo, host, mail_from)),
                    )
                    .await;
                (output, domain)
            }
            None if !helo.is_empty() => {
                let output = resolver
                    .verify_spf(self.params(SpfParameters::verify_ehlo(ip, &helo, host)))
                    .await;
                (output, helo.to_ascii_lowercase())
            }
            None => (SpfOutput::default(), String::new()),
        }
    }

    /// The verdict of a trusted upstream header, or `None` when it cannot stand alone
    /// (no DMARC result, or one about another From domain).
    async fn upstream_verdict(
        &self,
        resolver: &MessageAuthenticator,
        upstream: Upstream,
        from_domain: Option<String>,
        reasons: &mut Vec<String>,
    ) -> Option<Verdict> {
        let id = upstream.authserv_id;
        let Some((result, header_from, stated_policy)) = upstream.dmarc else {
            reasons.push(format!(
                "the trusted Authentication-Results of {id} has no DMARC result"
            ));
            return None;
        };
        if let (Some(header_from), Some(from)) = (&header_from, &from_domain)
            && header_from != from
        {
            reasons.push(format!(
                "the trusted Authentication-Results of {id} is about {header_from}, not {from}"
            ));
            return None;
        }
        let from = from_domain.as_deref().unwrap_or_default();
        let dkim: Vec<DkimCheck> = upstream
            .dkim
            .into_iter()
            .take(MAX_DKIM_SIGNATURES)
            .map(|mut d| {
                d.aligned = d.domain.as_deref().is_some_and(|s| signer_aligned(s, from));
                d
            })
            .collect();
        let (spf_result, spf_domain) = upstream.spf.unwrap_or((AuthResult::None, None));
        let policy = match (stated_policy, &from_domain) {
            (Some(policy), _) => policy,
            (None, _) if result == AuthResult::None => DmarcPolicy::NoRecord,
            (None, Some(domain)) => self.published_policy(resolver, domain).await,
            (None, None) => DmarcPolicy::NoRecord,
        };
        let aligned_dkim = (result == AuthResult::Pass)
            .then(|| {
                dkim.iter()
                    .find(|d| d.aligned && d.result == AuthResult::Pass)
                    .and_then(|d| d.domain.clone())
            })
            .flatten();
        let aligned_spf = (result == AuthResult::Pass && spf_result == AuthResult::Pass)
            .then(|| spf_domain.clone())
            .flatten()
            .filter(|d| signer_aligned(d, from));
        reasons.push(format!("results of the trusted MTA {id}"));
        if result != AuthResult::Pass {
            reasons.push(format!(
                "DMARC for {from}: {}",
                crate::policy::result_name(result)
            ));
        }
        Some(Verdict {
            source: Source::Upstream { authserv_id: id },
            dkim,
            arc: upstream.arc.unwrap_or(AuthResult::None),
            spf: SpfCheck {
                result: spf_result,
                domain: spf_domain,
            },
            dmarc: DmarcCheck {
                result: if from_domain.is_some() {
                    result
                } else {
                    AuthResult::PermError
                },
                policy,
                from_domain,
                aligned_dkim,
                aligned_spf,
            },
            reasons: std::mem::take(reasons),
        })
    }

    /// The DMARC policy `domain` publishes, for an upstream header that did not state it: the
    /// domain's own record (`p=`), else the nearest parent's (`sp=`), at most seven queries up.
    async fn published_policy(&self, resolver: &MessageAuthenticator, domain: &str) -> DmarcPolicy {
        let mut name = domain.trim_end_matches('.');
        for step in 0..7 {
            if name.split('.').filter(|l| !l.is_empty()).count() < 2 {
                break;
            }
            let key = format!("_dmarc.{name}.");
            match resolver
                .txt_lookup::<Dmarc>(key, Some(&self.caches.txt))
                .await
            {
                Ok(record) => {
                    let policy = if step == 0 { record.p } else { record.sp };
                    return record_policy(policy);
                }
                Err(Error::Dns(DnsError::RecordNotFound(_) | DnsError::InvalidRecordType))
                | Err(Error::ParseError) => {}
                Err(_) => return DmarcPolicy::Unknown,
            }
            name = match name.split_once('.') {
                Some((_, parent)) => parent,
                None => break,
            };
        }
        DmarcPolicy::NoRecord
    }
}

/// The resolver, built when the first message is verified. A server that mostly waits for mail
/// does not page in the resolver's code or allocate its caches before there is anything to
/// verify; the settings (and `/etc/resolv.conf`) are still read at start, so a broken resolver
/// configuration is refused there and not at the first message.
struct LazyResolver {
    settings: (ResolverConfig, ResolverOpts),
    built: OnceLock<MessageAuthenticator>,
}

impl LazyResolver {
    fn new(dns: &DnsConfig) -> Result<LazyResolver, AuthError> {
        Ok(LazyResolver {
            settings: resolver_settings(dns)?,
            built: OnceLock::new(),
        })
    }

    /// The resolver, built now if it is not yet. A failure is not kept: the message is a
    /// temporary error and the next verification tries again, so one failed build cannot
    /// turn every later message into a temporary error for the life of the process.
    fn get(&self) -> Result<&MessageAuthenticator, AuthError> {
        if let Some(resolver) = self.built.get() {
            return Ok(resolver);
        }
        let (config, options) = self.settings.clone();
        let resolver =
            MessageAuthenticator::new(config, options).map_err(|e| AuthError(e.to_string()))?;
        // Two first messages may both build one; the first stored is kept by both.
        Ok(self.built.get_or_init(|| resolver))
    }
}

fn resolver_settings(dns: &DnsConfig) -> Result<(ResolverConfig, ResolverOpts), AuthError> {
    let (config, mut options) = if dns.nameservers.is_empty() {
        mail_auth::hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| AuthError(e.to_string()))?
    } else {
        let servers = dns
            .nameservers
            .iter()
            .map(|address| {
                let mut server = NameServerConfig::udp_and_tcp(address.ip());
                for connection in &mut server.connections {
                    connection.port = address.port();
                }
                server
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    options.timeout = dns.timeout;
    options.attempts = dns.attempts.max(1);
    // The resolver's own cache holds what mail-auth's caches do not: the answers that a name
    // does not exist (most From domains publish no DMARC record, most senders no SPF).
    options.cache_size = CACHE_ENTRIES as u64;
    options.positive_max_ttl = Some(CACHE_MAX_TTL);
    options.negative_max_ttl = Some(CACHE_MAX_TTL);
    // A negative answer is kept for as long as the zone's SOA says; some resolvers send none
    // (RFC 2308 then allows no caching at all), and every message from such a domain would
    // ask again. Under a burst that is one query per message, and a resolver that starts
    // dropping them turns a drain into DNS timeouts. A floor bounds it to one query per name
    // per NEGATIVE_MIN_TTL; a record published meanwhile is seen that much later.
    options.negative_min_ttl = Some(NEGATIVE_MIN_TTL);
    Ok((config, options))
}

/// The one domain of the From header; `None` (with a reason) when there is no From address
/// or the addresses name several domains, which DMARC exempts and so cannot protect.
fn single_from_domain(
    message: &AuthenticatedMessage<'_>,
    reasons: &mut Vec<String>,
) -> Option<String> {
    let mut domain: Option<String> = None;
    for from in message.froms() {
        let Some((_, d)) = from.rsplit_once('@') else {
            continue;
        };
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        match &domain {
            None => domain = Some(d),
            Some(existing) if *existing == d => {}
            Some(_) => {
                reasons.push("the From header names several domains".to_string());
                return None;
            }
        }
    }
    if domain.is_none() {
        reasons.push("the From header has no address".to_string());
    }
    domain
}
