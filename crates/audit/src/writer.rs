//! [`LogWriter`]: appends entries to a log, one `write` per entry, with the
//! fsync policy of [`SyncPolicy`], and continues (and if need be repairs)
//! an existing log on open.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use crate::audit_key::AuditKey;
use crate::digest::Digest;
use crate::entry::{
    Direction, Entry, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, kinds, meta_keys, signed_message,
};
use crate::error::AuditError;
use crate::fsutil;
use crate::recover;
use crate::rules::{check_kind, check_name};
use crate::signing::{PublicKey, Signature, SigningKey};
use crate::timestamp;

/// When the writer forces entries to disk with fsync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every entry, before `append` returns: an entry that was
    /// appended survives a crash. The default.
    #[default]
    EveryEntry,
    /// After every `n` entries, and on [`LogWriter::sync`],
    /// [`LogWriter::close`] and drop. A crash may lose up to the last `n - 1`
    /// entries (never the chain's integrity: what remains verifies).
    Batch(NonZeroU32),
}

/// One message (or local event) to record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Task id (may be empty before the task is known).
    pub task: &'a str,
    /// Training round; 0 when not in a round.
    pub round: u32,
    /// Which way the message went. `Local` is for the writer's own events
    /// (not the reserved kinds, which have their own methods).
    pub direction: Direction,
    /// Certificate name of the other side; required for `In` and `Out`.
    pub peer: &'a str,
    /// Message kind, `[a-z0-9-]{1,32}`, e.g. `update`.
    pub kind: &'a str,
    /// The exact message bytes exchanged (for a member's signed
    /// submission: the signed body).
    pub bytes: &'a [u8],
    /// The sending member's Ed25519 signature over `bytes`, as received
    /// (or as made, in a node's own log). Not allowed on `Local` records.
    pub member_signature: Option<Signature>,
}

/// What [`LogWriter::append`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Sequence number of the new entry.
    pub seq: u64,
    /// Its entry hash (the next entry's `prev`).
    pub hash: Digest,
    /// SHA-256 of the message bytes.
    pub sha256: Digest,
}

/// What [`LogWriter::open`] cut from a log that ended with a torn line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repair {
    /// Bytes cut from the end of the file.
    pub bytes_cut: u64,
    /// Length of the file after the cut (the offset where the torn line
    /// started).
    pub cut_at: u64,
    /// Sequence number of the `repaired` entry recording the cut.
    pub repaired_seq: u64,
}

/// Appends entries to one log file. One writer per file at a time (the
/// file is not locked). `Send`, so it can live behind a `Mutex` shared by
/// async tasks; every method blocks on file I/O, so keep the lock out of
/// `.await` points.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    name: String,
    key: SigningKey,
    audit_key: AuditKey,
    policy: SyncPolicy,
    next_seq: u64,
    prev: Digest,
    /// Length of the file after the last whole entry.
    len: u64,
    unsynced: u32,
    poisoned: bool,
}

/// Everything of an entry the writer is told; it adds the rest.
struct Draft<'a> {
    task: &'a str,
    round: u32,
    direction: Direction,
    peer: &'a str,
    kind: &'a str,
    meta: BTreeMap<String, String>,
    bytes: &'a [u8],
    member_signature: Option<Signature>,
}

