//! [`AuditError`], the error type of this crate's operations.
//!
//! Problems *inside* a log that [`verify`](crate::verify) finds are not
//! errors but findings ([`Problem`](crate::Problem)); `AuditError` is for
//! operations that cannot proceed. Messages name the file, the entry index
//! and byte offset, and what was expected and found, but never key material
//! or message bytes.

use std::io;
use std::path::PathBuf;

/// Everything that can stop an operation of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be opened, read, written or synced.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. `append an entry to`.
        action: &'static str,
        /// What the operating system said.
        source: io::Error,
    },

    /// [`AuditKey::write_new`](crate::AuditKey::write_new) or
    /// [`SigningKey::write_new`](crate::SigningKey::write_new) found a file
    /// already there.
    #[error(
        "key file {} already exists; refusing to overwrite it, since what was \
         encrypted or signed with it could no longer be checked",
        path.display()
    )]
    KeyFileExists {
        /// The existing file.
        path: PathBuf,
    },

    /// An audit key is malformed. Never carries the key text.
    #[error(
        "invalid audit key from {origin}: {reason} \
         (expected a Fernet key: 32 bytes as url-safe base64, 44 characters)"
    )]
    InvalidAuditKey {
        /// Where the key came from, e.g. `key file /etc/medfed/audit.key`.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The environment variable that should hold the audit key is not set.
    #[error("environment variable {var} is not set: it should hold the audit key")]
    AuditKeyEnvUnset {
        /// The variable.
        var: String,
    },

    /// A signing key file does not hold an Ed25519 key. Never carries key
    /// material.
    #[error(
        "{} is not an Ed25519 signing key: {reason} (expected a PKCS#8 PEM \
         `PRIVATE KEY`, as written by `SigningKey::write_new` or \
         `medfed-certs request`)",
        path.display()
    )]
    InvalidSigningKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The system random generator failed while making a key.
    #[error("cannot generate {what}: the system random number generator failed")]
    RandomFailed {
        /// What was being generated.
        what: &'static str,
    },

    /// A public key or signature given as text is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidEncoding {
        /// What was being parsed, e.g. `Ed25519 public key`.
        what: &'static str,
        /// Expected and found.
        reason: String,
    },

    /// A [`Record`](crate::Record) given to
    /// [`LogWriter::append`](crate::LogWriter::append) (or a name given to
    /// the writer) breaks a rule of the log format.
    #[error("invalid {field}: {reason}")]
    InvalidRecord {
        /// The field, e.g. `kind`.
        field: &'static str,
        /// The rule and what was given.
        reason: String,
    },

    /// The log exists but was opened with another writer key: only the key
    /// recorded in its `log-opened` entry may continue it.
    #[error(
        "{} was opened by the writer key {log_key}, but this writer's key is \
         {own_key}; refusing to continue another writer's log (use that key, or \
         start a new log file)",
        path.display()
    )]
    WrongWriterKey {
        /// The log file.
        path: PathBuf,
        /// Public key recorded in the log's `log-opened` entry (hex).
        log_key: String,
        /// Public key of the key given to the writer (hex).
        own_key: String,
    },

    /// The log exists but was opened under another writer name.
    #[error(
        "{} belongs to the writer {log_name:?}, not {own_name:?}; refusing to \
         continue another writer's log",
        path.display()
    )]
    WrongWriterName {
        /// The log file.
        path: PathBuf,
        /// Name recorded in the log's `log-opened` entry.
        log_name: String,
        /// Name given to the writer.
        own_name: String,
    },

    /// A complete line of a log is not a valid entry (or, when opening a log
    /// to continue it, its first or last entry does not check out).
    #[error(
        "{}: entry {index} (byte offset {offset}) is invalid: {reason}; run \
         `medfed-audit verify` on it",
        path.display()
    )]
    CorruptLog {
        /// The log file.
        path: PathBuf,
        /// 0-based index of the entry (line) in the file.
        index: u64,
        /// Byte offset of the start of its line.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// The log ends with a partial line, as a crash in the middle of an
    /// append leaves it. [`LogWriter::open`](crate::LogWriter::open) repairs
    /// this; readers refuse it.
    #[error(
        "{}: the last {bytes} bytes (from byte offset {offset}) are a torn, \
         incomplete entry {index}; opening the log with its writer repairs it",
        path.display()
    )]
    TornTail {
        /// The log file.
        path: PathBuf,
        /// Index the torn entry would have had.
        index: u64,
        /// Byte offset where it starts.
        offset: u64,
        /// Its length in bytes.
        bytes: u64,
    },

    /// When continuing a log, its end does not check out: the last complete
    /// entry is invalid or not signed by this writer, or the partial line at
    /// the end is too long to be a torn write. Nothing was cut.
    #[error(
        "{}: cannot continue this log: {reason} (at byte offset {offset}); \
         nothing was changed; run `medfed-audit verify` on it",
        path.display()
    )]
    InvalidLogEnd {
        /// The log file.
        path: PathBuf,
        /// Byte offset of the line in question.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A line (or the partial line at the end of the file) is longer than
    /// [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES).
    #[error(
        "{}: entry {index} (byte offset {offset}) is longer than the limit of \
         {limit} bytes",
        path.display()
    )]
    LineTooLong {
        /// The log file.
        path: PathBuf,
        /// 0-based index of the entry.
        index: u64,
        /// Byte offset of the start of its line.
        offset: u64,
        /// The limit.
        limit: u64,
    },

    /// A message given to the writer is larger than
    /// [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    #[error("the message is {got} bytes, more than the limit of {limit} bytes")]
    MessageTooLarge {
        /// Its length.
        got: u64,
        /// The limit.
        limit: u64,
    },

    /// An earlier write or sync of this writer failed in a way that may have
    /// left the file inconsistent; it refuses further appends.
    #[error(
        "{}: an earlier append or sync failed and could not be undone; \
         reopen the log with LogWriter::open, which checks and repairs its end",
        path.display()
    )]
    Poisoned {
        /// The log file.
        path: PathBuf,
    },

    /// No entry with the requested sequence number.
    #[error("{} has no entry with sequence number {seq} (it has {entries} entries)", path.display())]
    EntryNotFound {
        /// The log file.
        path: PathBuf,
        /// The sequence number asked for.
        seq: u64,
        /// How many entries the log has.
        entries: u64,
    },

    /// A payload did not decrypt with the audit key given: a different key,
    /// or the payload was altered.
    #[error(
        "{}: the payload of entry {seq} does not decrypt with the audit key \
         with fingerprint {fingerprint} (wrong key, or the payload was altered)",
        path.display()
    )]
    Decrypt {
        /// The log file.
        path: PathBuf,
        /// Sequence number of the entry.
        seq: u64,
        /// Fingerprint of the audit key given.
        fingerprint: String,
    },

    /// Cross-checking needs the name of each log's writer, which its first
    /// entry records.
    #[error("{} has no entries: expected a `log-opened` entry first", path.display())]
    EmptyLog {
        /// The log file.
        path: PathBuf,
    },
}
