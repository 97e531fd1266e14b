//! Reading provisioning inputs and writing outputs. Keys are written
//! owner-only (0600); nothing is ever overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::CertsError;

/// The largest PEM file read (keys, certificates and requests are a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Reads a small text file (a PEM key, certificate or request).
pub(crate) fn read_pem(path: &Path) -> Result<String, CertsError> {
    let read = |source| CertsError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_PEM_BYTES {
        return Err(CertsError::BadFile {
            path: path.to_owned(),
            what: format!("{size} bytes; a PEM file here is at most {MAX_PEM_BYTES} bytes"),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| CertsError::BadFile {
        path: path.to_owned(),
        what: "not text; expected a PEM file".into(),
    })
}

/// Whether a file holds a secret (written 0600) or public material (0644).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrecy {
    Secret,
    Public,
}

/// Refuses when any of `paths` exists, so that a step writes all its files
/// or none.
pub(crate) fn ensure_absent(paths: &[&Path]) -> Result<(), CertsError> {
    for path in paths {
        if path.exists() {
            return Err(CertsError::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) if needed.
pub(crate) fn create_dir(dir: &Path) -> Result<(), CertsError> {
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes a new file: fails if it exists, creates secrets with mode 0600
/// from the start (never readable by others, not even briefly), and syncs.
pub(crate) fn write_new(path: &Path, contents: &str, secrecy: Secrecy) -> Result<(), CertsError> {
    let write = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match secrecy {
            Secrecy::Secret => 0o600,
            Secrecy::Public => 0o644,
        });
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CertsError::Exists {
                path: path.to_owned(),
            }
        } else {
            write(source)
        }
    })?;
    #[cfg(unix)]
    if secrecy == Secrecy::Secret {
        // The umask can only remove bits, but make the mode exact anyway.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write)?;
    }
    file.write_all(contents.as_bytes()).map_err(write)?;
    file.sync_all().map_err(write)
}

/// `dir/name`.
pub(crate) fn in_dir(dir: &Path, name: impl AsRef<Path>) -> PathBuf {
    dir.join(name)
}
