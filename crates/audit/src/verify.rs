//! [`verify`]: checks a whole log, streaming, and reports the first entry
//! that breaks the rules as a [`Problem`].
//!
//! Without the audit key it checks everything but the payloads: every line
//! parses and is canonical, sequence numbers are 0, 1, 2, ..., each `prev`
//! is the previous entry's hash, each hash matches its entry, each entry is
//! signed by the key of the `log-opened` entry (and that key is the
//! expected one when given), and every member signature has a key bound to
//! its signer earlier in the log. With the audit key it also decrypts every
//! payload, checks its length and SHA-256, and checks member signatures
//! over the decrypted bytes.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::audit_key::AuditKey;
use crate::digest::Digest;
use crate::entry::{Direction, Entry, MAX_LINE_BYTES, kinds};
use crate::error::AuditError;
use crate::reader::{LineError, open_lines};
use crate::signing::PublicKey;

/// What [`verify`] is given besides the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions<'a> {
    /// The audit key, to check payloads and member signatures.
    pub audit_key: Option<&'a AuditKey>,
    /// The writer key the log must have been opened with. Without it, the
    /// key in the `log-opened` entry is taken on trust (compare
    /// [`VerifyReport::writer_key`] with a key obtained another way).
    pub writer_key: Option<&'a PublicKey>,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Entries that passed every check, from the start (all of them when
    /// there is no problem).
    pub entries: u64,
    /// Writer name from the `log-opened` entry.
    pub writer: Option<String>,
    /// Writer key from the `log-opened` entry.
    pub writer_key: Option<PublicKey>,
    /// Whether payloads (and so member signatures) were checked, i.e. an
    /// audit key was given.
    pub payloads_checked: bool,
    /// Member signatures seen among the verified entries (checked against
    /// the bytes only when `payloads_checked`).
    pub member_signatures: u64,
    /// Every `key-binding` among the verified entries, in order.
    pub bindings: Vec<Binding>,
    /// The first entry that breaks a rule; `None` when the log is sound.
    pub first_problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether the log passed every check.
    pub fn is_ok(&self) -> bool {
        self.first_problem.is_none()
    }
}

/// A `key-binding` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// Sequence number of the entry.
    pub seq: u64,
    /// The member.
    pub peer: String,
    /// Its key.
    pub key: PublicKey,
}

/// The first broken entry of a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 0-based index of the entry (line) in the file.
    pub index: u64,
    /// Byte offset of the start of its line.
    pub offset: u64,
    /// What is wrong.
    pub reason: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} (byte offset {}): {}",
            self.index, self.offset, self.reason
        )
    }
}

