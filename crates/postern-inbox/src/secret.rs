//! A value that must never be printed: client secrets, passwords, access tokens.
//!
//! `Debug` and `Display` print `[redacted]`, so a secret inside a settings struct, an error or a
//! tracing field cannot leak by accident; the one place that needs the value calls
//! [`Secret::expose`].

use std::fmt;

/// A secret string. Compared in constant time is not needed here (it is never compared with
/// attacker input); what matters is that it never reaches a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (a missing setting).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of this secret replaced by `[redacted]`, for error texts that
    /// echo what was sent.
    pub fn scrub(&self, text: &str) -> String {
        // A one-character secret would redact half the message; such a secret is refused by
        // the settings anyway, and replacing it would only garble the text.
        if self.0.len() < 2 {
            return text.to_owned();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `text` with every occurrence of `secret` replaced by `[redacted]`.
pub fn redact(text: &str, secret: &Secret) -> String {
    secret.scrub(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(
            secret.scrub("bad secret hunter2 given"),
            "bad secret [redacted] given"
        );
    }
}
