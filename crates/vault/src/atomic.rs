//! Atomic replacement of a file: write a temporary file (mode 0600) in the
//! same directory, sync it, rename it over the target, sync the directory.
//!
//! A reader sees either the old file or the new one, never a mix; on any
//! error before the rename the temporary file is removed and the old file is
//! untouched.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::VaultError;
use medfed_fsutil as fsutil;

/// A step of [`replace_with`], named as "failed to {step}" in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Create the temporary file.
    Create,
    /// Write the contents.
    Write,
    /// Sync the temporary file.
    SyncFile,
    /// Rename it over the target.
    Rename,
    /// Sync the directory.
    SyncDir,
}

impl Step {
    /// Every step, in order.
    #[cfg(test)]
    pub(crate) const ALL: [Step; 5] = [
        Step::Create,
        Step::Write,
        Step::SyncFile,
        Step::Rename,
        Step::SyncDir,
    ];

    fn action(self) -> &'static str {
        match self {
            Step::Create => "create a temporary file next to it",
            Step::Write => "write the temporary file",
            Step::SyncFile => "sync the temporary file to disk",
            Step::Rename => "rename the temporary file over it",
            Step::SyncDir => "sync its directory to disk (the new file is in place)",
        }
    }
}

/// How many names to try when a temporary name is taken.
const NAME_ATTEMPTS: u32 = 16;
/// Longest part of the target's file name reused in the temporary name.
const NAME_STEM_BYTES: usize = 64;

/// Atomically replaces (or creates) `path` with the concatenation of
/// `parts`, calling `before(step)` before each step; an error from it fails
/// that step (tests use this to simulate failures).
///
/// # Errors
/// [`VaultError::Write`] naming the step that failed.
pub(crate) fn replace_with(
    path: &Path,
    parts: &[&[u8]],
    before: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<(), VaultError> {
    let fail = |step: Step, source| VaultError::Write {
        path: path.to_path_buf(),
        action: step.action(),
        source,
    };
    let Some(file_name) = path.file_name() else {
        return Err(fail(
            Step::Create,
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        ));
    };
    let dir = fsutil::parent_dir(path);

    before(Step::Create).map_err(|e| fail(Step::Create, e))?;
    let (mut file, temp) = create_temp(dir, file_name).map_err(|e| fail(Step::Create, e))?;
    let mut guard = TempGuard {
        path: Some(temp.clone()),
    };

    before(Step::Write)
        .and_then(|()| fsutil::restrict_permissions(&file))
        .and_then(|()| parts.iter().try_for_each(|part| file.write_all(part)))
        .map_err(|e| fail(Step::Write, e))?;
    before(Step::SyncFile)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(Step::SyncFile, e))?;
    drop(file);

    before(Step::Rename)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| fail(Step::Rename, e))?;
    guard.path = None;

    before(Step::SyncDir)
        .and_then(|()| fsutil::sync_parent_dir(path))
        .map_err(|e| fail(Step::SyncDir, e))
}

/// Creates a new, owner-only file `.<name>.<pid>.<n>.tmp` in `dir`.
fn create_temp(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stem: String = file_name
        .to_string_lossy()
        .chars()
        .scan(0usize, |bytes, c| {
            *bytes += c.len_utf8();
            (*bytes <= NAME_STEM_BYTES).then_some(c)
        })
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
    for _ in 0..NAME_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = OsString::from(".");
        name.push(&stem);
        name.push(format!(".{}.{n}.{nanos:08x}.tmp", std::process::id()));
        let temp = dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        fsutil::owner_only(&mut options);
        match options.open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Removes the temporary file unless it was renamed into place.
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: the error being returned matters more.
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(path: &Path, parts: &[&[u8]]) -> Result<(), VaultError> {
        replace_with(path, parts, &mut |_| Ok(()))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_and_leaves_no_temp() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.bin");
        replace(&path, &[b"one", b"two"])?;
        assert_eq!(std::fs::read(&path)?, b"onetwo");
        replace(&path, &[b"three"])?;
        assert_eq!(std::fs::read(&path)?, b"three");
        assert_eq!(entries(dir.path()), ["out.bin"]);
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
    fn failure_before_rename_keeps_old_file_and_removes_temp()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.bin");
        replace(&path, &[b"old"])?;
        for failing in [Step::Create, Step::Write, Step::SyncFile, Step::Rename] {
            let result = replace_with(&path, &[b"new"], &mut |step| {
                if step == failing {
                    Err(io::Error::other("simulated"))
                } else {
                    Ok(())
                }
            });
            match result {
                Err(VaultError::Write { action, .. }) => assert_eq!(action, failing.action()),
                other => panic!("{failing:?}: expected a write error, got {other:?}"),
            }
            assert_eq!(std::fs::read(&path)?, b"old", "{failing:?}");
            assert_eq!(entries(dir.path()), ["out.bin"], "{failing:?}");
        }
        Ok(())
    }

    #[test]
    fn long_names_get_bounded_temp_names() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let name = "v".repeat(240);
        let path = dir.path().join(&name);
        replace(&path, &[b"x"])?;
        assert_eq!(entries(dir.path()), [name]);
        Ok(())
    }

    #[test]
    fn missing_directory_is_a_create_error() {
        let path = Path::new("/nonexistent-medfed-dir/sub/out.bin");
        match replace(path, &[b"x"]) {
            Err(VaultError::Write {
                action, path: p, ..
            }) => {
                assert_eq!(action, Step::Create.action());
                assert_eq!(p, path);
            }
            other => panic!("expected a write error, got {other:?}"),
        }
    }
}
