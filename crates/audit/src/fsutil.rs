//! Secret-file helpers of the audit crate: writing a new key file, reading a
//! small one, wiping strings. The plain helpers (owner-only creation,
//! directory sync, wiping buffers) come from `medfed-fsutil`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub(crate) use medfed_fsutil::{owner_only, restrict_permissions, sync_parent_dir, wipe};

use crate::error::AuditError;

/// Overwrites a string's bytes (ASCII zeros keep it valid UTF-8) and empties it.
pub(crate) fn wipe_string(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    wipe(&mut bytes);
}

/// Writes `contents` to a new file at `path`, mode 0600, synced, then syncs
/// its directory. Never overwrites: keys that already exist may protect
/// data that would become unreadable.
///
/// # Errors
/// [`AuditError::KeyFileExists`] when `path` exists, [`AuditError::Io`]
/// naming the step that failed (a partly written file is removed).
pub(crate) fn write_new_secret(path: &Path, contents: &[u8]) -> Result<(), AuditError> {
    let io_error = |action, source| AuditError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    owner_only(&mut options);
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            AuditError::KeyFileExists {
                path: path.to_path_buf(),
            }
        } else {
            io_error("create the key file", source)
        }
    })?;
    let written = restrict_permissions(&file)
        .map_err(|e| io_error("set the key file's permissions to 0600", e))
        .and_then(|()| {
            file.write_all(contents)
                .map_err(|e| io_error("write the key file", e))
        })
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| io_error("sync the key file to disk", e))
        });
    drop(file);
    if let Err(error) = written {
        // We created this file a moment ago: it holds no one else's key.
        let _ = std::fs::remove_file(path);
        return Err(error);
    }
    sync_parent_dir(path).map_err(|e| io_error("sync the key file's directory to disk", e))
}

/// Reads a small file whole, refusing files over `limit` bytes.
///
/// # Errors
/// [`AuditError::Io`] when it cannot be read; `Ok(None)` when it is larger
/// than `limit` (the caller names the problem).
pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, AuditError> {
    use std::io::Read;
    let io_error = |source| AuditError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    if file.metadata().map_err(io_error)?.len() > limit {
        return Ok(None);
    }
    let mut raw = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut raw)
        .map_err(io_error)?;
    if raw.len() as u64 > limit {
        wipe(&mut raw);
        return Ok(None);
    }
    Ok(Some(raw))
}
