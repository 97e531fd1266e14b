//! [`VaultKey`]: the Fernet key that encrypts a vault, where it is loaded
//! from, how a new one is stored, and its public fingerprint.
//!
//! A key is 32 random bytes written as url-safe base64 (44 characters), the
//! standard Fernet key text. Its fingerprint, the hex of the first 8 bytes of
//! its SHA-256, is public: vault headers carry it so that a wrong key can be
//! told apart from a damaged vault. Neither `Debug` nor any error shows the
//! key text.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use fernet::Fernet;

use crate::error::VaultError;
use medfed_fsutil as fsutil;

/// The environment variable [`VaultKey::from_env`] is usually given.
pub const KEY_ENV_VAR: &str = "MEDFED_VAULT_KEY";

/// Largest key file read; a key file holds one 44-character line.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Bytes in a Fernet key.
const KEY_BYTES: usize = 32;

/// A Fernet key. `Debug` prints only the fingerprint; the key bytes are
/// overwritten when it is dropped.
#[derive(Clone)]
pub struct VaultKey {
    bytes: [u8; KEY_BYTES],
    fernet: Fernet,
    fingerprint: String,
}

impl VaultKey {
    /// A new random key (from the operating system's generator, via fernet).
    pub fn generate() -> VaultKey {
        let mut text = Fernet::generate_key();
        let key = VaultKey::from_base64(&text);
        wipe_string(&mut text);
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
    /// [`VaultError::InvalidKey`] when the text is not url-safe base64 of
    /// exactly 32 bytes. The error never echoes the text.
    pub fn from_base64(text: &str) -> Result<VaultKey, VaultError> {
        VaultKey::parse(text, || "the key text".to_owned())
    }

    /// Reads a key file written by [`VaultKey::write_new`] (or any file
    /// holding one Fernet key).
    ///
    /// # Errors
    /// [`VaultError::Read`] when the file cannot be read,
    /// [`VaultError::InvalidKey`] when it does not hold a key (too large, not
    /// text, or malformed).
    pub fn from_file(path: &Path) -> Result<VaultKey, VaultError> {
        let read_error = |source| VaultError::Read {
            path: path.to_path_buf(),
            source,
        };
        let origin = || format!("key file {}", path.display());
        let file = File::open(path).map_err(read_error)?;
        let too_large = || VaultError::InvalidKey {
            origin: origin(),
            reason: format!("the file is larger than {MAX_KEY_FILE_BYTES} bytes"),
        };
        if file.metadata().map_err(read_error)?.len() > MAX_KEY_FILE_BYTES {
            return Err(too_large());
        }
        let mut raw = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(read_error)?;
        if raw.len() as u64 > MAX_KEY_FILE_BYTES {
            raw.fill(0);
            return Err(too_large());
        }
        let result = match std::str::from_utf8(&raw) {
            Ok(text) => VaultKey::parse(text, origin),
            Err(_) => Err(VaultError::InvalidKey {
                origin: origin(),
                reason: "the file is not text".into(),
            }),
        };
        raw.fill(0);
        result
    }

    /// Reads the key from the environment variable `var`.
    ///
    /// # Errors
    /// [`VaultError::KeyEnvUnset`] when `var` is not set,
    /// [`VaultError::InvalidKey`] (naming `var`) when it does not hold a key.
    pub fn from_env(var: &str) -> Result<VaultKey, VaultError> {
        let origin = || format!("environment variable {var}");
        match std::env::var(var) {
            Ok(mut text) => {
                let key = VaultKey::parse(&text, origin);
                wipe_string(&mut text);
                key
            }
            Err(std::env::VarError::NotPresent) => Err(VaultError::KeyEnvUnset {
                var: var.to_owned(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(VaultError::InvalidKey {
                origin: origin(),
                reason: "the value is not valid Unicode".into(),
            }),
        }
    }

    /// Writes this key to a new file readable only by its owner (mode 0600
    /// on Unix), synced to disk.
    ///
    /// # Errors
    /// [`VaultError::KeyFileExists`] when `path` already exists: overwriting
    /// a key would orphan the vaults encrypted with it.
    /// [`VaultError::Write`] when the file cannot be created or written (a
    /// partly written file is removed).
    pub fn write_new(&self, path: &Path) -> Result<(), VaultError> {
        let write_error = |action, source| VaultError::Write {
            path: path.to_path_buf(),
            action,
            source,
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        fsutil::owner_only(&mut options);
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                VaultError::KeyFileExists {
                    path: path.to_path_buf(),
                }
            } else {
                write_error("create the key file", source)
            }
        })?;
        let mut text = URL_SAFE.encode(self.bytes);
        text.push('\n');
        let written = fsutil::restrict_permissions(&file)
            .map_err(|e| write_error("set the key file's permissions to 0600", e))
            .and_then(|()| {
                file.write_all(text.as_bytes())
                    .map_err(|e| write_error("write the key file", e))
            })
            .and_then(|()| {
                file.sync_all()
                    .map_err(|e| write_error("sync the key file to disk", e))
            });
        wipe_string(&mut text);
        drop(file);
        if let Err(error) = written {
            // We created this file a moment ago: it holds no one else's key.
            let _ = std::fs::remove_file(path);
            return Err(error);
        }
        fsutil::sync_parent_dir(path)
            .map_err(|e| write_error("sync the key file's directory to disk", e))
    }

    /// Short public identifier: hex of the first 8 bytes of the SHA-256 of
    /// the key bytes (16 lowercase hex digits).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The Fernet instance for this key.
    pub(crate) fn fernet(&self) -> &Fernet {
        &self.fernet
    }

    fn parse(text: &str, origin: impl Fn() -> String) -> Result<VaultKey, VaultError> {
        let invalid = |reason: String| VaultError::InvalidKey {
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
            decoded.fill(0);
            return Err(invalid(format!("it decodes to {got} bytes")));
        };
        decoded.fill(0);
        let mut canonical = URL_SAFE.encode(bytes);
        let fernet = Fernet::new(&canonical);
        wipe_string(&mut canonical);
        let Some(fernet) = fernet else {
            return Err(invalid("fernet rejected it".into()));
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let fingerprint = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(VaultKey {
            bytes,
            fernet,
            fingerprint,
        })
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Drop for VaultKey {
    fn drop(&mut self) {
        fsutil::wipe(&mut self.bytes);
    }
}

/// Overwrites a string's bytes (ASCII zeros keep it valid UTF-8) and empties it.
fn wipe_string(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    fsutil::wipe(&mut bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_prefix() -> Result<(), VaultError> {
        // 32 zero bytes; SHA-256 = 66687aadf862bd776c8fc18b8e9f8e20...
        let key = VaultKey::from_base64(&URL_SAFE.encode([0u8; 32]))?;
        assert_eq!(key.fingerprint(), "66687aadf862bd77");
        Ok(())
    }

    #[test]
    fn parse_accepts_whitespace_and_missing_padding() -> Result<(), VaultError> {
        let text = URL_SAFE.encode([7u8; 32]);
        let a = VaultKey::from_base64(&format!("  {text}\n"))?;
        let b = VaultKey::from_base64(text.trim_end_matches('='))?;
        assert_eq!(a.fingerprint(), b.fingerprint());
        Ok(())
    }

    #[test]
    fn parse_errors_never_echo_the_text() {
        let secret = "SECRETSECRET+/";
        let short = URL_SAFE.encode([1u8; 16]);
        for text in ["", "   ", secret, short.as_str()] {
            match VaultKey::from_base64(text) {
                Err(VaultError::InvalidKey { origin, reason }) => {
                    assert_eq!(origin, "the key text");
                    if !text.trim().is_empty() {
                        assert!(!reason.contains(text.trim()), "{reason}");
                    }
                }
                other => panic!("expected InvalidKey, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let key = VaultKey::generate();
        let text = format!("{key:?}");
        assert!(text.contains(&key.fingerprint()));
        assert!(!text.contains(&URL_SAFE.encode(key.bytes)));
        assert!(!text.contains("bytes"));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            VaultKey::generate().fingerprint(),
            VaultKey::generate().fingerprint()
        );
    }
}
