//! The three ways postern asks a token endpoint for an access token, and what each keeps
//! between requests: the refresh token that providers rotate, and the service account's key.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::OAuthError;
use postern_vocab::Secret;

/// The grant type of the JWT bearer assertion (RFC 7523, section 2.1).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long a service account's assertion is valid; Google accepts at most one hour.
const ASSERTION_LIFETIME: u64 = 3600;

/// How a [`TokenSource`](super::TokenSource) obtains its tokens.
pub enum Grant {
    /// Azure AD client credentials: an application's own access (Microsoft 365).
    ClientCredentials {
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// The resource's `.default` scope.
        scope: String,
    },
    /// A refresh token for delegated access to one mailbox (Google, Microsoft), kept in a file
    /// that is rewritten whenever the provider hands out a new one.
    RefreshToken {
        /// The OAuth client id the refresh token was issued to.
        client_id: String,
        /// The client secret, for confidential clients (Google's always have one).
        client_secret: Option<Secret>,
        /// The scope asked for, if the provider wants it repeated (Microsoft).
        scope: Option<String>,
        /// Where the refresh token lives.
        store: RefreshTokenFile,
    },
    /// A Google service account acting for a user of its domain (domain-wide delegation).
    ServiceAccount(ServiceAccount),
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::ClientCredentials {
                client_id, scope, ..
            } => write!(
                f,
                "ClientCredentials {{ client_id: {client_id:?}, scope: {scope:?} }}"
            ),
            Grant::RefreshToken {
                client_id, store, ..
            } => write!(
                f,
                "RefreshToken {{ client_id: {client_id:?}, file: {:?} }}",
                store.path
            ),
            Grant::ServiceAccount(account) => write!(
                f,
                "ServiceAccount {{ client_email: {:?}, subject: {:?} }}",
                account.client_email, account.subject
            ),
        }
    }
}

impl Grant {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ServiceAccount(_) => "service_account",
        }
    }

    /// The form of one token request to `token_url`.
    pub(super) fn form(&self, token_url: &Url) -> Result<Vec<(&'static str, String)>, OAuthError> {
        Ok(match self {
            Grant::ClientCredentials {
                client_id,
                client_secret,
                scope,
            } => vec![
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose().to_owned()),
                ("scope", scope.clone()),
            ],
            Grant::RefreshToken {
                client_id,
                client_secret,
                scope,
                store,
            } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("client_id", client_id.clone()),
                    ("refresh_token", store.current()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose().to_owned()));
                }
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
                form
            }
            Grant::ServiceAccount(account) => vec![
                ("grant_type", JWT_BEARER.to_owned()),
                ("assertion", account.assertion(token_url)?),
            ],
        })
    }

    /// The token endpoint handed out a new refresh token: keep it (in the file, atomically).
    pub(super) fn rotated(&self, refresh_token: Secret) {
        if let Grant::RefreshToken { store, .. } = self
            && store.current() != refresh_token.expose()
        {
            store.replace(refresh_token);
        }
    }

    /// `text` with every secret of the grant replaced.
    pub(super) fn scrub(&self, text: &str) -> String {
        match self {
            Grant::ClientCredentials { client_secret, .. } => client_secret.scrub(text),
            Grant::RefreshToken {
                client_secret,
                store,
                ..
            } => {
                let text = Secret::new(store.current()).scrub(text);
                match client_secret {
                    Some(secret) => secret.scrub(&text),
                    None => text,
                }
            }
            Grant::ServiceAccount(_) => text.to_owned(),
        }
    }
}

/// A refresh token and the file it is kept in (mode 0600). Replacing it writes a new file next
/// to the old one, syncs it and renames it over: a crash leaves the old token or the new one,
/// never a torn file, so a rotation the provider made is not lost with the process.
#[derive(Debug)]
pub struct RefreshTokenFile {
    path: PathBuf,
    current: std::sync::Mutex<Secret>,
}

