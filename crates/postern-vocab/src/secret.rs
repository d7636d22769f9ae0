//! A value that must never be printed: passwords, client secrets, access tokens, URLs that
//! carry a password.
//!
//! `Debug` and `Display` print `[redacted]`, so a secret inside a settings struct, an error or a
//! tracing field cannot leak by accident; the one place that needs the value calls
//! [`Secret::expose`]. Reading one from YAML or JSON takes the plain string.

use std::fmt;

use serde::Deserialize;

/// A secret string. It is never compared with attacker input (checks of presented tokens hash
/// them first), so no constant-time comparison is needed here; what matters is that it never
/// reaches a log.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (a missing setting).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of this secret replaced by `[redacted]`, for error texts
    /// that echo what was sent (a server repeating a request, a URL in an error).
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
        assert_eq!(Secret::new("x").scrub("x marks"), "x marks");
    }

    #[test]
    fn reads_as_a_plain_string_and_debugs_redacted_inside_structs() {
        #[derive(Debug, Deserialize)]
        struct Settings {
            password: Secret,
        }
        let settings: Settings =
            serde_json::from_str(r#"{"password": "hunter2"}"#).expect("parses");
        assert_eq!(settings.password.expose(), "hunter2");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
