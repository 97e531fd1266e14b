//! Continuing an existing log: find its end without reading it all, tell a
//! torn last line (a crash during an append) from damage, and check the
//! first and last entries before a writer appends after them.
//!
//! Only the first line and the last few lines are read, so reopening costs
//! the same for any log size. Only an unterminated tail no longer than one
//! line can be cut; anything else is refused and left untouched.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::entry::{Entry, MAX_LINE_BYTES, kinds};
use crate::error::AuditError;
use crate::reader::{LineError, Lines};
use crate::signing::PublicKey;

/// Chunk size of the backward scan.
const CHUNK_BYTES: u64 = 64 * 1024;

/// What the end of an existing log looks like.
#[derive(Debug)]
pub(crate) struct End {
    /// Length of the file up to and including the last newline.
    pub(crate) good_len: u64,
    /// The last complete entry, checked; `None` when no line is complete.
    pub(crate) last: Option<Entry>,
}

/// Inspects the log at `path` (of length `len`) for the writer `name` with
/// key `key`.
///
/// # Errors
/// [`AuditError::WrongWriterKey`] or [`AuditError::WrongWriterName`] when
/// the log belongs to another writer, [`AuditError::CorruptLog`] when its
/// first entry is invalid, [`AuditError::InvalidLogEnd`] when its end
/// cannot be continued or repaired, [`AuditError::Io`].
pub(crate) fn inspect(
    path: &Path,
    len: u64,
    name: &str,
    key: &PublicKey,
) -> Result<End, AuditError> {
    let io_error = |source| AuditError::Io {
        path: path.to_path_buf(),
        action: "read the end of the log",
        source,
    };
    let end_error = |offset, reason: String| AuditError::InvalidLogEnd {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut file = File::open(path).map_err(io_error)?;

    let last_newline = scan_back(&mut file, len).map_err(io_error)?;
    let good_len = last_newline.map_or(0, |p| p + 1);
    if len - good_len >= MAX_LINE_BYTES {
        return Err(end_error(
            good_len,
            format!(
                "the file ends with {} bytes without a newline, more than one entry \
                 can hold, so they are not a torn write",
                len - good_len
            ),
        ));
    }
    if len > good_len && !looks_torn(&mut file, good_len, len).map_err(io_error)? {
        return Err(end_error(
            good_len,
            format!(
                "the file ends with {} bytes without a newline that do not start like \
                 an entry, so they are not a torn write (is this a medfed exchange log?)",
                len - good_len
            ),
        ));
    }
    let Some(last_newline) = last_newline else {
        return Ok(End {
            good_len,
            last: None,
        });
    };

    check_first(path, &mut file, name, key)?;

    let start = scan_back(&mut file, last_newline)
        .map_err(io_error)?
        .map_or(0, |p| p + 1);
    if last_newline - start >= MAX_LINE_BYTES {
        return Err(end_error(
            start,
            format!("the last line is longer than the limit of {MAX_LINE_BYTES} bytes"),
        ));
    }
    // Bounded by MAX_LINE_BYTES just above.
    let mut bytes = vec![0u8; (last_newline - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(io_error)?;
    file.read_exact(&mut bytes).map_err(io_error)?;
    let last = Entry::parse(&bytes)
        .map_err(|reason| end_error(start, format!("the last entry is invalid: {reason}")))?;
    if last.computed_hash() != last.hash {
        return Err(end_error(
            start,
            format!(
                "the last entry (seq {}) records hash {} but hashes to {}",
                last.seq,
                last.hash,
                last.computed_hash()
            ),
        ));
    }
    if !last.writer_signature_valid(key) {
        return Err(end_error(
            start,
            format!(
                "the last entry (seq {}) is not signed by this writer's key {key}",
                last.seq
            ),
        ));
    }
    Ok(End {
        good_len,
        last: Some(last),
    })
}

/// Checks that the first entry is this writer's `log-opened`.
fn check_first(
    path: &Path,
    file: &mut File,
    name: &str,
    key: &PublicKey,
) -> Result<(), AuditError> {
    let corrupt = |reason: String| AuditError::CorruptLog {
        path: path.to_path_buf(),
        index: 0,
        offset: 0,
        reason,
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            action: "read the start of the log",
            source,
        })?;
    let mut lines = Lines::new(BufReader::new(&mut *file));
    let line = match lines.next_line() {
        Some(Ok(line)) => line,
        Some(Err(LineError::TooLong { .. })) => {
            return Err(corrupt(format!(
                "the first line is longer than the limit of {MAX_LINE_BYTES} bytes"
            )));
        }
        Some(Err(LineError::Io(source))) => {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                action: "read the start of the log",
                source,
            });
        }
        None => return Err(corrupt("the log is empty".into())),
    };
    let first = Entry::parse(&line.bytes).map_err(corrupt)?;
    if first.kind != kinds::LOG_OPENED || first.seq != 0 {
        return Err(corrupt(format!(
            "expected a `{}` entry with seq 0, got `{}` with seq {}",
            kinds::LOG_OPENED,
            first.kind,
            first.seq
        )));
    }
    let log_key = first.recorded_key();
    if log_key != Some(*key) {
        return Err(AuditError::WrongWriterKey {
            path: path.to_path_buf(),
            log_key: log_key.map_or_else(|| "(none)".into(), |k| k.to_string()),
            own_key: key.to_string(),
        });
    }
    let log_name = first.recorded_writer().unwrap_or_default();
    if log_name != name {
        return Err(AuditError::WrongWriterName {
            path: path.to_path_buf(),
            log_name: log_name.to_owned(),
            own_name: name.to_owned(),
        });
    }
    if first.computed_hash() != first.hash || !first.writer_signature_valid(key) {
        return Err(corrupt(
            "the `log-opened` entry's hash or signature does not check out".into(),
        ));
    }
    Ok(())
}

