//! The vault file's outer format: a one-line ASCII header naming the format
//! version and the key fingerprint, then the Fernet token.
//!
//! ```text
//! medfed-vault v1 key=<16 lowercase hex digits>\n
//! <Fernet token: url-safe base64 with = padding>\n
//! ```
//!
//! The header is public and unauthenticated: it only routes errors (not a
//! vault, newer version, wrong key). The token's own HMAC-SHA256
//! authenticates everything that matters: the timestamp, IV and ciphertext
//! of the payload. Parsing here is strict, so a changed byte anywhere in the
//! file is an error.

use std::path::Path;

use crate::error::VaultError;

/// First word of every vault file.
const MAGIC: &str = "medfed-vault";
/// The format version this build writes and reads.
const VERSION: &str = "v1";
/// The header line is never longer than this (it is 37 bytes in v1).
const MAX_HEADER_BYTES: usize = 128;
/// Hex digits in a key fingerprint.
const FINGERPRINT_DIGITS: usize = 16;

/// The header line for a vault encrypted with the key `fingerprint`.
pub(crate) fn header(fingerprint: &str) -> String {
    format!("{MAGIC} {VERSION} key={fingerprint}\n")
}

/// The parts of a vault file.
#[derive(Debug)]
pub(crate) struct VaultFile<'a> {
    /// The key fingerprint from the header.
    pub(crate) fingerprint: &'a str,
    /// The Fernet token.
    pub(crate) token: &'a str,
}

