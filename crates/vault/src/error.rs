//! [`VaultError`], the one error type of this crate, and [`CellProblem`].
//!
//! Every message names what a person needs to fix the problem (the file, the
//! 1-based line, the column, what was expected and what was found) but never
//! the text of a data cell or a key: those may be patient data or secrets.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// How many column names a message lists before it summarises the rest.
const LISTED_COLUMNS: usize = 40;

/// Why a CSV cell is not a number. Describes the cell without its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CellProblem {
    /// The cell is text that does not parse as a decimal number.
    NotANumber {
        /// Length of the trimmed cell in characters.
        chars: usize,
    },
    /// The cell spells NaN or infinity, or a number beyond the `f64` range.
    NotFinite,
    /// The cell's bytes are not valid UTF-8.
    NotUtf8 {
        /// Length of the cell in bytes.
        bytes: usize,
    },
}

impl fmt::Display for CellProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CellProblem::NotANumber { chars } => write!(
                f,
                "expected a number, got a non-numeric value ({chars} {})",
                plural(chars, "character", "characters")
            ),
            CellProblem::NotFinite => f.write_str(
                "expected a finite number, got a NaN, infinity or out-of-range value \
                 (write a missing value as an empty field or a missing token)",
            ),
            CellProblem::NotUtf8 { bytes } => write!(
                f,
                "expected a number, got {bytes} {} that are not valid UTF-8",
                plural(bytes, "byte", "bytes")
            ),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// A file could not be written; an existing vault at `path` is unchanged
    /// unless `action` is the final directory sync.
    #[error("cannot write {}: failed to {action}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The step that failed, e.g. `create a temporary file`.
        action: &'static str,
        /// What the operating system said.
        source: io::Error,
    },

    /// A file is larger than this crate is willing to read.
    #[error("{} is larger than the limit of {limit} bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },

    /// A CSV file has no header row.
    #[error("{} is empty: expected a header row naming the columns", path.display())]
    EmptyCsv {
        /// The CSV file.
        path: PathBuf,
    },

    /// A CSV header cell is not valid UTF-8.
    #[error("{}: line 1: the name of column {column} is not valid UTF-8", path.display())]
    HeaderNotUtf8 {
        /// The CSV file.
        path: PathBuf,
        /// 1-based position of the column in the header.
        column: usize,
    },

    /// A CSV header names a column with an empty (or all-blank) name.
    #[error(
        "{}: line 1: column {column} has an empty name; every column needs a name",
        path.display()
    )]
    EmptyColumnName {
        /// The CSV file.
        path: PathBuf,
        /// 1-based position of the column in the header.
        column: usize,
    },

    /// A CSV header names the same column twice.
    #[error(
        "{}: line 1: column name {name:?} appears twice (columns {first} and {second})",
        path.display()
    )]
    DuplicateColumn {
        /// The CSV file.
        path: PathBuf,
        /// The repeated name.
        name: String,
        /// 1-based position of its first occurrence.
        first: usize,
        /// 1-based position of its second occurrence.
        second: usize,
    },

    /// A CSV row has a different number of fields than the header.
    #[error(
        "{}: line {line}: expected {expected} fields like the header, got {got}",
        path.display()
    )]
    RaggedRow {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line on which the row starts (the header is line 1).
        line: u64,
        /// Number of columns in the header.
        expected: usize,
        /// Number of fields in this row.
        got: usize,
    },

    /// A CSV cell is not a number. Never carries the cell's text.
    #[error("{}: line {line}: column {column:?}: {problem}", path.display())]
    BadCell {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line on which the row starts (the header is line 1).
        line: u64,
        /// Name of the column.
        column: String,
        /// What was expected and what kind of value was found.
        problem: CellProblem,
    },

    /// The CSV reader failed in a way that is not an I/O error.
    #[error("{}: line {line}: the file is not readable as CSV", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line where reading stopped.
        line: u64,
    },

    /// Columns that were asked for do not exist.
    #[error("{}", missing_message(file.as_deref(), missing, available))]
    MissingColumns {
        /// The CSV file, when the columns were looked up in one.
        file: Option<PathBuf>,
        /// Every name that was asked for but not found.
        missing: Vec<String>,
        /// The names that do exist.
        available: Vec<String>,
    },

    /// A CSV file has more data rows than allowed.
    #[error(
        "{} has more than {limit} data rows (raise ImportOptions::max_rows to allow more)",
        path.display()
    )]
    TooManyRows {
        /// The CSV file.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },

    /// A CSV header has more columns than allowed.
    #[error(
        "{}: line 1: {got} columns, more than the limit of {limit} \
         (raise ImportOptions::max_columns to allow more)",
        path.display()
    )]
    TooManyColumns {
        /// The CSV file.
        path: PathBuf,
        /// Columns in the header.
        got: usize,
        /// The limit.
        limit: usize,
    },

    /// A CSV file has a header but no data rows.
    #[error("{} has a header but no data rows", path.display())]
    NoDataRows {
        /// The CSV file.
        path: PathBuf,
    },

    /// The [`ImportOptions`](crate::ImportOptions) contradict themselves.
    #[error("invalid import options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },

    /// [`Table::new`](crate::Table::new) was given inconsistent parts.
    #[error("invalid table: {reason}")]
    InvalidTable {
        /// What is wrong (shapes and positions, never values).
        reason: String,
    },

    /// A vault key is malformed. Never carries the key text.
    #[error(
        "invalid vault key from {origin}: {reason} \
         (expected 32 bytes as url-safe base64, 44 characters)"
    )]
    InvalidKey {
        /// Where the key came from, e.g. `key file /etc/medfed/vault.key`.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The environment variable that should hold the key is not set.
    #[error("environment variable {var} is not set: it should hold the vault key")]
    KeyEnvUnset {
        /// The variable.
        var: String,
    },

    /// [`VaultKey::write_new`](crate::VaultKey::write_new) found a file
    /// already there.
    #[error(
        "key file {} already exists; refusing to overwrite it, since vaults \
         encrypted with it could no longer be read",
        path.display()
    )]
    KeyFileExists {
        /// The existing file.
        path: PathBuf,
    },

    /// The file is not a medfed vault at all.
    #[error("{} is not a medfed vault: {reason}", path.display())]
    NotAVault {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },

    /// The vault was written by a newer (or unknown) format version.
    #[error(
        "{} is a medfed vault of format version {version}; this build reads only v1",
        path.display()
    )]
    UnsupportedVersion {
        /// The vault file.
        path: PathBuf,
        /// The version word from its header.
        version: String,
    },

    /// The vault was encrypted with a different key.
    #[error(
        "{} was encrypted with the key with fingerprint {vault_key}, \
         but the key given has fingerprint {given_key}",
        path.display()
    )]
    WrongKey {
        /// The vault file.
        path: PathBuf,
        /// Fingerprint recorded in the vault's header.
        vault_key: String,
        /// Fingerprint of the key that was given.
        given_key: String,
    },

    /// The vault file ends early.
    #[error(
        "{} is truncated: the encrypted data ends early (restore it from a backup \
         or import the CSV again)",
        path.display()
    )]
    Truncated {
        /// The vault file.
        path: PathBuf,
    },

    /// The vault failed authentication although the key fingerprint matches.
    #[error(
        "{} failed its integrity check: it was altered or damaged (the key \
         fingerprint matches, so the key is right; restore it from a backup or \
         import the CSV again)",
        path.display()
    )]
    Tampered {
        /// The vault file.
        path: PathBuf,
    },

    /// The vault decrypted, but its contents are malformed.
    #[error("{} decrypted, but its contents are malformed: {reason}", path.display())]
    CorruptPayload {
        /// The vault file.
        path: PathBuf,
        /// What is malformed (sizes and positions, never values).
        reason: String,
    },
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// `"a", "b", ... and 3 more`, at most [`LISTED_COLUMNS`] names.
pub(crate) fn name_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(LISTED_COLUMNS)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_COLUMNS {
        text.push_str(&format!(" and {} more", names.len() - LISTED_COLUMNS));
    }
    if text.is_empty() {
        text.push_str("(none)");
    }
    text
}

fn missing_message(file: Option<&Path>, missing: &[String], available: &[String]) -> String {
    let place = file.map_or_else(String::new, |p| format!("{}: ", p.display()));
    format!(
        "{place}{} {} not found; available columns: {}",
        plural(missing.len(), "column", "columns"),
        name_list(missing),
        name_list(available)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_columns_lists_both_sides_and_truncates() {
        let available: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        let err = VaultError::MissingColumns {
            file: Some(PathBuf::from("/data/site.csv")),
            missing: vec!["age".into(), "bmi".into()],
            available,
        };
        let text = err.to_string();
        assert!(text.starts_with("/data/site.csv: columns \"age\", \"bmi\" not found"));
        assert!(text.contains("\"c0\""));
        assert!(text.contains("and 60 more"));
        assert!(!text.contains("\"c99\""));
    }

    #[test]
    fn cell_problem_wording() {
        assert_eq!(
            CellProblem::NotANumber { chars: 1 }.to_string(),
            "expected a number, got a non-numeric value (1 character)"
        );
        assert_eq!(
            CellProblem::NotANumber { chars: 7 }.to_string(),
            "expected a number, got a non-numeric value (7 characters)"
        );
    }
}
