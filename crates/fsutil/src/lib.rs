//! File-system helpers for medfed's secret files (vault keys, vaults,
//! audit keys, signing keys, exchange logs): create them readable by their
//! owner only, make a new or renamed file survive a crash by syncing its
//! directory, and wipe secret buffers before they are dropped.
//!
//! # Layout
//! Everything is in this file: [`owner_only`] and [`restrict_permissions`]
//! (mode 0600), [`parent_dir`] and [`sync_parent_dir`], [`wipe`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Makes `options` create files readable and writable by the owner only.
pub fn owner_only(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    {
        let _ = options;
    }
}

/// Sets `file` to mode 0600 exactly, whatever the umask did at creation.
///
/// # Errors
/// The operating system's refusal.
pub fn restrict_permissions(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flushes the directory entry of `path` to disk, so that a new or renamed
/// file survives a crash. A no-op where directories cannot be opened.
///
/// # Errors
/// The operating system's refusal.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(parent_dir(path))?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Overwrites `bytes` with zeros in a way the optimiser keeps.
pub fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&mut *bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn files_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        owner_only(&mut options);
        let file = options.open(&path).unwrap();
        restrict_permissions(&file).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        sync_parent_dir(&path).unwrap();
    }

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.key")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/x.key")), Path::new("a"));
    }

    #[test]
    fn wiping_zeroes_every_byte() {
        let mut secret = *b"hunter2";
        wipe(&mut secret);
        assert_eq!(secret, [0; 7]);
    }
}
