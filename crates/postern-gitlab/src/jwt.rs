//! The `Gitlab-Mailroom-Api-Request` token: what GitLab's `Gitlab::MailRoom::Authenticator`
//! accepts (see
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/mail_room/authenticator.rb>).
//!
//! GitLab verifies HS256 with the *decoded bytes* of the mailbox's `secret_file`: the file read
//! whole, one trailing line ending removed (Ruby's `chomp`), strict Base64 that must decode to
//! exactly 32 bytes. We read it the same way and refuse anything else at start-up, because a
//! secret GitLab would refuse makes every delivery fail with 401. The issuer must be
//! `gitlab-mailroom` and `iat` at most 5 minutes old and not in the future, so a token is made
//! fresh for each request. With a private key configured the token is ES256 instead, with the
//! key's RFC 7638 thumbprint as `kid` (GitLab picks its JWKS when a `kid` is present).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::settings::WebhookSecret;

/// The request header GitLab reads the token from.
pub const HEADER: &str = "Gitlab-Mailroom-Api-Request";
/// The issuer GitLab requires.
pub const ISSUER: &str = "gitlab-mailroom";
/// How far in the past `iat` is set, to tolerate a clock slightly ahead of GitLab's; well
/// inside GitLab's 5-minute window.
pub const IAT_MARGIN: i64 = 10;
/// How many bytes the decoded HS256 secret must have.
pub const SECRET_LENGTH: usize = 32;

/// Why no signer could be made, or no token signed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The secret or key file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The secret is not what GitLab accepts.
    #[error("{what} {problem}")]
    BadSecret {
        /// Where the secret came from (a path, or `auth_token`).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No secret configured.
    #[error("no JWT secret configured (set secret_file, or auth_token in gitlab.rb)")]
    Missing,
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// Signs fresh tokens for one mailbox. `Debug` does not show the key.
#[derive(Clone)]
pub struct JwtSigner {
    key: EncodingKey,
    header: Header,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("alg", &self.header.alg)
            .field("kid", &self.header.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
    nonce: String,
}

impl JwtSigner {
    /// ES256 with `private_key_file` if given, else HS256 with `secret`.
    pub fn from_settings(
        secret: Option<&WebhookSecret>,
        private_key_file: Option<&Path>,
    ) -> Result<JwtSigner, JwtError> {
        if let Some(path) = private_key_file {
            return JwtSigner::es256_from_pem_file(path);
        }
        match secret {
            Some(WebhookSecret::File(path)) => JwtSigner::hs256_from_file(path),
            Some(WebhookSecret::Inline(token)) => {
                JwtSigner::hs256_from_base64(token.expose(), "auth_token")
            }
            None => Err(JwtError::Missing),
        }
    }

    /// HS256 with the secret file GitLab reads (`secret_file`).
    pub fn hs256_from_file(path: &Path) -> Result<JwtSigner, JwtError> {
        let text = std::fs::read(path).map_err(|e| JwtError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(text).map_err(|_| JwtError::BadSecret {
            what: path.display().to_string(),
            problem: "is not strict Base64 text".to_owned(),
        })?;
        JwtSigner::hs256_from_base64(&text, &path.display().to_string())
    }

    /// HS256 with the Base64 text of a secret; `what` names it in errors.
    pub fn hs256_from_base64(text: &str, what: &str) -> Result<JwtSigner, JwtError> {
        let chomped = chomp(text);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chomped)
            .map_err(|_| JwtError::BadSecret {
                what: what.to_owned(),
                problem: "is not strict Base64 (one line, standard alphabet with padding), as GitLab requires".to_owned(),
            })?;
        if bytes.len() != SECRET_LENGTH {
            return Err(JwtError::BadSecret {
                what: what.to_owned(),
                problem: format!("does not contain {SECRET_LENGTH} bytes"),
            });
        }
        Ok(JwtSigner {
            key: EncodingKey::from_secret(&bytes),
            header: Header::new(Algorithm::HS256),
        })
    }

    /// ES256 with a PEM EC P-256 private key; `kid` is its RFC 7638 thumbprint.
    pub fn es256_from_pem_file(path: &Path) -> Result<JwtSigner, JwtError> {
        let pem = std::fs::read(path).map_err(|e| JwtError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let bad = |problem: &str| JwtError::BadSecret {
            what: path.display().to_string(),
            problem: problem.to_owned(),
        };
        let key = EncodingKey::from_ec_pem(&pem)
            .map_err(|_| bad("is not a PEM EC (P-256) private key"))?;
        let kid = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
            .map_err(|_| bad("is not a P-256 key usable for ES256"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid);
        Ok(JwtSigner { key, header })
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// A fresh token: `iss`, `iat`, and a random 24-hex-digit `nonce` (as mail_room).
    ///
    /// `iat` is set [`IAT_MARGIN`] seconds in the past: GitLab refuses a token issued in the
    /// future with no leeway, so a postern clock a second ahead of GitLab's would otherwise
    /// make every delivery fail with 401 (GitLab's own API tests sign with `now - 10 s`).
    pub fn token(&self) -> Result<String, JwtError> {
        self.token_issued_at(now_seconds() - IAT_MARGIN)
    }

    /// A token with a chosen `iat` (tests of GitLab's age check).
    pub fn token_issued_at(&self, iat: i64) -> Result<String, JwtError> {
        self.token_with(ISSUER, iat)
    }

    /// A token with a chosen issuer and `iat` (tests of GitLab's checks).
    pub fn token_with(&self, issuer: &str, iat: i64) -> Result<String, JwtError> {
        let claims = Claims {
            iss: issuer,
            iat,
            nonce: random_hex(12).map_err(JwtError::Sign)?,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| JwtError::Sign(e.to_string()))
    }
}

/// Ruby's `String#chomp`: one trailing `\r\n`, `\n` or `\r` removed, nothing else.
fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// Seconds since the epoch.
pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `n` random bytes as lowercase hex (Ruby's `SecureRandom.hex(n)`), the failure as text.
pub(crate) fn random_hex(n: usize) -> Result<String, String> {
    postern_vocab::random::hex(n).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn reads_the_secret_as_gitlab_does() {
        assert!(JwtSigner::hs256_from_base64(GOOD, "x").is_ok());
        assert!(JwtSigner::hs256_from_base64(&format!("{GOOD}\n"), "x").is_ok());
        assert!(JwtSigner::hs256_from_base64(&format!("{GOOD}\r\n"), "x").is_ok());
        // chomp removes one line ending, not other whitespace; strict Base64 has no blanks.
        assert!(JwtSigner::hs256_from_base64(&format!("{GOOD} "), "x").is_err());
        assert!(JwtSigner::hs256_from_base64(&format!("{GOOD}\n\n"), "x").is_err());
        let short = JwtSigner::hs256_from_base64("AAECAw==", "f").err();
        assert_eq!(
            short.map(|e| e.to_string()),
            Some("f does not contain 32 bytes".to_owned())
        );
        assert!(JwtSigner::hs256_from_base64("not base64!", "x").is_err());
        assert!(
            JwtSigner::hs256_from_base64(GOOD.trim_end_matches('='), "x").is_err(),
            "unpadded"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let signer = JwtSigner::hs256_from_base64(GOOD, "x").ok();
        let debug = format!("{signer:?}");
        assert!(debug.contains("redacted") && !debug.contains(GOOD));
    }

    #[test]
    fn nonce_is_24_hex_digits() {
        let nonce = random_hex(12).unwrap_or_default();
        assert_eq!(nonce.len(), 24);
        assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
