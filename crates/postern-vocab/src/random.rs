//! Fresh random values from the operating system (`getrandom`): tokens people or peers must not
//! guess, and the jitter that keeps retries from many clients apart.

use std::fmt;

/// The operating system gave no randomness (a sandbox without `getrandom(2)`, say). A token
/// must never be made from anything weaker, so callers fail the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRandomness(String);

impl fmt::Display for NoRandomness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no randomness from the operating system: {}", self.0)
    }
}

impl std::error::Error for NoRandomness {}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], NoRandomness> {
    let mut buffer = [0u8; N];
    getrandom::fill(&mut buffer).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(buffer)
}

/// `n` random bytes as `2 n` lowercase hex digits (Ruby's `SecureRandom.hex(n)`).
pub fn hex(n: usize) -> Result<String, NoRandomness> {
    let mut buffer = vec![0u8; n];
    getrandom::fill(&mut buffer).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(to_hex(&buffer))
}

/// `bytes` as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// `len` random characters of the URL-safe Base64 alphabet (`A-Z a-z 0-9 _ -`, RFC 4648 §5):
/// 6 bits each, fit for a token that travels in a mail address or a URL.
pub fn url_safe(len: usize) -> Result<String, NoRandomness> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut buffer = vec![0u8; len];
    getrandom::fill(&mut buffer).map_err(|e| NoRandomness(e.to_string()))?;
    // 64 divides 256, so taking the low six bits keeps every character equally likely.
    Ok(buffer
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 0x3f)]))
        .collect())
}

/// A uniform number in `[0, 1)` for spreading retries; 0.5 when the system gives no
/// randomness, since a retry without jitter is still a retry.
pub fn unit() -> f64 {
    // The top 53 bits fill an f64's mantissa exactly.
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_two_digits_per_byte_and_differs_each_time() {
        let a = hex(16).expect("randomness");
        let b = hex(16).expect("randomness");
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn url_safe_uses_its_alphabet_only() {
        let token = url_safe(400).expect("randomness");
        assert_eq!(token.len(), 400);
        assert!(
            token
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        );
        assert_ne!(
            url_safe(12).expect("randomness"),
            url_safe(12).expect("randomness")
        );
    }

    #[test]
    fn unit_is_in_range() {
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
