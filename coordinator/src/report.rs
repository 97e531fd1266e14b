//! What a run leaves behind: the model file, the run summary (both JSON), and
//! the final table printed for the operator. Every figure comes from the
//! aggregate counts the nodes returned; no per-row value exists here.
//!
//! The JSON writing is here; the rest is in one file each: the metrics
//! and scores (`metrics`), the summary and model file (`summary`), the
//! summary's privacy section (`privacy`), and the table (`table`).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

mod metrics;
mod privacy;
mod summary;
mod table;
#[cfg(test)]
mod tests;

pub use metrics::{Metrics, ModelScores};
pub use privacy::{DpSummary, PrivacySummary, SiteSpend};
pub use summary::{BaselineScores, ExchangeLogSummary, ModelFile, SiteRefusal, Summary, build};
pub use table::render_table;

/// Writes `value` as pretty JSON to `path` atomically (temp file, fsync,
/// rename), so a reader never sees half a file.
///
/// # Errors
/// Any I/O error, with the path.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    // Buffered: serde writes token by token, which unbuffered is one
    // system call each (thousands for a checkpoint).
    let mut buffered = std::io::BufWriter::new(&mut tmp);
    serde_json::to_writer_pretty(&mut buffered, value)?;
    buffered.write_all(b"\n")?;
    buffered.flush()?;
    drop(buffered);
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