/// Why an entry fails verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The log has no entries at all.
    Empty,
    /// The last line has no newline: a write was cut short (a crash during
    /// an append). The writer's `open` repairs this.
    Torn {
        /// Length of the partial line.
        bytes: u64,
    },
    /// The line is longer than [`MAX_LINE_BYTES`].
    LineTooLong {
        /// The limit.
        limit: u64,
    },
    /// The line is not a valid, canonical entry.
    Malformed {
        /// Which field and what is wrong.
        reason: String,
    },
    /// The sequence number is not the entry's position: an entry was
    /// removed, inserted, duplicated or moved.
    SeqMismatch {
        /// The position.
        expected: u64,
        /// The recorded sequence number.
        got: u64,
    },
    /// `prev` is not the previous entry's hash.
    ChainBroken {
        /// The previous entry's hash (zeros for the first entry).
        expected: Digest,
        /// The recorded `prev`.
        got: Digest,
    },
    /// The recorded hash is not the hash of the entry's contents: the entry
    /// was altered.
    HashMismatch {
        /// The recorded hash.
        recorded: Digest,
        /// The hash of the contents.
        computed: Digest,
    },
    /// The first entry is not `log-opened`.
    NotOpened {
        /// The first entry's kind.
        got: String,
    },
    /// A `log-opened` entry after the first.
    ReopenedAsNew,
    /// The `log-opened` key is not the writer key the caller expected.
    WriterKeyMismatch {
        /// The key the caller gave.
        expected: PublicKey,
        /// The key in the `log-opened` entry.
        got: PublicKey,
    },
    /// A `log-reopened` entry names another writer or key than
    /// `log-opened`.
    WriterChanged {
        /// What differs.
        reason: String,
    },
    /// The writer signature does not verify with the `log-opened` key.
    BadWriterSignature {
        /// The key it was checked against.
        key: PublicKey,
    },
    /// A member signature whose signer has no key bound earlier in the log.
    UnboundMemberSignature {
        /// The signer: the peer of an `in` entry, the writer of an `out`
        /// entry.
        signer: String,
    },
    /// A member signature that does not verify over the message bytes with
    /// the key bound to its signer.
    BadMemberSignature {
        /// The signer.
        signer: String,
        /// The key bound to it.
        key: PublicKey,
    },
    /// The payload does not decrypt with the audit key given.
    PayloadUndecryptable {
        /// Fingerprint of the audit key.
        key_fingerprint: String,
    },
    /// The decrypted payload's length is not the recorded one.
    PayloadLengthMismatch {
        /// The recorded length.
        recorded: u64,
        /// The decrypted length.
        got: u64,
    },
    /// The decrypted payload's SHA-256 is not the recorded one.
    PayloadHashMismatch {
        /// The recorded SHA-256.
        recorded: Digest,
        /// The SHA-256 of the decrypted bytes.
        computed: Digest,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Empty => f.write_str("empty: the log has no entries"),
            ProblemKind::Torn { bytes } => write!(
                f,
                "torn: the last line ends after {bytes} bytes without a newline \
                 (a crash during an append; opening the log with its writer repairs it)"
            ),
            ProblemKind::LineTooLong { limit } => {
                write!(f, "line-too-long: longer than the limit of {limit} bytes")
            }
            ProblemKind::Malformed { reason } => write!(f, "malformed: {reason}"),
            ProblemKind::SeqMismatch { expected, got } => write!(
                f,
                "seq-mismatch: expected sequence number {expected}, got {got} \
                 (entries removed, inserted or reordered)"
            ),
            ProblemKind::ChainBroken { expected, got } => write!(
                f,
                "chain-broken: prev should be the previous entry's hash {expected}, got {got}"
            ),
            ProblemKind::HashMismatch { recorded, computed } => write!(
                f,
                "hash-mismatch: the entry records hash {recorded} but its contents hash \
                 to {computed} (the entry was altered)"
            ),
            ProblemKind::NotOpened { got } => write!(
                f,
                "not-opened: expected the first entry to be `{}`, got `{got}`",
                kinds::LOG_OPENED
            ),
            ProblemKind::ReopenedAsNew => {
                write!(f, "reopened-as-new: a second `{}` entry", kinds::LOG_OPENED)
            }
            ProblemKind::WriterKeyMismatch { expected, got } => write!(
                f,
                "writer-key-mismatch: expected writer key {expected}, the log was opened with {got}"
            ),
            ProblemKind::WriterChanged { reason } => write!(f, "writer-changed: {reason}"),
            ProblemKind::BadWriterSignature { key } => write!(
                f,
                "bad-writer-signature: the entry's signature does not verify with the writer key {key}"
            ),
            ProblemKind::UnboundMemberSignature { signer } => write!(
                f,
                "unbound-member-signature: a member signature by {signer:?}, \
                 but no key is bound to {signer:?} earlier in the log"
            ),
            ProblemKind::BadMemberSignature { signer, key } => write!(
                f,
                "bad-member-signature: the member signature does not verify over the \
                 message bytes with the key {key} bound to {signer:?}"
            ),
            ProblemKind::PayloadUndecryptable { key_fingerprint } => write!(
                f,
                "payload-undecryptable: the payload does not decrypt with the audit key \
                 {key_fingerprint} (wrong key, or the payload was altered)"
            ),
            ProblemKind::PayloadLengthMismatch { recorded, got } => write!(
                f,
                "payload-length-mismatch: the entry records {recorded} bytes, the payload \
                 holds {got}"
            ),
            ProblemKind::PayloadHashMismatch { recorded, computed } => write!(
                f,
                "payload-hash-mismatch: the entry records SHA-256 {recorded}, the payload \
                 hashes to {computed}"
            ),
        }
    }
}

/// Checks the log at `path` from its first entry to its last and reports
/// the first problem. Streams: memory stays at one line plus the key
/// bindings.
///
/// # Errors
/// [`AuditError::Io`] when the file cannot be opened or read. A log that
/// fails a check is not an error: see [`VerifyReport::first_problem`].
pub fn verify(path: &Path, options: &VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
    let mut lines = open_lines(path)?;
    let mut state = State {
        options,
        report: VerifyReport {
            entries: 0,
            writer: None,
            writer_key: None,
            payloads_checked: options.audit_key.is_some(),
            member_signatures: 0,
            bindings: Vec::new(),
            first_problem: None,
        },
        prev: Digest::ZERO,
        bound: HashMap::new(),
    };
    let mut end_offset = 0;
    while let Some(line) = lines.next_line() {
        let line = match line {
            Ok(line) => line,
            Err(LineError::TooLong { index, offset }) => {
                return Ok(state.fail(
                    index,
                    offset,
                    ProblemKind::LineTooLong {
                        limit: MAX_LINE_BYTES,
                    },
                ));
            }
            Err(LineError::Io(source)) => {
                return Err(AuditError::Io {
                    path: path.to_path_buf(),
                    action: "read the log",
                    source,
                });
            }
        };
        end_offset = line.offset + line.bytes.len() as u64 + 1;
        if !line.terminated {
            let bytes = line.bytes.len() as u64;
            return Ok(state.fail(line.index, line.offset, ProblemKind::Torn { bytes }));
        }
        let checked = Entry::parse(&line.bytes)
            .map_err(|reason| ProblemKind::Malformed { reason })
            .and_then(|entry| state.check(line.index, &entry));
        if let Err(problem) = checked {
            return Ok(state.fail(line.index, line.offset, problem));
        }
        state.report.entries += 1;
    }
    if state.report.entries == 0 {
        return Ok(state.fail(0, end_offset, ProblemKind::Empty));
    }
    Ok(state.report)
}

