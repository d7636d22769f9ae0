//! [`TokenKey`]: the key that seals incoming-email tokens at rest, and its file.
//!
//! A token acts by mail, so the database keeps only its SHA-256 (for lookup) and a sealed copy
//! (so its owner can see their new-issue address again). The key lives in a file in the data
//! directory, never in the database: a copy of the database alone reveals no token.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::StoreError;
use crate::ids::{hex, random_bytes};

/// Bytes in a key file.
const KEY_LEN: usize = 32;

/// The ChaCha20-Poly1305 key for incoming-email tokens, and where it came from (for errors; the
/// key itself is never printed).
pub struct TokenKey {
    key: LessSafeKey,
    origin: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A key from 32 bytes; `origin` names it in errors (a file path, "test key").
    pub fn from_bytes(bytes: &[u8; KEY_LEN], origin: &str) -> Result<TokenKey, StoreError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| StoreError::TokenKey(format!("unusable token key in {origin}")))?;
        Ok(TokenKey {
            key: LessSafeKey::new(unbound),
            origin: origin.to_owned(),
        })
    }

    /// A fresh random key that exists only in memory (tests).
    pub fn random(origin: &str) -> Result<TokenKey, StoreError> {
        TokenKey::from_bytes(&random_bytes::<KEY_LEN>()?, origin)
    }

    /// Reads the key file at `path`, creating it (mode 0600, 32 random bytes) if it does not
    /// exist. Creation is atomic: the bytes are written and synced under a temporary name, then
    /// hard-linked to `path`, which fails if another process created it first (its key wins).
    pub fn load_or_create(path: &Path) -> Result<TokenKey, StoreError> {
        let file_error = |source: std::io::Error| StoreError::File {
            file: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => return TokenKey::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(e)),
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(file_error)?;
        let bytes = random_bytes::<KEY_LEN>()?;
        let staged: PathBuf = dir.join(format!(".token.key.{}", hex(&random_bytes::<8>()?)));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staged)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            match std::fs::hard_link(&staged, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })();
        let _ = std::fs::remove_file(&staged);
        if written.map_err(file_error)? {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
            return TokenKey::from_bytes(&bytes, &path.display().to_string());
        }
        let bytes = std::fs::read(path).map_err(file_error)?;
        TokenKey::from_file_bytes(path, &bytes)
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<TokenKey, StoreError> {
        let origin = path.display().to_string();
        let Ok(key) = <&[u8; KEY_LEN]>::try_from(bytes) else {
            return Err(StoreError::TokenKey(format!(
                "the token key file {origin} must hold exactly {KEY_LEN} bytes (it holds {})",
                bytes.len()
            )));
        };
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %origin, "token key file readable by others; set mode 0600");
        }
        TokenKey::from_bytes(key, &origin)
    }

    /// Where the key came from (a path), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `token` sealed: hex of a random nonce followed by hex of the ciphertext and tag.
    pub(crate) fn seal(&self, token: &str) -> Result<String, StoreError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut data = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::empty(),
                &mut data,
            )
            .map_err(|_| StoreError::TokenKey("sealing a token failed".to_owned()))?;
        Ok(format!("{}{}", hex(&nonce_bytes), hex(&data)))
    }

    /// The token in `sealed`; an error naming the key file if this key did not seal it.
    pub(crate) fn open(&self, sealed: &str) -> Result<String, StoreError> {
        let wrong = || {
            StoreError::TokenKey(format!(
                "the incoming-email tokens in the database were not sealed with the key in {}: \
                 restore the key file that was backed up with this database",
                self.origin
            ))
        };
        let bytes = unhex(sealed).ok_or_else(wrong)?;
        let (nonce, data) = bytes.split_at_checked(NONCE_LEN).ok_or_else(wrong)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut data)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::TokenKey;

    #[test]
    fn seals_and_opens_only_with_the_same_key() -> Result<(), crate::StoreError> {
        let key = TokenKey::random("a")?;
        let sealed = key.seal("glimt-abc")?;
        assert!(!sealed.contains("glimt"));
        assert_ne!(sealed, key.seal("glimt-abc")?, "nonce is random per seal");
        assert_eq!(key.open(&sealed)?, "glimt-abc");
        let other = TokenKey::random("/data/secrets/token.key")?;
        let error = other.open(&sealed).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("/data/secrets/token.key")));
        assert!(key.open("zz").is_err());
        assert!(key.open("").is_err());
        Ok(())
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secrets/token.key");
        let first = TokenKey::load_or_create(&path)?;
        let sealed = first.seal("glimt-x")?;
        let again = TokenKey::load_or_create(&path)?;
        assert_eq!(again.open(&sealed)?, "glimt-x");
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(path.parent().ok_or("no parent")?)?.count(),
            1
        );
        std::fs::write(&path, b"short")?;
        let error = TokenKey::load_or_create(&path).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("token.key")));
        Ok(())
    }
}
