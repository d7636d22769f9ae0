//! Address templates with a `%{key}` placeholder, both ways.
//!
//! `incoming+%{key}@example.com` matches `incoming+abc@example.com` with key `abc`, and turns key
//! `abc` back into that address. Matching follows GitLab exactly: the template is taken literally,
//! the **first** `%{key}` captures greedily (`.+`), the whole string must match, case matters, and a
//! single `<` before and `>` after are tolerated for raw header values such as `Envelope-To: <…>`.
//! A template without `%{key}` is a *dedicated* address: it yields no key at all.

use regex::Regex;

/// The placeholder GitLab replaces by the mail key.
pub const KEY_PLACEHOLDER: &str = "%{key}";

/// Suffix of the unsubscribe form of a reply key.
pub const UNSUBSCRIBE_SUFFIX: &str = "-unsubscribe";

/// A configured incoming address, ready to extract keys and to build addresses.
#[derive(Debug, Clone)]
pub struct AddressTemplate {
    template: String,
    /// `None` for a dedicated address (no placeholder): such an address never yields a key.
    matcher: Option<Regex>,
}

impl AddressTemplate {
    /// Builds the matcher for `template`.
    pub fn new(template: &str) -> AddressTemplate {
        let matcher = template.find(KEY_PLACEHOLDER).and_then(|at| {
            let before = regex::escape(&template[..at]);
            let after = regex::escape(&template[at + KEY_PLACEHOLDER.len()..]);
            // `.` matches no newline here, as in Ruby; header values are unfolded first.
            Regex::new(&format!(r"\A<?{before}(.+){after}>?\z")).ok()
        });
        AddressTemplate {
            template: template.to_owned(),
            matcher,
        }
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// Whether the template has a `%{key}` placeholder (GitLab's `supports_wildcard?`).
    pub fn supports_wildcard(&self) -> bool {
        self.template.contains(KEY_PLACEHOLDER)
    }

    /// The key carried by `address`, if it matches the template.
    pub fn key_from_address(&self, address: &str) -> Option<String> {
        let captures = self.matcher.as_ref()?.captures(address)?;
        captures.get(1).map(|key| key.as_str().to_owned())
    }

    /// The address for `key` (GitLab's `reply_address`): the first placeholder replaced.
    pub fn address_for_key(&self, key: &str) -> String {
        self.template.replacen(KEY_PLACEHOLDER, key, 1)
    }

    /// The unsubscribe address for a reply key: the key followed by `-unsubscribe`.
    pub fn unsubscribe_address(&self, key: &str) -> String {
        self.address_for_key(&format!("{key}{UNSUBSCRIBE_SUFFIX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_placeholder_captures_greedily() {
        let template = AddressTemplate::new("incoming+%{key}@example.com");
        assert_eq!(
            template
                .key_from_address("incoming+a+b/c@d@example.com")
                .as_deref(),
            Some("a+b/c@d")
        );
        assert_eq!(
            template
                .key_from_address("<incoming+abc@example.com>")
                .as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn literal_parts_are_escaped_and_case_sensitive() {
        let template = AddressTemplate::new("incoming+%{key}@example.com");
        assert_eq!(template.key_from_address("incomingXabc@example.com"), None);
        assert_eq!(template.key_from_address("incoming+abc@exampleXcom"), None);
        assert_eq!(template.key_from_address("Incoming+abc@example.com"), None);
        assert_eq!(template.key_from_address("incoming+@example.com"), None);
        assert_eq!(
            template.key_from_address("\"X\" <incoming+abc@example.com>"),
            None
        );
    }

    #[test]
    fn dedicated_address_yields_no_key() {
        let template = AddressTemplate::new("support@example.com");
        assert!(!template.supports_wildcard());
        assert_eq!(template.key_from_address("support@example.com"), None);
    }

    #[test]
    fn only_the_first_placeholder_captures() {
        let template = AddressTemplate::new("in-%{key}-%{key}@example.com");
        assert_eq!(
            template
                .key_from_address("in-abc-%{key}@example.com")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(template.address_for_key("k"), "in-k-%{key}@example.com");
    }

    #[test]
    fn builds_reply_and_unsubscribe_addresses() {
        let template = AddressTemplate::new("reply+%{key}@appmail.example.com");
        assert_eq!(
            template.unsubscribe_address("59d8"),
            "reply+59d8-unsubscribe@appmail.example.com"
        );
    }

    proptest! {
        #[test]
        fn address_for_key_round_trips(key in "[a-zA-Z0-9+/_.-]{1,40}") {
            let template = AddressTemplate::new("incoming+%{key}@example.com");
            let address = template.address_for_key(&key);
            prop_assert_eq!(template.key_from_address(&address), Some(key));
        }
    }
}