/// What verification carries from one entry to the next.
struct State<'a> {
    options: &'a VerifyOptions<'a>,
    report: VerifyReport,
    prev: Digest,
    /// Latest key bound to each member.
    bound: HashMap<String, PublicKey>,
}

impl State<'_> {
    fn fail(mut self, index: u64, offset: u64, reason: ProblemKind) -> VerifyReport {
        self.report.first_problem = Some(Problem {
            index,
            offset,
            reason,
        });
        self.report
    }

    /// Every check of entry `index`; on success, records what later entries
    /// need.
    fn check(&mut self, index: u64, entry: &Entry) -> Result<(), ProblemKind> {
        if entry.seq != index {
            return Err(ProblemKind::SeqMismatch {
                expected: index,
                got: entry.seq,
            });
        }
        if entry.prev != self.prev {
            return Err(ProblemKind::ChainBroken {
                expected: self.prev,
                got: entry.prev,
            });
        }
        let computed = entry.computed_hash();
        if computed != entry.hash {
            return Err(ProblemKind::HashMismatch {
                recorded: entry.hash,
                computed,
            });
        }
        let writer_key = self.check_writer(index, entry)?;
        if !entry.writer_signature_valid(&writer_key) {
            return Err(ProblemKind::BadWriterSignature { key: writer_key });
        }
        self.check_message(entry)?;
        if entry.kind == kinds::KEY_BINDING
            && let Some(key) = entry.recorded_key()
        {
            self.bound.insert(entry.peer.clone(), key);
            self.report.bindings.push(Binding {
                seq: entry.seq,
                peer: entry.peer.clone(),
                key,
            });
        }
        self.prev = entry.hash;
        Ok(())
    }

    /// The writer key entry `index` must be signed with; takes it from the
    /// first entry.
    fn check_writer(&mut self, index: u64, entry: &Entry) -> Result<PublicKey, ProblemKind> {
        let recorded = || {
            entry.recorded_key().ok_or_else(|| ProblemKind::Malformed {
                reason: "no writer key in the metadata".into(),
            })
        };
        if index == 0 {
            if entry.kind != kinds::LOG_OPENED {
                return Err(ProblemKind::NotOpened {
                    got: entry.kind.clone(),
                });
            }
            let key = recorded()?;
            if let Some(expected) = self.options.writer_key
                && *expected != key
            {
                return Err(ProblemKind::WriterKeyMismatch {
                    expected: *expected,
                    got: key,
                });
            }
            self.report.writer_key = Some(key);
            self.report.writer = entry.recorded_writer().map(str::to_owned);
            return Ok(key);
        }
        let Some(key) = self.report.writer_key else {
            // Entry 0 sets the key or verification stops there.
            return Err(ProblemKind::NotOpened {
                got: entry.kind.clone(),
            });
        };
        match entry.kind.as_str() {
            kinds::LOG_OPENED => Err(ProblemKind::ReopenedAsNew),
            kinds::LOG_REOPENED => {
                let again = recorded()?;
                let name = entry.recorded_writer();
                if again != key {
                    Err(ProblemKind::WriterChanged {
                        reason: format!("the log was opened with key {key}, reopened with {again}"),
                    })
                } else if name != self.report.writer.as_deref() {
                    Err(ProblemKind::WriterChanged {
                        reason: format!(
                            "the log was opened by {:?}, reopened by {:?}",
                            self.report.writer.as_deref().unwrap_or_default(),
                            name.unwrap_or_default()
                        ),
                    })
                } else {
                    Ok(key)
                }
            }
            _ => Ok(key),
        }
    }

    /// Member signature and, with the audit key, the payload.
    fn check_message(&mut self, entry: &Entry) -> Result<(), ProblemKind> {
        let signer_key = match &entry.member_signature {
            None => None,
            Some(_) => {
                let signer = match entry.direction {
                    Direction::Out => self.report.writer.clone().unwrap_or_default(),
                    Direction::In | Direction::Local => entry.peer.clone(),
                };
                let Some(key) = self.bound.get(&signer).copied() else {
                    return Err(ProblemKind::UnboundMemberSignature { signer });
                };
                self.report.member_signatures += 1;
                Some((signer, key))
            }
        };
        let Some(audit_key) = self.options.audit_key else {
            return Ok(());
        };
        let Some(bytes) = audit_key.decrypt(&entry.payload) else {
            return Err(ProblemKind::PayloadUndecryptable {
                key_fingerprint: audit_key.fingerprint().to_owned(),
            });
        };
        if bytes.len() as u64 != entry.len {
            return Err(ProblemKind::PayloadLengthMismatch {
                recorded: entry.len,
                got: bytes.len() as u64,
            });
        }
        let computed = Digest::of(&bytes);
        if computed != entry.sha256 {
            return Err(ProblemKind::PayloadHashMismatch {
                recorded: entry.sha256,
                computed,
            });
        }
        if let (Some((signer, key)), Some(signature)) = (signer_key, &entry.member_signature)
            && !key.verify(&bytes, signature)
        {
            return Err(ProblemKind::BadMemberSignature { signer, key });
        }
        Ok(())
    }
}
