//! [`AuditKey`]: the Fernet key that encrypts the message bytes in a log.
//!
//! It is distinct from any vault key: the writer (coordinator or node) uses
//! it to encrypt, and the auditor holds a copy to read payloads. A key is 32
//! random bytes written as url-safe base64 (44 characters), the standard
//! Fernet key text. Its fingerprint, the hex of the first 8 bytes of its
//! SHA-256, is public. Neither `Debug` nor any error shows the key text.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use fernet::Fernet;

use crate::error::AuditError;
use crate::fsutil;
use crate::hex;

/// The environment variable the audit key may come from.
pub const AUDIT_KEY_ENV: &str = "MEDFED_AUDIT_KEY";

/// Largest key file read; a key file holds one 44-character line.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Bytes in a Fernet key.
const KEY_BYTES: usize = 32;

/// A Fernet key for log payloads. `Debug` prints only the fingerprint; the
/// key bytes are overwritten when it is dropped.
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; KEY_BYTES],
    fernet: Fernet,
    fingerprint: String,
}

impl AuditKey {
    /// A new random key (from the operating system's generator, via fernet).
    pub fn generate() -> AuditKey {
        let mut text = Fernet::generate_key();
        let key = AuditKey::from_base64(&text);
        fsutil::wipe_string(&mut text);
        match key {
            Ok(key) => key,
            // fernet's own generated key always has the right form.
            Err(_) => unreachable!("Fernet::generate_key returned a malformed key"),
        }
    }

    /// Parses a key: 32 bytes as url-safe base64, surrounding whitespace
    /// ignored.
    ///
    /// # Errors
    /// [`AuditError::InvalidAuditKey`] when the text is not url-safe base64
    /// of exactly 32 bytes. The error never echoes the text.
    pub fn from_base64(text: &str) -> Result<AuditKey, AuditError> {
        AuditKey::parse(text, || "the key text".to_owned())
    }

    /// Reads a key file written by [`AuditKey::write_new`] (or any file
    /// holding one Fernet key).
    ///
    /// # Errors
    /// [`AuditError::Io`] when the file cannot be read,
    /// [`AuditError::InvalidAuditKey`] when it does not hold a key.
    pub fn from_file(path: &Path) -> Result<AuditKey, AuditError> {
        let origin = || format!("key file {}", path.display());
        let Some(mut raw) = fsutil::read_small(path, MAX_KEY_FILE_BYTES)? else {
            return Err(AuditError::InvalidAuditKey {
                origin: origin(),
                reason: format!("the file is larger than {MAX_KEY_FILE_BYTES} bytes"),
            });
        };
        let result = match std::str::from_utf8(&raw) {
            Ok(text) => AuditKey::parse(text, origin),
            Err(_) => Err(AuditError::InvalidAuditKey {
                origin: origin(),
                reason: "the file is not text".into(),
            }),
        };
        fsutil::wipe(&mut raw);
        result
    }

