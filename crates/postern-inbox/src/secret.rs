//! Secrets that never show themselves: mailbox passwords and access tokens.
//!
//! A [`Secret`] has no `Display`, its `Debug` prints `[redacted]`, and the only way to the text
//! is [`Secret::expose`], so a secret cannot reach a log line, an error or a status page by
//! accident. [`redact`] removes a secret's text from a message that came from elsewhere (a
//! server's error text may echo what it was sent).

use std::fmt;

/// A password or token. `Debug` prints `[redacted]`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret text, for the one place that sends it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (a configuration error for passwords).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
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

/// `text` with every occurrence of `secret` replaced by `[redacted]`.
pub fn redact(text: &str, secret: &Secret) -> String {
    // A one-character secret would redact half the message; such a secret is refused by the
    // settings anyway, and replacing it would only garble the text.
    if secret.0.len() < 2 {
        return text.to_owned();
    }
    text.replace(&secret.0, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let secret = Secret::new("hunter22");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(
            redact("LOGIN failed for hunter22", &secret),
            "LOGIN failed for [redacted]"
        );
    }
}
