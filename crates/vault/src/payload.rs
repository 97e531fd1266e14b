//! The plaintext payload inside a vault's Fernet token: a [`Table`] in a
//! small versioned binary encoding, and its strict decoder.
//!
//! # Encoding (v1)
//! All integers little-endian.
//!
//! | bytes        | field                                             |
//! |--------------|---------------------------------------------------|
//! | 8            | magic `MFVTABLE`                                  |
//! | 2            | version, `u16` = 1                                |
//! | 4            | `n_columns`, `u32`, 1..=[`MAX_COLUMNS`]           |
//! | per column   | name length `u32` (1..=[`MAX_NAME_BYTES`]), UTF-8 |
//! | 8            | `n_rows`, `u64`                                   |
//! | 8 per value  | `n_rows * n_columns` values, `f64`, row-major     |
//!
//! Nothing may follow the values. The decoder checks every count against the
//! bytes actually present before allocating, so a payload that claims more
//! than it holds is an error, never a huge allocation or a panic.

use crate::error::VaultError;
use crate::table::Table;

/// First bytes of every payload.
const MAGIC: &[u8; 8] = b"MFVTABLE";
/// The only payload version this build writes and reads.
const VERSION: u16 = 1;
/// Most columns a payload may hold.
pub(crate) const MAX_COLUMNS: usize = 1_000_000;
/// Longest column name a payload may hold, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 64 * 1024;

/// Why a payload could not be decoded (sizes and positions, never values).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// Encodes `table`.
///
/// # Errors
/// [`VaultError::InvalidTable`] when the table exceeds what a payload may hold
/// ([`MAX_COLUMNS`], [`MAX_NAME_BYTES`]), so a vault that could not be read
/// back is never written.
pub(crate) fn encode(table: &Table) -> Result<Vec<u8>, VaultError> {
    let invalid = |reason: String| VaultError::InvalidTable { reason };
    let columns = table.columns();
    if columns.len() > MAX_COLUMNS {
        return Err(invalid(format!(
            "{} columns, more than a vault holds ({MAX_COLUMNS})",
            columns.len()
        )));
    }
    if let Some((i, name)) = columns
        .iter()
        .enumerate()
        .find(|(_, n)| n.len() > MAX_NAME_BYTES)
    {
        return Err(invalid(format!(
            "the name of column {} is {} bytes, more than a vault holds ({MAX_NAME_BYTES})",
            i + 1,
            name.len()
        )));
    }
    let names_len: usize = columns.iter().map(|n| 4 + n.len()).sum();
    let size = table
        .values()
        .len()
        .checked_mul(8)
        .and_then(|v| v.checked_add(MAGIC.len() + 2 + 4 + 8 + names_len))
        .ok_or_else(|| invalid("the table is too large to encode".into()))?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&u32_len(columns.len())?.to_le_bytes());
    for name in columns {
        out.extend_from_slice(&u32_len(name.len())?.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&(table.n_rows() as u64).to_le_bytes());
    for value in table.values() {
        out.extend_from_slice(&value.to_le_bytes());
    }
    Ok(out)
}

fn u32_len(n: usize) -> Result<u32, VaultError> {
    u32::try_from(n).map_err(|_| VaultError::InvalidTable {
        reason: format!("a length of {n} does not fit the vault format"),
    })
}

/// Decodes a payload written by [`encode`].
///
/// # Errors
/// [`Malformed`] for a wrong magic or version, a count or length beyond its
/// bound or beyond the bytes present, a name that is not UTF-8, trailing
/// bytes, or parts that do not make a valid [`Table`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Table, Malformed> {
    let mut input = Cursor { bytes, at: 0 };
    if input.take(MAGIC.len(), "the magic")? != MAGIC {
        return Err(Malformed("it does not start with the payload magic".into()));
    }
    let version = input.u16("the version")?;
    if version != VERSION {
        return Err(Malformed(format!(
            "payload version {version} is not supported (this build reads {VERSION})"
        )));
    }
    let n_columns = usize::try_from(input.u32("the column count")?).unwrap_or(usize::MAX);
    // Every column takes at least 4 + 1 bytes, so more than that cannot be real.
    if n_columns == 0 || n_columns > MAX_COLUMNS || n_columns > input.remaining() / 5 {
        return Err(Malformed(format!(
            "it claims {n_columns} columns, which {} bytes cannot hold (limit {MAX_COLUMNS})",
            input.remaining()
        )));
    }
    let mut columns = Vec::with_capacity(n_columns);
    for i in 0..n_columns {
        let what = "a column name";
        let len = usize::try_from(input.u32(what)?).unwrap_or(usize::MAX);
        if len == 0 || len > MAX_NAME_BYTES {
            return Err(Malformed(format!(
                "column {} claims a name of {len} bytes (allowed 1..={MAX_NAME_BYTES})",
                i + 1
            )));
        }
        let name = std::str::from_utf8(input.take(len, what)?)
            .map_err(|_| Malformed(format!("the name of column {} is not UTF-8", i + 1)))?;
        columns.push(name.to_owned());
    }
    let n_rows = input.u64("the row count")?;
    let remaining = input.remaining();
    let expected = usize::try_from(n_rows)
        .ok()
        .and_then(|r| r.checked_mul(n_columns))
        .and_then(|v| v.checked_mul(8));
    if expected != Some(remaining) {
        return Err(Malformed(format!(
            "it claims {n_rows} rows of {n_columns} columns, but {remaining} bytes of values follow"
        )));
    }
    let values = input
        .take(remaining, "the values")?
        .chunks_exact(8)
        .map(|chunk| {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            f64::from_le_bytes(le)
        })
        .collect();
    Table::new(columns, values).map_err(|e| match e {
        VaultError::InvalidTable { reason } => Malformed(reason),
        other => Malformed(other.to_string()),
    })
}

/// A read position in a payload.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if n > self.remaining() {
            return Err(Malformed(format!(
                "it ends inside {what} (needs {n} bytes at offset {}, {} left)",
                self.at,
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Malformed> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u16(&mut self, what: &str) -> Result<u16, Malformed> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, Malformed> {
        self.array(what).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests;
