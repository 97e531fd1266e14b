//! [`Digest`]: a SHA-256 value (from `ring`), of message bytes or of an
//! entry's canonical encoding.

use std::fmt;
use std::str::FromStr;

use crate::error::AuditError;
use crate::hex;

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// All zeros: the `prev` of the first entry of every log.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_ring(ring::digest::digest(&ring::digest::SHA256, bytes))
    }

    /// The digest with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }

    pub(crate) fn from_ring(digest: ring::digest::Digest) -> Digest {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Digest(bytes)
    }

    /// Parses exactly 64 lowercase hex digits (the log's strict form).
    pub(crate) fn from_log_hex(text: &str) -> Result<Digest, String> {
        hex::decode(text).map(Digest)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = AuditError;

    /// Parses 64 hex digits (either case; surrounding whitespace ignored).
    fn from_str(text: &str) -> Result<Digest, AuditError> {
        hex::decode(&text.trim().to_ascii_lowercase())
            .map(Digest)
            .map_err(|reason| AuditError::InvalidEncoding {
                what: "SHA-256 digest",
                reason,
            })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::of(b"abc").short(), "ba7816bf8f01");
    }
}
