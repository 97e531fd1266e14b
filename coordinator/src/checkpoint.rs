//! The coordinator's durable task state, so that a coordinator killed at
//! any point and started again with the same command resumes from the last
//! completed step instead of starting over.
//!
//! After the statistics (and histogram) steps, after every training round
//! and when training ends, the coordinator writes a checkpoint: the fitted
//! preprocessing, the global model, the round records and the last step
//! number. It is written to a temporary file, fsync'd and renamed over the
//! previous one (then the directory is fsync'd), so a crash leaves either
//! the old checkpoint or the new one, never a torn file. A checkpoint
//! belongs to one task file: its SHA-256 is recorded and a checkpoint of
//! another task is refused.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use medfed_model::FittedPreprocessor;
use serde::{Deserialize, Serialize};

use crate::step::RoundRecord;

/// Format tag of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "medfed-checkpoint/1";

/// Largest checkpoint file read.
const MAX_CHECKPOINT_BYTES: u64 = 512 << 20;

/// Step numbers jump by this much after a restart: nodes ignore a step
/// number they have already seen, and the crashed run may have published
/// steps it had not yet checkpointed.
pub const RESTART_STEP_GAP: u64 = 1_000_000;

/// What a restarted coordinator needs to carry on.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// SHA-256 (hex) of the task file this state belongs to.
    pub task_sha256: String,
    /// The last step number published before the checkpoint.
    pub step: u64,
    /// The fitted global preprocessing.
    pub preprocessing: FittedPreprocessor,
    /// Notes from the statistics steps.
    pub notes: Vec<String>,
    /// Training rows per member (empty under secure aggregation, where
    /// only their total is known).
    pub train_rows: Vec<(String, u64)>,
    /// Training rows over all members.
    #[serde(default)]
    pub total_train_rows: u64,
    /// The global model after the last completed round (intercept first).
    pub global: Vec<f64>,
    /// Records of the completed rounds.
    pub rounds: Vec<RoundRecord>,
    /// Why training stopped, once it has.
    pub stop_reason: Option<String>,
}

/// Where checkpoints of one task go.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    path: PathBuf,
    task_sha256: String,
}

impl CheckpointStore {
    /// Checkpoints at `path` for the task file whose bytes are `task_file`.
    pub fn new(path: PathBuf, task_file: &[u8]) -> CheckpointStore {
        let digest = ring::digest::digest(&ring::digest::SHA256, task_file);
        let task_sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        CheckpointStore { path, task_sha256 }
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The task file's digest, as checkpoints record it.
    pub fn task_sha256(&self) -> &str {
        &self.task_sha256
    }

    /// The saved state, if a checkpoint of this task exists.
    ///
    /// # Errors
    /// A checkpoint that cannot be read, is not one, or belongs to another
    /// task file (move it away to start that task afresh).
    pub fn load(&self) -> anyhow::Result<Option<Checkpoint>> {
        let size = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        if size > MAX_CHECKPOINT_BYTES {
            bail!(
                "{} is {size} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
                self.path.display()
            );
        }
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a medfed checkpoint", self.path.display()))?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            bail!(
                "{} has format {:?}, expected {CHECKPOINT_FORMAT:?}",
                self.path.display(),
                checkpoint.format
            );
        }
        if checkpoint.task_sha256 != self.task_sha256 {
            bail!(
                "{} belongs to another task file (SHA-256 {}, this one {}); move it away to \
                 start this task afresh",
                self.path.display(),
                checkpoint.task_sha256,
                self.task_sha256
            );
        }
        checkpoint
            .preprocessing
            .validate()
            .with_context(|| format!("{} holds an invalid preprocessing", self.path.display()))?;
        Ok(Some(checkpoint))
    }

    /// Writes `checkpoint` atomically and durably.
    ///
    /// # Errors
    /// Any I/O failure, with the path.
    pub fn save(&self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        crate::report::write_json(&self.path, checkpoint)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync {}", dir.display()))?;
        }
        Ok(())
    }
}
