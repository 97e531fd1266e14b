//! The hospital's Ed25519 signing key: every submission is signed with it,
//! and the consortium CA certifies its public half in the hospital's
//! certificate, so the coordinator cannot alter or forge what the hospital
//! contributed without detection.

use std::path::{Path, PathBuf};

use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// A loaded signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The file could not be read.
    #[error("cannot read the signing key {}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 key in PKCS#8 PEM.
    #[error(
        "{} is not an Ed25519 signing key (expected the PEM `PRIVATE KEY` \
         written by `medfed-certs request` as <name>.sign.key)",
        path.display()
    )]
    Format {
        /// The key file.
        path: PathBuf,
    },
    /// The key is not the one the certificate certifies.
    #[error(
        "the signing key {} is not the one certified in {}: use the .sign.key made \
         together with that certificate's request",
        key.display(),
        cert.display()
    )]
    NotCertified {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
}

/// Largest key file read: a PKCS#8 Ed25519 PEM is about 120 bytes.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

impl SigningKey {
    /// Loads a PKCS#8 PEM Ed25519 key.
    ///
    /// # Errors
    /// An unreadable, oversized or malformed file.
    pub fn from_file(path: &Path) -> Result<SigningKey, SigningKeyError> {
        let read = |source| SigningKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let format = || SigningKeyError::Format {
            path: path.to_owned(),
        };
        if std::fs::metadata(path).map_err(read)?.len() > MAX_KEY_FILE_BYTES {
            return Err(format());
        }
        let text = std::fs::read(path).map_err(read)?;
        let pem = pem::parse(&text).map_err(|_| format())?;
        if pem.tag() != "PRIVATE KEY" {
            return Err(format());
        }
        let pair = Ed25519KeyPair::from_pkcs8(pem.contents()).map_err(|_| format())?;
        Ok(SigningKey {
            pair,
            path: path.to_owned(),
        })
    }

    /// The public half.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        key
    }

    /// Checks that `certified` (from the hospital's certificate) is this
    /// key's public half.
    ///
    /// # Errors
    /// [`SigningKeyError::NotCertified`] naming both files.
    pub fn check_certified(
        &self,
        certified: Option<[u8; 32]>,
        cert: &Path,
    ) -> Result<(), SigningKeyError> {
        if certified == Some(self.public_key()) {
            Ok(())
        } else {
            Err(SigningKeyError::NotCertified {
                key: self.path.clone(),
                cert: cert.to_owned(),
            })
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}
