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
    fn unit_is_in_range() {
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
