//! Small file-system helpers shared by the key and vault writers: owner-only
//! permissions, directory sync, and wiping secret buffers.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Makes `options` create files readable and writable by the owner only.
pub(crate) fn owner_only(options: &mut OpenOptions) {
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
pub(crate) fn restrict_permissions(file: &File) -> io::Result<()> {
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
pub(crate) fn parent_dir(path: &Path) -> &Path {
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
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
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
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&mut *bytes);
}