impl RefreshTokenFile {
    /// Reads the refresh token from `path`.
    pub fn load(path: &Path) -> Result<RefreshTokenFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the refresh token file {}: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "the refresh token file {} is empty; run `postern oauth login`",
                path.display()
            ));
        }
        Ok(RefreshTokenFile {
            path: path.to_owned(),
            current: std::sync::Mutex::new(Secret::new(token)),
        })
    }

    /// Writes `token` to `path` (creating its directory, mode 0700) as a new file of mode 0600.
    pub fn create(path: &Path, token: &Secret) -> Result<RefreshTokenFile, String> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        write_atomically(path, token.expose())?;
        Ok(RefreshTokenFile {
            path: path.to_owned(),
            current: std::sync::Mutex::new(token.clone()),
        })
    }

    /// Where the token is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn current(&self) -> String {
        let guard = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.expose().to_owned()
    }

    /// Keeps `token` in memory and in the file. A failed write is logged, not returned: the new
    /// token is still used for as long as this process runs, which is the best left to do.
    fn replace(&self, token: Secret) {
        if let Err(error) = write_atomically(&self.path, token.expose()) {
            tracing::error!(%error, "the provider rotated the refresh token but it could not be saved; run `postern oauth login` again after a restart if it is refused");
        } else {
            tracing::info!(file = %self.path.display(), "refresh token rotated and saved");
        }
        match self.current.lock() {
            Ok(mut guard) => *guard = token,
            Err(poisoned) => *poisoned.into_inner() = token,
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Writes `content` to `path` through a temporary file (0600) in the same directory: sync,
/// rename over, sync the directory.
fn write_atomically(path: &Path, content: &str) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    // tempfile creates the file with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(content.as_bytes()).map_err(fail)?;
    file.write_all(b"\n").map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)
}

/// A Google service account key (the JSON file the Cloud console hands out) and the user it
/// acts for.
pub struct ServiceAccount {
    client_email: String,
    key_id: Option<String>,
    key: jsonwebtoken::EncodingKey,
    subject: String,
    scope: String,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceAccount {
    /// Reads a service account key file; the account will act for `subject` (the mailbox's
    /// address) with `scope`. Returns the account and the key file's `token_uri`, if any.
    pub fn load(
        path: &Path,
        subject: &str,
        scope: &str,
    ) -> Result<(ServiceAccount, Option<String>), String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read the service account file {}: {e}",
                path.display()
            )
        })?;
        // serde_json's error names a line and column, never the content.
        let file: KeyFile = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a service account key file ({e})", path.display()))?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(format!(
                "{} is not a service account key file (type is not service_account)",
                path.display()
            ));
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.as_bytes())
            .map_err(|_| format!("{}: private_key is not an RSA key in PEM", path.display()))?;
        Ok((
            ServiceAccount {
                client_email: file.client_email,
                key_id: file.private_key_id,
                key,
                subject: subject.to_owned(),
                scope: scope.to_owned(),
            },
            file.token_uri,
        ))
    }

    /// A signed assertion for `token_url`, valid for an hour from now.
    fn assertion(&self, token_url: &Url) -> Result<String, OAuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: &self.client_email,
            sub: &self.subject,
            scope: &self.scope,
            aud: token_url.as_str(),
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| OAuthError::Local(format!("cannot sign the assertion: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_rotation_replaces_the_file_whole_and_private() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("oauth/mailbox.refresh-token");
        let store = RefreshTokenFile::create(&path, &Secret::new("1//first")).expect("created");
        let dir_mode = std::fs::metadata(path.parent().expect("parent"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let grant = Grant::RefreshToken {
            client_id: "c".to_owned(),
            client_secret: Some(Secret::new("client-secret")),
            scope: None,
            store,
        };
        grant.rotated(Secret::new("1//second"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read").trim(),
            "1//second"
        );
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left behind: {names:?}");
        let reloaded = RefreshTokenFile::load(&path).expect("loads");
        assert_eq!(reloaded.current(), "1//second");

        // Errors from the endpoint never carry the refresh token or the client secret.
        let text = grant.scrub("bad 1//second for client-secret");
        assert!(
            !text.contains("1//second") && !text.contains("client-secret"),
            "{text}"
        );
        assert!(!format!("{grant:?}").contains("1//second"));
    }

    #[test]
    fn an_empty_or_missing_file_says_to_log_in() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").expect("write");
        let error = RefreshTokenFile::load(&path).expect_err("empty");
        assert!(error.contains("postern oauth login"), "{error}");
        assert!(RefreshTokenFile::load(&dir.path().join("absent")).is_err());
    }
}
