//! CSV import: [`ImportOptions`] and [`import_csv`], a hospital's CSV file
//! parsed into a [`Table`] in memory.
//!
//! The file is streamed; nothing is written anywhere. Errors name the file,
//! the 1-based line (the header is line 1) and the column, never a cell's text.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};

use crate::error::{CellProblem, VaultError};
use crate::table::Table;

/// Default for [`ImportOptions::max_rows`].
pub const DEFAULT_MAX_ROWS: usize = 10_000_000;
/// Default for [`ImportOptions::max_columns`].
pub const DEFAULT_MAX_COLUMNS: usize = 10_000;
/// Default for [`ImportOptions::max_file_bytes`]: 8 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 30;

/// What [`import_csv`] keeps and how much it is willing to read.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Keep only these columns, in this order; the other columns' cells are
    /// never parsed (so they may hold text such as IDs). `None` keeps every
    /// column, which must then all be numeric. Columns in
    /// [`required`](Self::required) are kept too, after these.
    pub columns: Option<Vec<String>>,
    /// Columns that must be present in the header, e.g. the target column.
    pub required: Vec<String>,
    /// Cell texts that mean "missing" besides the empty field, e.g. `"?"` or
    /// `"NA"`; compared after trimming, case-sensitively. Default: none.
    pub missing_tokens: Vec<String>,
    /// Most data rows accepted. Default [`DEFAULT_MAX_ROWS`].
    pub max_rows: usize,
    /// Most columns accepted in the header. Default [`DEFAULT_MAX_COLUMNS`].
    pub max_columns: usize,
    /// Largest file accepted, in bytes. Default [`DEFAULT_MAX_FILE_BYTES`].
    pub max_file_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            columns: None,
            required: Vec::new(),
            missing_tokens: Vec::new(),
            max_rows: DEFAULT_MAX_ROWS,
            max_columns: DEFAULT_MAX_COLUMNS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Parses a CSV file with a header row into a [`Table`].
///
/// Whitespace around cells and names is trimmed (as is a UTF-8 byte-order
/// mark). An empty field, or one equal to a missing token, becomes NaN.
/// Other cells must parse as finite `f64`: `NaN` and `inf` literals are
/// rejected because they are not data. Blank lines are skipped.
///
/// # Errors
/// - [`VaultError::Read`]: the file cannot be opened or read.
/// - [`VaultError::FileTooLarge`], [`VaultError::TooManyColumns`],
///   [`VaultError::TooManyRows`]: a limit in `options` is exceeded.
/// - [`VaultError::EmptyCsv`]: no header row; [`VaultError::NoDataRows`]: no
///   data row after it.
/// - [`VaultError::EmptyColumnName`], [`VaultError::DuplicateColumn`],
///   [`VaultError::HeaderNotUtf8`]: a bad header.
/// - [`VaultError::RaggedRow`]: a row with the wrong number of fields.
/// - [`VaultError::BadCell`]: a kept cell that is not a number (file, line and
///   column named; the cell's text never is).
/// - [`VaultError::MissingColumns`]: a required or selected column is absent.
/// - [`VaultError::InvalidOptions`]: an empty or repetitive `columns` list.
/// - [`VaultError::Csv`]: the CSV reader failed otherwise.
pub fn import_csv(path: &Path, options: &ImportOptions) -> Result<Table, VaultError> {
    check_options(options)?;
    let read_error = |source| VaultError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if metadata.is_file() && metadata.len() > options.max_file_bytes {
        return Err(VaultError::FileTooLarge {
            path: path.to_path_buf(),
            limit: options.max_file_bytes,
        });
    }
    let bounded = Bounded {
        inner: file,
        limit: options.max_file_bytes,
        remaining: options.max_file_bytes,
        exceeded: false,
    };
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bounded);
    let mut record = ByteRecord::new();

    let has_header = reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, &reader, e, 1))?;
    if !has_header {
        return Err(VaultError::EmptyCsv {
            path: path.to_path_buf(),
        });
    }
    let plan = Plan::from_header(path, &record, options)?;
    let missing_tokens: Vec<&str> = options.missing_tokens.iter().map(|t| t.trim()).collect();

    let mut values = Vec::new();
    let mut rows: usize = 0;
    loop {
        let next_line = u64::try_from(rows).map_or(u64::MAX, |r| r.saturating_add(2));
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, &reader, e, next_line))?;
        if !more {
            break;
        }
        let line = record.position().map_or(next_line, |p| p.line());
        if record.len() != plan.width {
            return Err(VaultError::RaggedRow {
                path: path.to_path_buf(),
                line,
                expected: plan.width,
                got: record.len(),
            });
        }
        if rows >= options.max_rows {
            return Err(VaultError::TooManyRows {
                path: path.to_path_buf(),
                limit: options.max_rows,
            });
        }
        for (name, &field) in plan.names.iter().zip(&plan.fields) {
            let cell = record.get(field).unwrap_or_default();
            let value =
                parse_cell(cell, &missing_tokens).map_err(|problem| VaultError::BadCell {
                    path: path.to_path_buf(),
                    line,
                    column: name.clone(),
                    problem,
                })?;
            values.push(value);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(VaultError::NoDataRows {
            path: path.to_path_buf(),
        });
    }
    Table::new(plan.names, values)
}

