//! [`write_vault`] and [`read_vault`]: a [`Table`] encrypted with a
//! [`VaultKey`] into a vault file, and back.
//!
//! Writing serialises the table in memory ([`crate::payload`]), encrypts it
//! with Fernet (AES-128-CBC + HMAC-SHA256), wipes the plaintext buffer, and
//! replaces the file atomically ([`crate::atomic`]) in the format of
//! [`crate::format`]. No plaintext ever touches disk.
//!
//! Reading bounds the file size before reading, checks the header, compares
//! the key fingerprint (so a wrong key is reported as such, not as damage),
//! verifies and decrypts the token with no time-to-live (a vault stays valid
//! for years), and decodes the payload strictly.
//!
//! Fernet itself refuses a token stamped more than 60 seconds in the future,
//! so a vault written while the clock was far ahead reads as damaged until
//! the clock catches up.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::error::VaultError;
use crate::key::VaultKey;
use crate::table::Table;
use crate::{atomic, format, payload};
use medfed_fsutil as fsutil;

/// Largest vault file [`read_vault`] reads (and [`write_vault`] writes): 16 GiB.
pub const MAX_VAULT_BYTES: u64 = 16 << 30;

/// Encrypts `table` with `key` and atomically writes it to `path`.
///
/// The table is serialised and encrypted in memory, written to a temporary
/// file in the same directory (mode 0600), synced, renamed over `path`, and
/// the directory is synced. An existing vault is never left half-written: on
/// any error before the rename the temporary file is removed and the old
/// vault is untouched.
///
/// # Errors
/// [`VaultError::InvalidTable`] when the table is too large for a vault
/// (column names over 64 KiB, more than a million columns, or over
/// [`MAX_VAULT_BYTES`] encrypted); [`VaultError::Write`] naming the step
/// that failed.
pub fn write_vault(path: &Path, table: &Table, key: &VaultKey) -> Result<(), VaultError> {
    write_vault_with(path, table, key, &mut |_| Ok(()))
}

/// [`write_vault`] with a hook before each file-system step, for tests.
pub(crate) fn write_vault_with(
    path: &Path,
    table: &Table,
    key: &VaultKey,
    before: &mut dyn FnMut(atomic::Step) -> io::Result<()>,
) -> Result<(), VaultError> {
    let mut plaintext = payload::encode(table)?;
    let token = key.fernet().encrypt(&plaintext);
    fsutil::wipe(&mut plaintext);
    drop(plaintext);
    let header = format::header(&key.fingerprint());
    let size = (header.len() + token.len() + 1) as u64;
    if size > MAX_VAULT_BYTES {
        return Err(VaultError::InvalidTable {
            reason: format!(
                "encrypted it takes {size} bytes, more than a vault may ({MAX_VAULT_BYTES})"
            ),
        });
    }
    atomic::replace_with(path, &[header.as_bytes(), token.as_bytes(), b"\n"], before)
}

/// Reads and decrypts the vault at `path` with `key`.
///
/// # Errors
/// - [`VaultError::Read`]: the file cannot be opened or read.
/// - [`VaultError::FileTooLarge`]: over [`MAX_VAULT_BYTES`].
/// - [`VaultError::NotAVault`], [`VaultError::UnsupportedVersion`]: not a
///   vault this build reads.
/// - [`VaultError::WrongKey`]: encrypted with another key (both fingerprints
///   named).
/// - [`VaultError::Truncated`], [`VaultError::Tampered`]: the file was cut
///   short, altered or damaged.
/// - [`VaultError::CorruptPayload`]: authentic, but its contents are
///   malformed.
pub fn read_vault(path: &Path, key: &VaultKey) -> Result<Table, VaultError> {
    let read_error = |source| VaultError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = || VaultError::FileTooLarge {
        path: path.to_path_buf(),
        limit: MAX_VAULT_BYTES,
    };
    let file = File::open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(VaultError::NotAVault {
            path: path.to_path_buf(),
            reason: "it is not a regular file".into(),
        });
    }
    if metadata.len() > MAX_VAULT_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_VAULT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_VAULT_BYTES {
        return Err(too_large());
    }

    let parsed = format::parse(path, &bytes)?;
    let given = key.fingerprint();
    if parsed.fingerprint != given {
        return Err(VaultError::WrongKey {
            path: path.to_path_buf(),
            vault_key: parsed.fingerprint.to_owned(),
            given_key: given,
        });
    }
    let mut plaintext = key
        .fernet()
        .decrypt(parsed.token)
        .map_err(|_| VaultError::Tampered {
            path: path.to_path_buf(),
        })?;
    let table = payload::decode(&plaintext).map_err(|m| VaultError::CorruptPayload {
        path: path.to_path_buf(),
        reason: m.0,
    });
    fsutil::wipe(&mut plaintext);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::Step;

    fn table(value: f64) -> Result<Table, VaultError> {
        Table::new(vec!["x".into()], vec![value])
    }

    #[test]
    fn failed_write_keeps_previous_vault_and_leaves_no_temp()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("site.vault");
        let key = VaultKey::generate();
        write_vault(&path, &table(1.0)?, &key)?;
        for failing in [Step::Create, Step::Write, Step::SyncFile, Step::Rename] {
            let result = write_vault_with(&path, &table(2.0)?, &key, &mut |step| {
                if step == failing {
                    Err(io::Error::other("simulated failure"))
                } else {
                    Ok(())
                }
            });
            assert!(
                matches!(result, Err(VaultError::Write { .. })),
                "{failing:?}"
            );
            assert_eq!(read_vault(&path, &key)?.values(), [1.0], "{failing:?}");
            let names: Vec<_> = std::fs::read_dir(dir.path())?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            assert_eq!(names, ["site.vault"], "{failing:?}");
        }
        // Every step gets the hook, and a failed directory sync comes after
        // the new vault is in place.
        let mut seen = Vec::new();
        let result = write_vault_with(&path, &table(3.0)?, &key, &mut |step| {
            seen.push(step);
            if step == Step::SyncDir {
                Err(io::Error::other("simulated failure"))
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(VaultError::Write { .. })));
        assert_eq!(seen, Step::ALL);
        assert_eq!(read_vault(&path, &key)?.values(), [3.0]);
        Ok(())
    }
}
