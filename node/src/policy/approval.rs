//! Task approval: a task's SHA-256, and the file of the hashes a data
//! steward approved (`[policy] approved_tasks`, one per line, written by
//! `node task approve`).
//!
//! The hash is of the task's canonical wire encoding, re-encoded from the
//! validated task, so two descriptions of the same task have the same hash
//! and any changed field (a column, a code, the rounds, the members, the
//! privacy settings) gives another.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use medfed_wire::Task;

/// Largest approvals file read: far more hashes than any hospital keeps.
pub const MAX_APPROVALS_BYTES: u64 = 1 << 20;

/// The SHA-256 of `task`'s canonical encoding, as 64 lowercase hex digits.
pub fn task_sha256(task: &Task) -> String {
    let bytes = medfed_wire::convert::encode_task(task);
    hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The approved task hashes, as read from the approvals file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApprovedTasks {
    /// The file.
    pub path: PathBuf,
    /// Each approved hash with the task id written beside it.
    pub entries: Vec<(String, String)>,
}

impl ApprovedTasks {
    /// Reads the approvals file at `path`; a file that does not exist yet
    /// approves nothing.
    ///
    /// # Errors
    /// An unreadable or over-large file, or a line that is not `<64 hex>
    /// <task id>` (a comment line starts with `#`), named by its number.
    pub fn load(path: &Path) -> anyhow::Result<ApprovedTasks> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ApprovedTasks {
                    path: path.to_path_buf(),
                    entries: Vec::new(),
                });
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read the approved tasks file {}", path.display())
                });
            }
        };
        let mut text = String::new();
        file.take(MAX_APPROVALS_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the approved tasks file {}", path.display()))?;
        if text.len() as u64 > MAX_APPROVALS_BYTES {
            anyhow::bail!(
                "the approved tasks file {} is larger than {MAX_APPROVALS_BYTES} bytes",
                path.display()
            );
        }
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (hash, task_id) = line.split_once(' ').unwrap_or((line, ""));
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!(
                    "{}, line {}: expected a task SHA-256 (64 hex digits) and its task id, as \
                     `node task approve` writes them",
                    path.display(),
                    i + 1
                );
            }
            entries.push((hash.to_ascii_lowercase(), task_id.trim().to_owned()));
        }
        Ok(ApprovedTasks {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Whether `sha256` is approved.
    pub fn contains(&self, sha256: &str) -> bool {
        self.entries.iter().any(|(hash, _)| hash == sha256)
    }

    /// Records `sha256` (of task `task_id`) as approved, appending it to the
    /// file (created with owner-only permissions) and syncing it to disk.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn approve(&mut self, sha256: &str, task_id: &str) -> anyhow::Result<()> {
        if self.contains(sha256) {
            return Ok(());
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        medfed_fsutil::owner_only(&mut options);
        let mut file = options.open(&self.path).with_context(|| {
            format!(
                "cannot open the approved tasks file {}",
                self.path.display()
            )
        })?;
        writeln!(file, "{sha256} {task_id}")
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.entries.push((sha256.to_owned(), task_id.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approved_hash_is_kept_and_a_malformed_line_is_named() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("approved.txt");
        let mut approved = ApprovedTasks::load(&path)?;
        assert!(approved.entries.is_empty());
        let hash = "ab".repeat(32);
        approved.approve(&hash, "heart")?;
        approved.approve(&hash, "heart")?;
        let read = ApprovedTasks::load(&path)?;
        assert_eq!(read.entries, vec![(hash.clone(), "heart".to_owned())]);
        assert!(read.contains(&hash));
        assert!(!read.contains(&"cd".repeat(32)));
        std::fs::write(&path, format!("# approved\n{hash} heart\nnot-a-hash x\n"))?;
        let error = ApprovedTasks::load(&path).expect_err("a malformed line");
        assert!(error.to_string().contains("line 3"), "{error}");
        Ok(())
    }
}
