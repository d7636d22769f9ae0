//! The SMTP facts of a message that arrived through a trusted MTA (IMAP, Microsoft Graph,
//! pipe), read back from the `Received` line that MTA wrote.
//!
//! The rule: walking the header block top-down, the first `Received` whose `by` host is one of
//! the trusted MTA's names is that MTA's own line, written when the message came in from the
//! outside; everything below it was written by the sender or earlier hops and proves nothing.
//! From that line come the client IP (the last `[address]` in the comment after `from`,
//! Postfix's and Sendmail's `from helo (rdns [ip])`, or Exim's `from [ip] (helo=name)`) and the
//! HELO name. The envelope sender comes from a `Return-Path` above that line (the delivery
//! agent writes it at the top); without one it stays unknown. A `Received` line is attacker
//! text only below the trusted one, so a sender cannot choose these facts.

use crate::headers::{Field, fields};
use std::net::IpAddr;

/// What the receiving MTA knew about the SMTP session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// The connecting client's address.
    pub client_ip: Option<IpAddr>,
    /// The name the client gave in HELO/EHLO.
    pub helo: Option<String>,
    /// The envelope sender (MAIL FROM); `Some("")` for a bounce (`<>`).
    pub mail_from: Option<String>,
}

/// The connection the trusted MTA recorded, or an empty one when no `Received` line of
/// `trusted_hosts` (lower-case host names) is found.
pub fn connection_from_received(raw: &[u8], trusted_hosts: &[String]) -> Connection {
    let fields = fields(raw);
    let Some(position) = trusted_received_position(&fields, trusted_hosts) else {
        return Connection::default();
    };
    let mut connection = fields[position]
        .value
        .as_deref()
        .map(parse_received)
        .unwrap_or_default();
    connection.mail_from = fields[..position]
        .iter()
        .find(|f| f.is("Return-Path"))
        .and_then(|f| f.value.as_deref())
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        });
    connection
}

/// Index of the topmost `Received` field whose `by` host is trusted.
pub(crate) fn trusted_received_position(
    fields: &[Field<'_>],
    trusted_hosts: &[String],
) -> Option<usize> {
    if trusted_hosts.is_empty() {
        return None;
    }
    fields.iter().position(|f| {
        f.is("Received")
            && f.value
                .as_deref()
                .and_then(by_host)
                .is_some_and(|by| trusted_hosts.contains(&by))
    })
}

/// The lower-case host after `by`.
pub(crate) fn by_host(value: &str) -> Option<String> {
    let items = items(value);
    let at = items.iter().position(|i| i.eq_ignore_ascii_case("by"))?;
    let host = items.get(at + 1)?;
    (!host.starts_with('(')).then(|| {
        host.trim_end_matches(';')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    })
}

fn parse_received(value: &str) -> Connection {
    let items = items(value);
    let mut connection = Connection::default();
    let Some(at) = items.iter().position(|i| i.eq_ignore_ascii_case("from")) else {
        return connection;
    };
    let Some(name) = items.get(at + 1).filter(|n| !n.starts_with('(')) else {
        return connection;
    };
    let comment = items.get(at + 2).filter(|c| c.starts_with('('));
    if name.starts_with('[') {
        // Exim: `from [ip] (helo=name)` or `from [ip] (rdns [ip] helo=name)`.
        connection.client_ip = bracketed_ip(name);
        connection.helo = comment.and_then(|c| {
            c.trim_matches(|ch| ch == '(' || ch == ')')
                .split_whitespace()
                .find_map(|w| w.strip_prefix("helo="))
                .map(str::to_string)
        });
    } else {
        connection.helo = Some(name.to_string());
        connection.client_ip = comment.and_then(|c| bracketed_ip(c));
    }
    connection
}

/// The address in the last `[...]` of `text` (`IPv6:` prefix allowed).
fn bracketed_ip(text: &str) -> Option<IpAddr> {
    let open = text.rfind('[')?;
    let close = open + text[open..].find(']')?;
    let inner = &text[open + 1..close];
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

/// Words and whole parenthesised comments (nesting kept inside one item), in order.
fn items(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] == b'(' {
            let mut depth = 0usize;
            while i < bytes.len() {
                match bytes[i] {
                    b'(' => depth += 1,
                    b')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b'\\' => i += 1,
                    _ => {}
                }
                i += 1;
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'(' {
                i += 1;
            }
        }
        if let Some(item) = value.get(start..i.min(bytes.len())) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["mx.acme.test".to_string()]
    }

    #[test]
    fn reads_postfix_s_line_and_the_return_path_above_it() {
        let raw = b"Return-Path: <alice@example.org>\r\n\
Received: from mail.example.org (mail.example.org [192.0.2.7])\r\n\
\tby mx.acme.test (Postfix) with ESMTPS id 4Q; Sun, 6 Dec 2026 10:00:00 +0000\r\n\
Received: from evil (evil [198.51.100.1]) by mx.acme.test; forged\r\n\
Subject: x\r\n\r\nbody";
        let c = connection_from_received(raw, &hosts());
        assert_eq!(c.client_ip, Some("192.0.2.7".parse().expect("IP")));
        assert_eq!(c.helo.as_deref(), Some("mail.example.org"));
        assert_eq!(c.mail_from.as_deref(), Some("alice@example.org"));
    }

    #[test]
    fn reads_exim_s_form_and_ipv6() {
        let raw = b"Received: from [IPv6:2001:db8::5] (helo=client.example.org)\r\n by MX.acme.test with esmtp\r\n\r\n";
        let c = connection_from_received(raw, &hosts());
        assert_eq!(c.client_ip, Some("2001:db8::5".parse().expect("IP")));
        assert_eq!(c.helo.as_deref(), Some("client.example.org"));
        assert_eq!(c.mail_from, None, "no Return-Path above the trusted line");
    }

    #[test]
    fn without_a_trusted_line_nothing_is_known() {
        let raw = b"Return-Path: <a@b.c>\r\nReceived: from x (x [192.0.2.1]) by other.host\r\n\r\n";
        assert_eq!(
            connection_from_received(raw, &hosts()),
            Connection::default()
        );
        assert_eq!(connection_from_received(raw, &[]), Connection::default());
    }

    #[test]
    fn a_return_path_below_the_trusted_line_is_the_sender_s_own_and_ignored() {
        let raw = b"Received: from h (h [192.0.2.1]) by mx.acme.test\r\nReturn-Path: <ceo@acme.test>\r\n\r\n";
        assert_eq!(connection_from_received(raw, &hosts()).mail_from, None);
    }
}