impl<'a> Draft<'a> {
    fn local(kind: &'a str, task: &'a str, peer: &'a str, meta: &[(&str, String)]) -> Draft<'a> {
        Draft {
            task,
            round: 0,
            direction: Direction::Local,
            peer,
            kind,
            meta: meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            bytes: &[],
            member_signature: None,
        }
    }
}

impl LogWriter {
    /// Opens the log at `path` for appending as the writer `writer_name`
    /// (its certificate name, which peers record), signing entries with
    /// `key` and encrypting message bytes with `audit_key`.
    ///
    /// A new (or empty) file is created with mode 0600 and gets a
    /// `log-opened` entry. An existing log is continued after its last
    /// entry: its `log-opened` entry must name this writer and this key,
    /// and its last entry must check out. A torn last line is cut (the file
    /// is truncated and synced) and a `repaired` entry records how many
    /// bytes went; then a `log-reopened` entry marks the restart. The
    /// entries written here are synced before `open` returns, whatever the
    /// policy.
    ///
    /// # Errors
    /// [`AuditError::InvalidRecord`] for an invalid `writer_name`,
    /// [`AuditError::WrongWriterKey`] / [`AuditError::WrongWriterName`] for
    /// another writer's log, [`AuditError::CorruptLog`] /
    /// [`AuditError::InvalidLogEnd`] when the log's first or last entry does
    /// not check out (nothing is changed then), [`AuditError::Io`].
    pub fn open(
        path: &Path,
        writer_name: &str,
        key: &SigningKey,
        audit_key: &AuditKey,
        policy: SyncPolicy,
    ) -> Result<(LogWriter, Option<Repair>), AuditError> {
        check_name(writer_name).map_err(|reason| AuditError::InvalidRecord {
            field: "writer name",
            reason,
        })?;
        if writer_name.is_empty() {
            return Err(AuditError::InvalidRecord {
                field: "writer name",
                reason: "it is empty".into(),
            });
        }
        let io_error = |action| {
            move |source| AuditError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        let (file, created) = open_append(path).map_err(io_error("open the log"))?;
        let len = file
            .metadata()
            .map_err(io_error("read the metadata of"))?
            .len();
        let public = key.public_key();
        let end = if len == 0 {
            recover::End {
                good_len: 0,
                last: None,
            }
        } else {
            recover::inspect(path, len, writer_name, &public)?
        };
        let bytes_cut = len - end.good_len;
        if bytes_cut > 0 {
            file.set_len(end.good_len)
                .and_then(|()| file.sync_all())
                .map_err(io_error("cut the torn last line of"))?;
        }
        let mut writer = LogWriter {
            path: path.to_path_buf(),
            file,
            name: writer_name.to_owned(),
            key: key.clone(),
            audit_key: audit_key.clone(),
            policy,
            next_seq: end.last.as_ref().map_or(0, |e| e.seq + 1),
            prev: end.last.as_ref().map_or(Digest::ZERO, |e| e.hash),
            len: end.good_len,
            unsynced: 0,
            poisoned: false,
        };
        let identity = [
            (meta_keys::WRITER, writer_name.to_owned()),
            (meta_keys::PUBLIC_KEY, public.to_string()),
        ];
        let cut = [(meta_keys::BYTES_CUT, bytes_cut.to_string())];
        let mut repaired_seq = None;
        if end.last.is_none() {
            writer.write_entry(Draft::local(kinds::LOG_OPENED, "", "", &identity))?;
        }
        if bytes_cut > 0 {
            repaired_seq = Some(
                writer
                    .write_entry(Draft::local(kinds::REPAIRED, "", "", &cut))?
                    .seq,
            );
        }
        if end.last.is_some() {
            writer.write_entry(Draft::local(kinds::LOG_REOPENED, "", "", &identity))?;
        }
        writer.sync()?;
        if created {
            fsutil::sync_parent_dir(path).map_err(io_error("sync the directory of"))?;
        }
        let repair = repaired_seq.map(|repaired_seq| Repair {
            bytes_cut,
            cut_at: end.good_len,
            repaired_seq,
        });
        Ok((writer, repair))
    }

    /// Appends one entry for `record` and returns its sequence number and
    /// hashes. The message bytes are stored only as a Fernet token.
    ///
    /// # Errors
    /// [`AuditError::InvalidRecord`] naming the field that breaks a rule
    /// (kind syntax, a reserved kind, a missing peer, control characters,
    /// a member signature on a `Local` record),
    /// [`AuditError::MessageTooLarge`], [`AuditError::Poisoned`] after an
    /// earlier failure, [`AuditError::Io`] when the write or sync fails
    /// (a partial write is undone when possible).
    pub fn append(&mut self, record: &Record<'_>) -> Result<EntryInfo, AuditError> {
        check_kind(record.kind).map_err(|reason| AuditError::InvalidRecord {
            field: "kind",
            reason,
        })?;
        if kinds::RESERVED.contains(&record.kind) {
            return Err(AuditError::InvalidRecord {
                field: "kind",
                reason: format!(
                    "`{}` is reserved for entries the writer makes itself \
                     (use bind_member for key bindings)",
                    record.kind
                ),
            });
        }
        self.write_entry(Draft {
            task: record.task,
            round: record.round,
            direction: record.direction,
            peer: record.peer,
            kind: record.kind,
            meta: BTreeMap::new(),
            bytes: record.bytes,
            member_signature: record.member_signature,
        })
    }

    /// Appends a `key-binding` entry: from here on, member signatures by
    /// `peer` are checked against `key`.
    ///
    /// # Errors
    /// As [`LogWriter::append`]; `peer` must not be empty.
    pub fn bind_member(
        &mut self,
        task: &str,
        peer: &str,
        key: &PublicKey,
    ) -> Result<EntryInfo, AuditError> {
        self.write_entry(Draft::local(
            kinds::KEY_BINDING,
            task,
            peer,
            &[(meta_keys::PUBLIC_KEY, key.to_string())],
        ))
    }

    /// Forces every appended entry to disk (fsync of the file's data).
    ///
    /// # Errors
    /// [`AuditError::Io`] when the sync fails; the writer is then poisoned,
    /// since the kernel may have dropped the unsynced entries.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        if self.unsynced == 0 {
            return Ok(());
        }
        if let Err(source) = self.file.sync_data() {
            self.poisoned = true;
            return Err(AuditError::Io {
                path: self.path.clone(),
                action: "sync to disk",
                source,
            });
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Syncs and closes the log. Dropping a writer also syncs, but cannot
    /// report a failure.
    ///
    /// # Errors
    /// As [`LogWriter::sync`].
    pub fn close(mut self) -> Result<(), AuditError> {
        self.sync()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer name recorded in the log.
    pub fn writer_name(&self) -> &str {
        &self.name
    }

    /// The public half of the writer key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last entry written.
    pub fn last_hash(&self) -> Digest {
        self.prev
    }

    fn write_entry(&mut self, draft: Draft<'_>) -> Result<EntryInfo, AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        let len = draft.bytes.len() as u64;
        if len > MAX_MESSAGE_BYTES {
            return Err(AuditError::MessageTooLarge {
                got: len,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let sha256 = Digest::of(draft.bytes);
        let mut entry = Entry {
            seq: self.next_seq,
            time: timestamp::now(),
            task: draft.task.to_owned(),
            round: draft.round,
            direction: draft.direction,
            peer: draft.peer.to_owned(),
            kind: draft.kind.to_owned(),
            meta: draft.meta,
            sha256,
            len,
            payload: self.audit_key.encrypt(draft.bytes),
            member_signature: draft.member_signature,
            prev: self.prev,
            hash: Digest::ZERO,
            signature: Signature::from_bytes([0; 64]),
        };
        entry
            .check_rules()
            .map_err(|(field, reason)| AuditError::InvalidRecord { field, reason })?;
        entry.hash = entry.computed_hash();
        entry.signature = self.key.sign(&signed_message(&entry.hash));
        let mut line = entry.to_json();
        line.push(b'\n');
        if line.len() as u64 > MAX_LINE_BYTES {
            // Unreachable with MAX_MESSAGE_BYTES and the name limits; kept so
            // that the writer never makes a line its readers refuse.
            return Err(AuditError::MessageTooLarge {
                got: len,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        // One write for the whole line, so a crash tears at most this line.
        if let Err(source) = self.file.write_all(&line) {
            self.undo_partial_write();
            return Err(AuditError::Io {
                path: self.path.clone(),
                action: "append an entry to",
                source,
            });
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        self.prev = entry.hash;
        self.unsynced = self.unsynced.saturating_add(1);
        let due = match self.policy {
            SyncPolicy::EveryEntry => true,
            SyncPolicy::Batch(n) => self.unsynced >= n.get(),
        };
        if due {
            self.sync()?;
        }
        Ok(EntryInfo {
            seq: entry.seq,
            hash: entry.hash,
            sha256,
        })
    }

    /// Cuts whatever part of a failed line reached the file; poisons the
    /// writer when that fails too.
    fn undo_partial_write(&mut self) {
        let undone = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.sync_data());
        if undone.is_err() {
            self.poisoned = true;
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.unsynced > 0 && !self.poisoned {
            // Best effort: close() is the way to see a failure.
            let _ = self.file.sync_data();
        }
    }
}

/// Opens `path` for appending, creating it (mode 0600) when missing.
/// Returns whether it was created.
fn open_append(path: &Path) -> io::Result<(File, bool)> {
    let mut create = OpenOptions::new();
    create.append(true).create_new(true);
    fsutil::owner_only(&mut create);
    match create.open(path) {
        Ok(file) => {
            fsutil::restrict_permissions(&file)?;
            Ok((file, true))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((OpenOptions::new().append(true).open(path)?, false))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn writer_is_send() {
        assert_send::<LogWriter>();
    }

    #[test]
    fn message_bytes_never_reach_the_file_in_clear() -> Result<(), Box<dyn std::error::Error>> {
        use base64::Engine as _;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log.jsonl");
        let audit_key = AuditKey::generate();
        let key = SigningKey::generate()?;
        let secret = b"PATIENT-0042|lactate=4.7|sepsis=1|DISTINCTIVE-MARKER";
        let (mut writer, _) =
            LogWriter::open(&path, "st-marys", &key, &audit_key, SyncPolicy::EveryEntry)?;
        for direction in [Direction::Out, Direction::In] {
            writer.append(&Record {
                task: "t",
                round: 1,
                direction,
                peer: "coordinator",
                kind: "update",
                bytes: secret,
                member_signature: None,
            })?;
        }
        writer.close()?;
        let file = std::fs::read(&path)?;
        let contains = |needle: &[u8]| file.windows(needle.len()).any(|w| w == needle);
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ];
        assert!(!contains(secret));
        assert!(!contains(b"DISTINCTIVE-MARKER"));
        assert!(!contains(crate::hex::encode(secret).as_bytes()));
        for engine in engines {
            assert!(!contains(engine.encode(secret).as_bytes()));
        }
        // The bytes are there, encrypted, for the holder of the audit key.
        let entries = crate::read_log(&path)?;
        assert_eq!(
            audit_key.decrypt(&entries[1].payload).as_deref(),
            Some(&secret[..])
        );
        Ok(())
    }

    #[test]
    fn rejects_bad_records_without_writing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log.jsonl");
        let key = SigningKey::generate()?;
        let (mut writer, _) = LogWriter::open(
            &path,
            "coordinator",
            &key,
            &AuditKey::generate(),
            SyncPolicy::EveryEntry,
        )?;
        let size = std::fs::metadata(&path)?.len();
        let good = Record {
            task: "t",
            round: 1,
            direction: Direction::In,
            peer: "hospital-a",
            kind: "update",
            bytes: b"x",
            member_signature: None,
        };
        let bad = [
            Record {
                kind: "Update",
                ..good
            },
            Record {
                kind: kinds::KEY_BINDING,
                ..good
            },
            Record { peer: "", ..good },
            Record {
                peer: "a\u{7}",
                ..good
            },
            Record {
                direction: Direction::Local,
                member_signature: Some(Signature::from_bytes([0; 64])),
                ..good
            },
        ];
        for record in bad {
            assert!(
                matches!(
                    writer.append(&record),
                    Err(AuditError::InvalidRecord { .. })
                ),
                "{record:?}"
            );
        }
        assert_eq!(std::fs::metadata(&path)?.len(), size);
        assert_eq!(writer.append(&good)?.seq, 1);
        Ok(())
    }
}
