//! Which proxies' `Forwarded` / `X-Forwarded-For` headers are believed, and the client address
//! that follows from them.
//!
//! A header is only as trustworthy as whoever added its last entry, so the entries are read
//! from the right (nearest hop) and each is believed only while the hop that reported it is a
//! trusted proxy: the first entry added by a trusted proxy about an untrusted address is the
//! client. From any other peer the headers are ignored; the peer is the client.

use std::net::IpAddr;

/// Hops read from the right at most; a longer chain is not a real deployment, and stopping
/// keeps the walk over a header anyone can send linear and short.
const MAX_FORWARDED_HOPS: usize = 16;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u32,
}

impl Network {
    fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address or CIDR network"))?;
        let address = address.to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u32>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
            None => bits,
        };
        Ok(Network { address, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (u128::MAX << (width - bits)) & (u128::MAX >> (128 - width))
            }
        };
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let m = mask(self.prefix, 32);
                u128::from(u32::from(net)) & m == u128::from(u32::from(a)) & m
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let m = mask(self.prefix, 128);
                u128::from(net) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// The reverse proxies (`web.trusted_proxies`) whose forwarding headers are believed. Empty
/// (the default): no header is believed, the connection's peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses CIDR networks or single addresses; the error names the entry that is wrong.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| Network::parse(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client behind `peer`: `forwarded` are the `Forwarded` header values and
    /// `x_forwarded_for` the `X-Forwarded-For` ones, in the order received (`Forwarded` wins
    /// when both are present).
    pub(crate) fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl Iterator<Item = &'a str>,
        x_forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        let hops: Vec<Option<IpAddr>> = if forwarded.is_empty() {
            x_forwarded_for
                .flat_map(|v| v.split(','))
                .map(parse_node)
                .collect()
        } else {
            forwarded.into_iter().map(forwarded_for).collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev().take(MAX_FORWARDED_HOPS) {
            // An entry that names no address (`unknown`, an obfuscated name, garbage) ends the
            // chain: the nearest hop we could identify is the best answer.
            let Some(address) = hop else { break };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// The `for=` of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value))
            .flatten()
    })
}

/// An address as proxies write it: bare, quoted, `[v6]`, with or without a port.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Ok(address) = value.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<IpAddr>().ok().map(|a| a.to_canonical());
    }
    let (host, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "2001:db8:1::/48", "192.0.2.9"]).unwrap_or_default()
    }

    #[test]
    fn networks_parse_and_bad_entries_are_named() {
        assert_eq!(proxies().0.len(), 3);
        let error = TrustedProxies::parse(&["10.0.0.0/33"])
            .err()
            .unwrap_or_default();
        assert!(error.contains("10.0.0.0/33"), "{error}");
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
        assert!(TrustedProxies::parse(&["::/0"]).is_ok());
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let client = proxies().client(
            ip("198.51.100.1"),
            std::iter::once("for=203.0.113.5"),
            std::iter::once("203.0.113.5"),
        );
        assert_eq!(client, ip("198.51.100.1"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let p = proxies();
        // The client put a lie first; the trusted proxy appended the real address.
        let xff = ["1.2.3.4, 203.0.113.5", "10.1.1.1"];
        assert_eq!(
            p.client(ip("10.0.0.1"), std::iter::empty(), xff.into_iter()),
            ip("203.0.113.5")
        );
        let forwarded = ["for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https"];
        assert_eq!(
            p.client(
                ip("::ffff:10.0.0.1"),
                forwarded.into_iter(),
                std::iter::empty()
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            p.client(
                ip("10.0.0.1"),
                std::iter::once("for=203.0.113.7:80"),
                std::iter::empty()
            ),
            ip("203.0.113.7")
        );
        // Nothing usable: the proxy itself.
        assert_eq!(
            p.client(
                ip("10.0.0.1"),
                std::iter::once("for=unknown"),
                std::iter::empty()
            ),
            ip("10.0.0.1")
        );
        assert_eq!(
            p.client(ip("192.0.2.9"), std::iter::empty(), std::iter::empty()),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn a_long_chain_is_read_only_so_far() {
        let chain = vec!["10.0.0.2"; 1000].join(",");
        let client = proxies().client(
            ip("10.0.0.1"),
            std::iter::empty(),
            std::iter::once(chain.as_str()),
        );
        assert_eq!(client, ip("10.0.0.2"));
    }
}