/// How every line of the format starts.
const LINE_START: &[u8] = b"{\"v\":1,\"seq\":";

/// Whether the unterminated tail `[start, end)` can be what a crash during
/// an append leaves: the start of a line (as much of it as was written) or
/// zeros (a file system that extended the file before writing its data).
/// Anything else is not cut, lest a writer destroy a file that is not its
/// log.
fn looks_torn(file: &mut File, start: u64, end: u64) -> io::Result<bool> {
    let mut head = vec![0u8; (end - start).min(LINE_START.len() as u64) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut head)?;
    if LINE_START.starts_with(&head) {
        return Ok(true);
    }
    if head.iter().any(|&b| b != 0) {
        return Ok(false);
    }
    let mut rest = io::BufReader::new(&mut *file);
    let mut buffer = [0u8; 8192];
    loop {
        let n = rest.read(&mut buffer)?;
        if n == 0 {
            return Ok(true);
        }
        if buffer[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Position of the last newline before `end`, looking back at most
/// [`MAX_LINE_BYTES`]; `None` when there is none in that window.
fn scan_back(file: &mut File, end: u64) -> io::Result<Option<u64>> {
    let floor = end.saturating_sub(MAX_LINE_BYTES);
    let mut chunk_end = end;
    let mut buffer = vec![0u8; CHUNK_BYTES as usize];
    while chunk_end > floor {
        let chunk_start = chunk_end.saturating_sub(CHUNK_BYTES).max(floor);
        let size = (chunk_end - chunk_start) as usize;
        file.seek(SeekFrom::Start(chunk_start))?;
        file.read_exact(&mut buffer[..size])?;
        if let Some(i) = buffer[..size].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(chunk_start + i as u64));
        }
        chunk_end = chunk_start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tails_look_like_a_line_start_or_zeros() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        for (tail, torn) in [
            (&b"{\"v\":1,\"seq\":12,\"ti"[..], true),
            (b"{\"v", true),
            (b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", true),
            (b"hello world", false),
            (b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0x", false),
            (b"{\"v\":2,", false),
        ] {
            let mut data = b"line\n".to_vec();
            data.extend_from_slice(tail);
            std::fs::write(&path, &data)?;
            let mut file = File::open(&path)?;
            assert_eq!(
                looks_torn(&mut file, 5, data.len() as u64)?,
                torn,
                "{}",
                String::from_utf8_lossy(tail)
            );
        }
        Ok(())
    }

    #[test]
    fn scan_back_finds_newlines_across_chunks() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        let mut data = vec![b'a'; 3 * CHUNK_BYTES as usize];
        data[10] = b'\n';
        std::fs::write(&path, &data)?;
        let mut file = File::open(&path)?;
        assert_eq!(scan_back(&mut file, data.len() as u64)?, Some(10));
        assert_eq!(scan_back(&mut file, 10)?, None);
        assert_eq!(scan_back(&mut file, 11)?, Some(10));
        Ok(())
    }
}