/// Parses one cell: empty or a missing token is NaN, else a finite number.
fn parse_cell(bytes: &[u8], missing_tokens: &[&str]) -> Result<f64, CellProblem> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| CellProblem::NotUtf8 { bytes: bytes.len() })?;
    let text = text.trim();
    if text.is_empty() || missing_tokens.contains(&text) {
        return Ok(f64::NAN);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(CellProblem::NotFinite),
        Err(_) => Err(CellProblem::NotANumber {
            chars: text.chars().count(),
        }),
    }
}

fn check_options(options: &ImportOptions) -> Result<(), VaultError> {
    let Some(columns) = &options.columns else {
        return Ok(());
    };
    if columns.is_empty() {
        return Err(VaultError::InvalidOptions {
            reason: "`columns` selects no column; use None to keep every column".into(),
        });
    }
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].contains(name) {
            return Err(VaultError::InvalidOptions {
                reason: format!("`columns` names {name:?} twice"),
            });
        }
    }
    Ok(())
}

/// Which header fields become which table columns.
struct Plan {
    /// Number of fields in the header (every row must have as many).
    width: usize,
    /// Names of the kept columns, in table order.
    names: Vec<String>,
    /// For each kept column, its 0-based field index in a row.
    fields: Vec<usize>,
}

impl Plan {
    fn from_header(
        path: &Path,
        record: &ByteRecord,
        options: &ImportOptions,
    ) -> Result<Plan, VaultError> {
        let width = record.len();
        if width > options.max_columns {
            return Err(VaultError::TooManyColumns {
                path: path.to_path_buf(),
                got: width,
                limit: options.max_columns,
            });
        }
        let mut header = Vec::with_capacity(width);
        for (i, raw) in record.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| VaultError::HeaderNotUtf8 {
                path: path.to_path_buf(),
                column: i + 1,
            })?;
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            header.push(name.trim().to_owned());
        }

        // First and (if any) second 0-based position of every non-empty name.
        let mut positions: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
        for (i, name) in header.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            positions
                .entry(name.as_str())
                .and_modify(|e| {
                    e.1.get_or_insert(i);
                })
                .or_insert((i, None));
        }
        let duplicate = |name: &str| -> Result<usize, VaultError> {
            match positions.get(name) {
                Some(&(first, Some(second))) => Err(VaultError::DuplicateColumn {
                    path: path.to_path_buf(),
                    name: name.to_owned(),
                    first: first + 1,
                    second: second + 1,
                }),
                Some(&(first, None)) => Ok(first),
                None => Ok(usize::MAX),
            }
        };

        let wanted: Vec<&String> = match &options.columns {
            None => {
                if let Some(i) = header.iter().position(String::is_empty) {
                    return Err(VaultError::EmptyColumnName {
                        path: path.to_path_buf(),
                        column: i + 1,
                    });
                }
                for name in &header {
                    duplicate(name)?;
                }
                header.iter().collect()
            }
            Some(columns) => columns
                .iter()
                .chain(options.required.iter().filter(|r| !columns.contains(r)))
                .collect(),
        };
        let missing: Vec<String> = wanted
            .iter()
            .copied()
            .chain(&options.required)
            .filter(|name| !positions.contains_key(name.as_str()))
            .fold(Vec::new(), |mut acc, name| {
                if !acc.contains(name) {
                    acc.push(name.clone());
                }
                acc
            });
        if !missing.is_empty() {
            return Err(VaultError::MissingColumns {
                file: Some(path.to_path_buf()),
                missing,
                available: header.iter().filter(|n| !n.is_empty()).cloned().collect(),
            });
        }
        let mut names = Vec::with_capacity(wanted.len());
        let mut fields = Vec::with_capacity(wanted.len());
        for name in wanted {
            fields.push(duplicate(name)?);
            names.push(name.clone());
        }
        Ok(Plan {
            width,
            names,
            fields,
        })
    }
}

/// Maps a CSV reader error, telling a size-limit stop from a real I/O error.
fn csv_error(
    path: &Path,
    reader: &csv::Reader<Bounded<File>>,
    error: csv::Error,
    line: u64,
) -> VaultError {
    if reader.get_ref().exceeded {
        return VaultError::FileTooLarge {
            path: path.to_path_buf(),
            limit: reader.get_ref().limit,
        };
    }
    match error.into_kind() {
        csv::ErrorKind::Io(source) => VaultError::Read {
            path: path.to_path_buf(),
            source,
        },
        _ => VaultError::Csv {
            path: path.to_path_buf(),
            line,
        },
    }
}

/// A reader that fails once more than `remaining` bytes are read, so a file
/// that grows (or a device or pipe whose size metadata cannot tell) is still
/// bounded.
struct Bounded<R> {
    inner: R,
    limit: u64,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("file size limit exceeded"));
        }
        let max = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}
