//! Ed25519 keys and signatures: [`SigningKey`] (the writer's, or a
//! hospital's), [`PublicKey`] and [`Signature`], all from `ring`.
//!
//! A signing key file is a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the
//! same form `medfed-certs request` writes as `<name>.sign.key`, so a node
//! may sign its log with its certified member key. Entry signatures are
//! domain-separated (see the crate docs), so a log signature can never be
//! mistaken for a member's signature on a message. Public keys and
//! signatures are written as lowercase hex.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::error::AuditError;
use crate::fsutil;
use crate::hex;

/// Largest signing key file read: a PKCS#8 Ed25519 PEM is about 120 bytes.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// PEM label of a PKCS#8 private key.
const PEM_TAG: &str = "PRIVATE KEY";

/// An Ed25519 key pair. Cheap to clone (shared); `Debug` shows only the
/// public half, and the PKCS#8 bytes are overwritten when the last clone
/// is dropped.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
    public: PublicKey,
}

impl Drop for Inner {
    fn drop(&mut self) {
        fsutil::wipe(&mut self.pkcs8);
    }
}

impl SigningKey {
    /// A new random key pair.
    ///
    /// # Errors
    /// [`AuditError::RandomFailed`] when the system random generator fails.
    pub fn generate() -> Result<SigningKey, AuditError> {
        let failed = || AuditError::RandomFailed {
            what: "an Ed25519 signing key",
        };
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| failed())?;
        let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| failed())?;
        Ok(SigningKey::from_parts(pair, document.as_ref().to_vec()))
    }

    /// Loads a PKCS#8 PEM Ed25519 key (v2 as ring and `medfed-certs` write
    /// it, or v1 as OpenSSL writes it).
    ///
    /// # Errors
    /// [`AuditError::Io`] when the file cannot be read,
    /// [`AuditError::InvalidSigningKey`] when it is too large, not PEM, not
    /// a `PRIVATE KEY`, or not Ed25519.
    pub fn from_file(path: &Path) -> Result<SigningKey, AuditError> {
        let invalid = |reason: &str| AuditError::InvalidSigningKey {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let Some(mut raw) = fsutil::read_small(path, MAX_KEY_FILE_BYTES)? else {
            return Err(invalid(&format!(
                "the file is larger than {MAX_KEY_FILE_BYTES} bytes"
            )));
        };
        let parsed = pem::parse(&raw);
        fsutil::wipe(&mut raw);
        let pem = parsed.map_err(|_| invalid("the file is not PEM"))?;
        if pem.tag() != PEM_TAG {
            return Err(invalid(&format!(
                "the PEM label is {:?}, not {PEM_TAG:?}",
                pem.tag()
            )));
        }
        let mut pkcs8 = pem.into_contents();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8));
        match pair {
            Ok(pair) => Ok(SigningKey::from_parts(pair, pkcs8)),
            Err(_) => {
                fsutil::wipe(&mut pkcs8);
                Err(invalid("the PKCS#8 document is not an Ed25519 key"))
            }
        }
    }

    /// Writes this key as PKCS#8 PEM to a new file readable only by its
    /// owner (mode 0600 on Unix, created with `create_new`), synced to disk.
    ///
    /// # Errors
    /// [`AuditError::KeyFileExists`] when `path` already exists,
    /// [`AuditError::Io`] when it cannot be created or written (a partly
    /// written file is removed).
    pub fn write_new(&self, path: &Path) -> Result<(), AuditError> {
        let mut text = pem::encode(&pem::Pem::new(PEM_TAG, self.inner.pkcs8.clone()));
        let result = fsutil::write_new_secret(path, text.as_bytes());
        fsutil::wipe_string(&mut text);
        result
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public
    }

    /// The ring key pair, for protocols that sign with the same certified
    /// key (secure aggregation's advertised keys).
    pub fn key_pair(&self) -> &Ed25519KeyPair {
        &self.inner.pair
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let signature = self.inner.pair.sign(message);
        let mut bytes = [0u8; SIGNATURE_BYTES];
        bytes.copy_from_slice(signature.as_ref());
        Signature(bytes)
    }

    fn from_parts(pair: Ed25519KeyPair, pkcs8: Vec<u8>) -> SigningKey {
        let mut public = [0u8; PUBLIC_KEY_BYTES];
        public.copy_from_slice(pair.public_key().as_ref());
        SigningKey {
            inner: Arc::new(Inner {
                pair,
                pkcs8,
                public: PublicKey(public),
            }),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.inner.public)
            .finish_non_exhaustive()
    }
}