/// Splits a vault file into header fields and token, checking both strictly.
///
/// # Errors
/// [`VaultError::NotAVault`], [`VaultError::UnsupportedVersion`],
/// [`VaultError::Truncated`] or [`VaultError::Tampered`] naming `path`.
pub(crate) fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<VaultFile<'a>, VaultError> {
    let not_a_vault = |reason: &str| VaultError::NotAVault {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let truncated = || VaultError::Truncated {
        path: path.to_path_buf(),
    };
    let prefix = format!("{MAGIC} ");
    if bytes.is_empty() {
        return Err(not_a_vault("the file is empty"));
    }
    if !bytes.starts_with(prefix.as_bytes()) {
        if prefix.as_bytes().starts_with(bytes) {
            return Err(truncated());
        }
        return Err(not_a_vault(
            "it does not start with the `medfed-vault` header",
        ));
    }
    let window = &bytes[..bytes.len().min(MAX_HEADER_BYTES)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if bytes.len() < MAX_HEADER_BYTES {
            return Err(truncated());
        }
        return Err(not_a_vault("its header line is too long"));
    };
    let line = std::str::from_utf8(&bytes[..newline])
        .ok()
        .filter(|l| l.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .ok_or_else(|| not_a_vault("its header line is not plain ASCII text"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let version = words.get(1).copied().unwrap_or_default();
    if version != VERSION {
        let numbered = version.len() <= 8
            && version
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered {
            return Err(VaultError::UnsupportedVersion {
                path: path.to_path_buf(),
                version: version.to_owned(),
            });
        }
        return Err(not_a_vault("its header has no valid format version"));
    }
    let fingerprint = match words.as_slice() {
        [_, _, key] => key.strip_prefix("key=").filter(|f| {
            f.len() == FINGERPRINT_DIGITS
                && f.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }),
        _ => None,
    }
    .ok_or_else(|| not_a_vault("its header has no valid `key=` fingerprint"))?;

    let body = &bytes[newline + 1..];
    let Some(token) = body.strip_suffix(b"\n") else {
        // The writer always ends the file with a newline.
        return Err(truncated());
    };
    if !well_formed_token(token) {
        return Err(VaultError::Tampered {
            path: path.to_path_buf(),
        });
    }
    // Every byte is ASCII now, so this cannot fail; it only spells the type.
    let token = std::str::from_utf8(token).map_err(|_| VaultError::Tampered {
        path: path.to_path_buf(),
    })?;
    Ok(VaultFile { fingerprint, token })
}

/// Whether `b` is in the url-safe base64 alphabet (`A-Z`, `a-z`, `0-9`,
/// `-`, `_`). Written with non-short-circuit `|` so a loop over it
/// compiles to SIMD comparisons.
#[inline]
fn url_safe(b: u8) -> bool {
    (b.wrapping_sub(b'A') < 26)
        | (b.wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'_')
}

/// Canonical padded url-safe base64: alphabet characters, then at most two
/// `=`, total length a multiple of 4.
///
/// The token is nearly all of a vault, so this runs over every byte of it:
/// 64-byte blocks are checked without a branch per byte (about twice as
/// fast as testing each character in turn; the byte-by-byte test was a
/// fifth of a vault load's time).
fn well_formed_token(token: &[u8]) -> bool {
    let body_len = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let padding = token.len() - body_len;
    let body = &token[..body_len];
    body_len > 0
        && token.len().is_multiple_of(4)
        && padding <= 2
        && body
            .chunks(64)
            .all(|block| block.iter().fold(true, |ok, &b| ok & url_safe(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8]) -> Result<VaultFile<'_>, VaultError> {
        parse(Path::new("v.vault"), bytes)
    }

    #[test]
    fn parses_a_well_formed_file() -> Result<(), VaultError> {
        let mut file = header("0123456789abcdef").into_bytes();
        file.extend_from_slice(b"gAAA\n");
        let parsed = check(&file)?;
        assert_eq!(parsed.fingerprint, "0123456789abcdef");
        assert_eq!(parsed.token, "gAAA");
        Ok(())
    }

    #[test]
    fn url_safe_is_the_base64_alphabet() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            assert_eq!(url_safe(b), expected, "byte {b}");
        }
        // A bad character anywhere in a long token, also past the first block.
        let mut token = vec![b'A'; 4 * 100];
        assert!(well_formed_token(&token));
        for at in [0, 63, 64, 200, 399] {
            token[at] = b'+';
            assert!(!well_formed_token(&token), "{at}");
            token[at] = b'A';
        }
        assert!(well_formed_token(b"AB=="));
        assert!(!well_formed_token(b"A==="));
        assert!(!well_formed_token(b"===="));
        assert!(!well_formed_token(b""));
    }

    #[test]
    fn classifies_bad_files() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "NotAVault"),
            (b"age,weight\n1,2\n", "NotAVault"),
            (b"medfed", "Truncated"),
            (b"medfed-vault v1 key=01", "Truncated"),
            (
                b"medfed-vault v2 key=0123456789abcdef\ngAAA\n",
                "UnsupportedVersion",
            ),
            (b"medfed-vault vX key=0123456789abcdef\ngAAA\n", "NotAVault"),
            (b"medfed-vault v1 key=0123456789ABCDEF\ngAAA\n", "NotAVault"),
            (b"medfed-vault v1 key=0123\ngAAA\n", "NotAVault"),
            (
                b"medfed-vault v1 key=0123456789abcdef extra\ngAAA\n",
                "NotAVault",
            ),
            (b"medfed-vault v1 key=0123456789abcdef\ngAAA", "Truncated"),
            (b"medfed-vault v1 key=0123456789abcdef\n", "Truncated"),
            (b"medfed-vault v1 key=0123456789abcdef\n\n", "Tampered"),
            (b"medfed-vault v1 key=0123456789abcdef\ngAA\n", "Tampered"),
            (b"medfed-vault v1 key=0123456789abcdef\ngA+A\n", "Tampered"),
            (
                b"medfed-vault v1 key=0123456789abcdef\ngAAA\n\n",
                "Tampered",
            ),
            (b"medfed-vault v1 key=0123456789abcdef\ng===\n", "Tampered"),
        ];
        for (bytes, kind) in cases {
            let got = match check(bytes) {
                Err(e) => format!("{e:?}"),
                Ok(v) => format!("Ok {v:?}"),
            };
            assert!(
                got.starts_with(kind),
                "{:?}: got {got}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = format!("medfed-vault {}\n", "x".repeat(200));
        assert!(matches!(
            check(long.as_bytes()),
            Err(VaultError::NotAVault { .. })
        ));
    }
}
