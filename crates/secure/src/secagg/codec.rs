//! A small, strict binary encoding for the protocol messages, so they can
//! travel inside protobuf `bytes` fields.
//!
//! Every message starts with a version byte and a kind byte; integers are
//! big-endian; lists carry a `u32` count. A count is accepted only if the
//! bytes left can hold that many entries, so decoding never allocates more
//! than its input justifies, and trailing bytes are an error.

use super::error::SecAggError;

/// The encoding version: 2 since the consistency check (share
/// commitments, complaints and signed survivor sets).
const VERSION: u8 = 2;

pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 2);
        buf.push(VERSION);
        buf.push(kind);
        Self { buf }
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.buf.extend_from_slice(value);
    }

    /// A list length; lists in messages are bounded by the roster (at most
    /// 255) or the vector length (at most 2^24), both far below `u32::MAX`.
    pub(crate) fn count(&mut self, len: usize) {
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading a `message` of the given kind.
    pub(crate) fn new(
        bytes: &'a [u8],
        kind: u8,
        message: &'static str,
    ) -> Result<Self, SecAggError> {
        let mut reader = Self {
            bytes,
            pos: 0,
            message,
        };
        let [version, found] = reader.array::<2>()?;
        if version != VERSION {
            return Err(reader.error_at(0, format!("version {version}, expected {VERSION}")));
        }
        if found != kind {
            return Err(reader.error_at(1, format!("message kind {found}, expected {kind}")));
        }
        Ok(reader)
    }

    fn error_at(&self, offset: usize, reason: String) -> SecAggError {
        SecAggError::Malformed {
            message: self.message,
            offset,
            reason,
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], SecAggError> {
        let left = self.bytes.len() - self.pos;
        let Some(slice) = self.bytes.get(self.pos..self.pos + N) else {
            return Err(self.error_at(
                self.pos,
                format!("{left} bytes left, expected at least {N}"),
            ));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos += N;
        Ok(out)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SecAggError> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SecAggError> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    /// A list count whose entries take at least `min_entry_len` bytes each.
    pub(crate) fn count(&mut self, min_entry_len: usize) -> Result<usize, SecAggError> {
        let at = self.pos;
        let count = self.u32()? as usize;
        let left = self.bytes.len() - self.pos;
        if count.saturating_mul(min_entry_len.max(1)) > left {
            return Err(self.error_at(
                at,
                format!(
                    "a list of {count} entries of at least {min_entry_len} bytes, \
                     but only {left} bytes follow"
                ),
            ));
        }
        Ok(count)
    }

    /// `len` raw bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], SecAggError> {
        let left = self.bytes.len() - self.pos;
        if len > left {
            return Err(self.error_at(self.pos, format!("{left} bytes left, expected {len}")));
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(crate) fn finish(self) -> Result<(), SecAggError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error_at(
                self.pos,
                format!("{} trailing bytes", self.bytes.len() - self.pos),
            ))
        }
    }
}