/// Bytes in an Ed25519 public key.
const PUBLIC_KEY_BYTES: usize = 32;
/// Bytes in an Ed25519 signature.
const SIGNATURE_BYTES: usize = 64;

/// An Ed25519 public key: 32 bytes, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; PUBLIC_KEY_BYTES]);

impl PublicKey {
    /// The key with these bytes. Any 32 bytes are accepted; bytes that are
    /// not a valid curve point simply verify nothing.
    pub fn from_bytes(bytes: [u8; PUBLIC_KEY_BYTES]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.0
    }

    /// Whether `signature` is this key's Ed25519 signature over `message`.
    #[must_use]
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &signature.0)
            .is_ok()
    }

    /// Parses exactly 64 lowercase hex digits (the log's strict form).
    pub(crate) fn from_log_hex(text: &str) -> Result<PublicKey, String> {
        hex::decode(text).map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = AuditError;

    /// Parses 64 hex digits (either case; surrounding whitespace ignored).
    fn from_str(text: &str) -> Result<PublicKey, AuditError> {
        hex::decode(&text.trim().to_ascii_lowercase())
            .map(PublicKey)
            .map_err(|reason| AuditError::InvalidEncoding {
                what: "Ed25519 public key",
                reason,
            })
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// An Ed25519 signature: 64 bytes, written as 128 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_BYTES]);

impl Signature {
    /// The signature with these bytes.
    pub fn from_bytes(bytes: [u8; SIGNATURE_BYTES]) -> Signature {
        Signature(bytes)
    }

    /// The 64 bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }

    /// Parses exactly 128 lowercase hex digits (the log's strict form).
    pub(crate) fn from_log_hex(text: &str) -> Result<Signature, String> {
        hex::decode(text).map(Signature)
    }
}

impl TryFrom<&[u8]> for Signature {
    type Error = AuditError;

    /// Takes a signature as received on the wire (e.g. `pb::Signed::signature`).
    ///
    /// # Errors
    /// [`AuditError::InvalidEncoding`] unless `bytes` is 64 bytes long.
    fn try_from(bytes: &[u8]) -> Result<Signature, AuditError> {
        <[u8; SIGNATURE_BYTES]>::try_from(bytes)
            .map(Signature)
            .map_err(|_| AuditError::InvalidEncoding {
                what: "Ed25519 signature",
                reason: format!("expected {SIGNATURE_BYTES} bytes, got {}", bytes.len()),
            })
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = AuditError;

    /// Parses 128 hex digits (either case; surrounding whitespace ignored).
    fn from_str(text: &str) -> Result<Signature, AuditError> {
        hex::decode(&text.trim().to_ascii_lowercase())
            .map(Signature)
            .map_err(|reason| AuditError::InvalidEncoding {
                what: "Ed25519 signature",
                reason,
            })
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject() -> Result<(), AuditError> {
        let key = SigningKey::generate()?;
        let other = SigningKey::generate()?;
        let signature = key.sign(b"message");
        assert!(key.public_key().verify(b"message", &signature));
        assert!(!key.public_key().verify(b"messagE", &signature));
        assert!(!other.public_key().verify(b"message", &signature));
        Ok(())
    }

    #[test]
    fn hex_round_trips() -> Result<(), AuditError> {
        let key = SigningKey::generate()?;
        let public = key.public_key();
        assert_eq!(public.to_string().parse::<PublicKey>()?, public);
        assert_eq!(
            public.to_string().to_uppercase().parse::<PublicKey>()?,
            public
        );
        let signature = key.sign(b"x");
        assert_eq!(signature.to_string().parse::<Signature>()?, signature);
        assert!("abc".parse::<PublicKey>().is_err());
        assert!(Signature::try_from(&[0u8; 63][..]).is_err());
        Ok(())
    }

    #[test]
    fn pem_file_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("writer.sign.key");
        let key = SigningKey::generate()?;
        key.write_new(&path)?;
        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKey::from_file(&path)?;
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            key.write_new(&path),
            Err(AuditError::KeyFileExists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        Ok(())
    }

    #[test]
    fn bad_files_are_named_and_key_text_never_shown() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bad.key");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n",
        )?;
        let text = SigningKey::from_file(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains("U0VDUkVU"), "{text}");
        Ok(())
    }
}