    /// Reads the key from the environment variable `var` (usually
    /// [`AUDIT_KEY_ENV`]).
    ///
    /// # Errors
    /// [`AuditError::AuditKeyEnvUnset`] when `var` is not set,
    /// [`AuditError::InvalidAuditKey`] (naming `var`) when it does not hold
    /// a key.
    pub fn from_env(var: &str) -> Result<AuditKey, AuditError> {
        let origin = || format!("environment variable {var}");
        match std::env::var(var) {
            Ok(mut text) => {
                let key = AuditKey::parse(&text, origin);
                fsutil::wipe_string(&mut text);
                key
            }
            Err(std::env::VarError::NotPresent) => Err(AuditError::AuditKeyEnvUnset {
                var: var.to_owned(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(AuditError::InvalidAuditKey {
                origin: origin(),
                reason: "the value is not valid Unicode".into(),
            }),
        }
    }

    /// Writes this key to a new file readable only by its owner (mode 0600
    /// on Unix, created with `create_new`), synced to disk.
    ///
    /// # Errors
    /// [`AuditError::KeyFileExists`] when `path` already exists: overwriting
    /// the key would make the payloads encrypted with it unreadable.
    /// [`AuditError::Io`] when the file cannot be created or written (a
    /// partly written file is removed).
    pub fn write_new(&self, path: &Path) -> Result<(), AuditError> {
        let mut text = URL_SAFE.encode(self.bytes);
        text.push('\n');
        let result = fsutil::write_new_secret(path, text.as_bytes());
        fsutil::wipe_string(&mut text);
        result
    }

    /// Short public identifier: hex of the first 8 bytes of the SHA-256 of
    /// the key bytes (16 lowercase hex digits).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Encrypts `message` as a Fernet token (AES-128-CBC, HMAC-SHA256, a
    /// random IV and the current time).
    pub fn encrypt(&self, message: &[u8]) -> String {
        self.fernet.encrypt(message)
    }

    /// Decrypts a Fernet token made with this key (no time-to-live).
    ///
    /// Returns `None` when the token was made with another key or was
    /// altered; Fernet does not say which.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        self.fernet.decrypt(token).ok()
    }

    fn parse(text: &str, origin: impl Fn() -> String) -> Result<AuditKey, AuditError> {
        let invalid = |reason: String| AuditError::InvalidAuditKey {
            origin: origin(),
            reason,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let mut decoded = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| {
                invalid(format!(
                    "its {} characters are not url-safe base64 (A-Z a-z 0-9 - _ and = padding)",
                    text.chars().count()
                ))
            })?;
        let Ok(bytes) = <[u8; KEY_BYTES]>::try_from(decoded.as_slice()) else {
            let got = decoded.len();
            fsutil::wipe(&mut decoded);
            return Err(invalid(format!("it decodes to {got} bytes")));
        };
        fsutil::wipe(&mut decoded);
        let mut canonical = URL_SAFE.encode(bytes);
        let fernet = Fernet::new(&canonical);
        fsutil::wipe_string(&mut canonical);
        let Some(fernet) = fernet else {
            return Err(invalid("fernet rejected it".into()));
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let fingerprint = hex::encode(&digest.as_ref()[..8]);
        Ok(AuditKey {
            bytes,
            fernet,
            fingerprint,
        })
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Drop for AuditKey {
    fn drop(&mut self) {
        fsutil::wipe(&mut self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_prefix() -> Result<(), AuditError> {
        // SHA-256 of 32 zero bytes = 66687aadf862bd776c8fc18b8e9f8e20...
        let key = AuditKey::from_base64(&URL_SAFE.encode([0u8; 32]))?;
        assert_eq!(key.fingerprint(), "66687aadf862bd77");
        Ok(())
    }

    #[test]
    fn encrypt_decrypt_round_trip_and_wrong_key() {
        let key = AuditKey::generate();
        let token = key.encrypt(b"hello");
        assert_eq!(key.decrypt(&token).as_deref(), Some(&b"hello"[..]));
        assert_eq!(AuditKey::generate().decrypt(&token), None);
    }

    #[test]
    fn file_round_trip_is_owner_only_and_never_overwrites() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.key");
        let key = AuditKey::generate();
        key.write_new(&path)?;
        assert_eq!(AuditKey::from_file(&path)?.fingerprint(), key.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(
            AuditKey::generate().write_new(&path),
            Err(AuditError::KeyFileExists { .. })
        ));
        assert_eq!(AuditKey::from_file(&path)?.fingerprint(), key.fingerprint());
        Ok(())
    }

    #[test]
    fn errors_never_echo_the_text() -> Result<(), Box<dyn std::error::Error>> {
        let secret = "SECRETSECRETSECRET";
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bad.key");
        std::fs::write(&path, secret)?;
        for error in [
            AuditKey::from_base64(secret).err(),
            AuditKey::from_file(&path).err(),
        ] {
            let text = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains("invalid audit key"), "{text}");
            assert!(!text.contains(secret), "{text}");
        }
        Ok(())
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let key = AuditKey::generate();
        let text = format!("{key:?}");
        assert!(text.contains(key.fingerprint()));
        assert!(!text.contains(&URL_SAFE.encode(key.bytes)));
    }
}
