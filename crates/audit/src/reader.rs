//! Reading a log: [`LogReader`] streams its entries one line at a time,
//! never holding more than one line (at most
//! [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES)) in memory; [`read_log`]
//! collects them.
//!
//! Readers check each line on its own (syntax, field rules, canonical
//! form); the chain, signatures and payloads are [`verify`](crate::verify)'s
//! job.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::entry::{Entry, MAX_LINE_BYTES};
use crate::error::AuditError;

/// Read buffer size.
const BUFFER_BYTES: usize = 256 * 1024;

/// One line of a log file, as found.
#[derive(Debug)]
pub(crate) struct RawLine {
    /// 0-based index of the line.
    pub(crate) index: u64,
    /// Byte offset of its first byte.
    pub(crate) offset: u64,
    /// Its bytes, without the newline.
    pub(crate) bytes: Vec<u8>,
    /// Whether it ended with a newline (only the last line may not: a torn
    /// write).
    pub(crate) terminated: bool,
}

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The line is longer than the limit.
    TooLong {
        /// Its index.
        index: u64,
        /// Offset of its start.
        offset: u64,
    },
    /// The operating system failed.
    Io(io::Error),
}

/// Splits a file into lines of at most [`MAX_LINE_BYTES`].
pub(crate) struct Lines<R> {
    reader: R,
    index: u64,
    offset: u64,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            index: 0,
            offset: 0,
            done: false,
        }
    }

    /// The next line; `None` at the end of the file or after an error.
    pub(crate) fn next_line(&mut self) -> Option<Result<RawLine, LineError>> {
        if self.done {
            return None;
        }
        let result = self.read_line();
        match &result {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => self.done = true,
        }
        result.transpose()
    }

    fn read_line(&mut self) -> Result<Option<RawLine>, LineError> {
        let (index, offset) = (self.index, self.offset);
        let mut bytes = Vec::new();
        loop {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if buffer.is_empty() {
                if bytes.is_empty() {
                    return Ok(None);
                }
                self.offset += bytes.len() as u64;
                return Ok(Some(RawLine {
                    index,
                    offset,
                    bytes,
                    terminated: false,
                }));
            }
            let newline = buffer.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(buffer.len());
            // The limit counts the newline: a line of MAX_LINE_BYTES in all.
            if (bytes.len() + take) as u64 >= MAX_LINE_BYTES {
                return Err(LineError::TooLong { index, offset });
            }
            bytes.extend_from_slice(&buffer[..take]);
            match newline {
                Some(_) => {
                    self.reader.consume(take + 1);
                    self.index += 1;
                    self.offset += bytes.len() as u64 + 1;
                    return Ok(Some(RawLine {
                        index,
                        offset,
                        bytes,
                        terminated: true,
                    }));
                }
                None => self.reader.consume(take),
            }
        }
    }
}

/// Opens `path` for reading, buffered.
pub(crate) fn open_lines(path: &Path) -> Result<Lines<BufReader<File>>, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        action: "open the log",
        source,
    })?;
    Ok(Lines::new(BufReader::with_capacity(BUFFER_BYTES, file)))
}

/// The entries of a log file, one at a time. Yields an error (and then
/// stops) at the first line that is not a valid entry, including a torn
/// last line.
pub struct LogReader {
    lines: Lines<BufReader<File>>,
    path: PathBuf,
}

impl LogReader {
    /// Opens a log file.
    ///
    /// # Errors
    /// [`AuditError::Io`] when it cannot be opened.
    pub fn open(path: &Path) -> Result<LogReader, AuditError> {
        Ok(LogReader {
            lines: open_lines(path)?,
            path: path.to_path_buf(),
        })
    }
}

impl Iterator for LogReader {
    type Item = Result<Entry, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        let path = || self.path.clone();
        let line = match self.lines.next_line()? {
            Ok(line) => line,
            Err(LineError::TooLong { index, offset }) => {
                return Some(Err(AuditError::LineTooLong {
                    path: path(),
                    index,
                    offset,
                    limit: MAX_LINE_BYTES,
                }));
            }
            Err(LineError::Io(source)) => {
                return Some(Err(AuditError::Io {
                    path: path(),
                    action: "read the log",
                    source,
                }));
            }
        };
        if !line.terminated {
            return Some(Err(AuditError::TornTail {
                path: path(),
                index: line.index,
                offset: line.offset,
                bytes: line.bytes.len() as u64,
            }));
        }
        let result = Entry::parse(&line.bytes).map_err(|reason| AuditError::CorruptLog {
            path: path(),
            index: line.index,
            offset: line.offset,
            reason,
        });
        if result.is_err() {
            self.lines.done = true;
        }
        Some(result)
    }
}

/// Every entry of a log file, in order. Holds them all in memory: for large
/// logs prefer iterating a [`LogReader`].
///
/// # Errors
/// [`AuditError::Io`] when the file cannot be read,
/// [`AuditError::CorruptLog`], [`AuditError::LineTooLong`] or
/// [`AuditError::TornTail`] at the first line that is not a valid entry.
pub fn read_log(path: &Path) -> Result<Vec<Entry>, AuditError> {
    LogReader::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<(u64, u64, Vec<u8>, bool)> {
        let mut lines = Lines::new(BufReader::with_capacity(3, data));
        let mut out = Vec::new();
        while let Some(Ok(line)) = lines.next_line() {
            out.push((line.index, line.offset, line.bytes, line.terminated));
        }
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        assert_eq!(
            lines(b"abcdef\nxy\n\nzz"),
            vec![
                (0, 0, b"abcdef".to_vec(), true),
                (1, 7, b"xy".to_vec(), true),
                (2, 10, Vec::new(), true),
                (3, 11, b"zz".to_vec(), false),
            ]
        );
        assert!(lines(b"").is_empty());
    }
}
