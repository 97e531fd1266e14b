//! The tamper-evident exchange log of medfed, and what an auditor needs to
//! check it.
//!
//! The coordinator appends one entry per message it receives or sends
//! (joins, statistics, updates, global models, evaluations, refusals), and
//! each node keeps its own log of what it sent and received. Months later an
//! auditor, without trusting the operator, can answer: what did each
//! hospital send, what did the coordinator send back, when, and was
//! anything altered, dropped or reordered?
//!
//! - Entries form a hash chain and each is signed (Ed25519) by the log's
//!   writer, so altering, dropping, inserting or reordering entries breaks
//!   [`verify`] at that entry.
//! - A member's submission is logged with the member's own signature over
//!   the exact message bytes, checked against the member's key bound
//!   earlier in the same log: the coordinator, who holds its writer key,
//!   still cannot forge or alter what a hospital contributed.
//! - [`cross_check`] compares a node's log with the coordinator's, so a
//!   writer who rewrote its whole log is caught by the other side's.
//! - Message bytes are stored only encrypted (Fernet) under an
//!   [`AuditKey`] that the auditor holds; every other field stays readable.
//!
//! ```no_run
//! use std::path::Path;
//! use medfed_audit::{
//!     AuditKey, Direction, LogWriter, Record, SigningKey, SyncPolicy, VerifyOptions, verify,
//! };
//!
//! # fn main() -> Result<(), medfed_audit::AuditError> {
//! let key = SigningKey::from_file(Path::new("coordinator.sign.key"))?;
//! let audit_key = AuditKey::from_file(Path::new("audit.key"))?;
//! let (mut log, _repair) = LogWriter::open(
//!     Path::new("exchange.log"), "coordinator", &key, &audit_key, SyncPolicy::EveryEntry,
//! )?;
//! # let (member_key, body, signature) = (key.public_key(), Vec::<u8>::new(), key.sign(b""));
//! log.bind_member("sepsis-2025", "st-marys", &member_key)?;
//! log.append(&Record {
//!     task: "sepsis-2025",
//!     round: 3,
//!     direction: Direction::In,
//!     peer: "st-marys",
//!     kind: "update",
//!     bytes: &body,
//!     member_signature: Some(signature),
//! })?;
//! log.close()?;
//!
//! let report = verify(Path::new("exchange.log"), &VerifyOptions {
//!     audit_key: Some(&audit_key),
//!     writer_key: Some(&key.public_key()),
//! })?;
//! assert!(report.is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `entry`: [`Entry`], [`Direction`], the field rules, the canonical
//!   encoding the entry hash covers, the JSON line, and the reserved
//!   [`kinds`] and [`meta_keys`].
//! - `writer`: [`LogWriter`], [`Record`], [`SyncPolicy`], [`EntryInfo`],
//!   [`Repair`]: appending, fsync policy, opening and continuing a log.
//! - `recover`: finding the end of an existing log, torn-line detection and
//!   the checks before continuing it.
//! - `reader`: [`LogReader`] and [`read_log`]: bounded, streaming line reads.
//! - `verify`: [`verify`], [`VerifyOptions`], [`VerifyReport`], [`Problem`],
//!   [`ProblemKind`].
//! - `crosscheck`: [`cross_check`] and its [`CrossCheckReport`].
//! - `summary`: [`Summary`], per-round activity for listings.
//! - [`describe_payload`]: protobuf payloads summarised for people, decoded
//!   by `medfed-wire` (the one place that knows the wire messages).
//! - `render`: [`render_text`], such summaries as indented text.
//! - `audit_key`: [`AuditKey`] (Fernet), [`AUDIT_KEY_ENV`].
//! - `signing`: [`SigningKey`], [`PublicKey`], [`Signature`] (Ed25519).
//! - `digest`: [`Digest`] (SHA-256).
//! - `timestamp`: the one spelling of entry times.
//! - `rules`: the per-field rules (names, kinds, metadata, tokens).
//! - `hex`, `fsutil`: strict hex; owner-only files, syncs, wiping secrets.
//! - `error`: [`AuditError`].
//!
//! # Log file format (v1)
//! JSON Lines: one entry per line, each line terminated by `\n`, UTF-8,
//! nothing else in the file. A line is at most [`MAX_LINE_BYTES`] (64 MiB)
//! long, newline included, and holds one JSON object with exactly these
//! fields, in this order, with no spaces:
//!
//! | field | content |
//! |---|---|
//! | `v` | format version, `1` |
//! | `seq` | sequence number: 0 for the first entry, then +1 each |
//! | `time` | UTC, RFC 3339 with exactly 9 fractional digits: `2025-03-01T14:07:09.123456789Z` |
//! | `task` | task id (may be empty, e.g. `log-opened`) |
//! | `round` | round, `u32`; 0 when not in a round |
//! | `dir` | `in`, `out` or `local` |
//! | `peer` | certificate name of the other side (`key-binding`: the member bound); empty only for some `local` entries |
//! | `kind` | `[a-z0-9-]{1,32}`, e.g. `join`, `task`, `statistics`, `standardization`, `global-model`, `update`, `baseline`, `evaluate`, `evaluation`, `finished`, `refusal` |
//! | `meta` | object of string values, keys `[a-z0-9-]{1,32}` in ascending order; empty except on `local` entries |
//! | `sha256` | SHA-256 of the exact message bytes, 64 lowercase hex digits |
//! | `len` | length of the message bytes (at most [`MAX_MESSAGE_BYTES`]) |
//! | `payload` | the message bytes as a Fernet token under the audit key |
//! | `member_sig` | the sending member's Ed25519 signature over the message bytes (128 hex digits), or `null` |
//! | `prev` | `hash` of the previous entry; 64 zeros for the first |
//! | `hash` | SHA-256 of the canonical encoding below |
//! | `sig` | the writer's Ed25519 signature (128 hex digits) over `medfed-audit v1 entry-signature\0` followed by the 32 bytes of `hash` |
//!
//! Task ids, peer and writer names are at most 256 bytes without control
//! characters. Hex is lowercase only. A line must be exactly the JSON the
//! writer produces for the entry it decodes to (no other spacing, escaping
//! or order), so every entry has a single spelling.
//!
//! **Entry hash.** SHA-256 over this byte string, never over JSON text
//! (integers big-endian; `str` = `u64` byte length then the UTF-8 bytes):
//! ```text
//! "medfed-audit v1\0"   (16 bytes, domain separation)
//! u64 seq
//! str time, str task
//! u32 round
//! str dir, str peer, str kind
//! u64 number of meta fields, then per field in key order: str key, str value
//! 32 bytes sha256 (raw)
//! u64 len
//! str payload (the token text)
//! u8 0 (no member signature) | u8 1 then 64 bytes member signature
//! 32 bytes prev (raw)
//! ```
//! The writer signature covers the hash with its own domain prefix, so that
//! a node may use its member key as its writer key: an entry signature can
//! never pass as a signature over a message.
//!
//! **Reserved kinds** (all `local`, see [`kinds`]): `log-opened` (always
//! entry 0; meta `writer` and `public-key`: the writer's name and the key
//! that signs every entry), `log-reopened` (each time a writer continues the
//! log; same meta, must be equal), `repaired` (meta `bytes-cut`), and
//! `key-binding` (peer = the member, meta `public-key` = its Ed25519 key).
//! Member signatures are checked against the latest earlier binding of
//! their signer: the `peer` of an `in` entry, the writer of an `out` entry
//! (a node's own signed submissions). `local` entries carry no message
//! (their payload encrypts zero bytes) and no member signature.
//!
//! **Torn writes.** Each entry is written with a single `write` of the whole
//! line, so a crash can leave at most one partial line, at the end and
//! without its `\n`. [`verify`] reports it as [`ProblemKind::Torn`] at that
//! index; [`LogWriter::open`] cuts it, syncs, and appends a `repaired` entry
//! recording the bytes cut. Only an unterminated tail shorter than one line
//! that starts like an entry (`{"v":1,"seq":`) or is all zero bytes is cut;
//! anything else, and a last complete entry that does not check out, make
//! `open` fail and leave the file untouched.
//!
//! # Durability
//! [`SyncPolicy::EveryEntry`] (the default) fsyncs (`sync_data`) after each
//! entry, before `append` returns. [`SyncPolicy::Batch`]`(n)` fsyncs after
//! every `n` entries and on [`LogWriter::sync`], [`LogWriter::close`] and
//! drop. A new log file is created with mode 0600 and its directory synced.
//! A failed write is cut back off the file; if that fails too, or an fsync
//! fails, the writer refuses further appends ([`AuditError::Poisoned`]) until
//! the log is reopened. Appending never reads the file; opening an existing
//! log reads its first line and its last lines only.
//!
//! # What verification can and cannot show
//! Without the audit key, [`verify`] checks structure, chain, hashes,
//! writer signatures and that member signatures have bound keys; with it,
//! also payload lengths and hashes and member signatures over the bytes. A
//! writer holding its own key can rewrite its whole log consistently; only
//! the member signatures in it and [`cross_check`] against the other side's
//! log reveal that. Entries cut off the *end* of a log leave a shorter log
//! that verifies: only the other side's log (or a head hash published
//! elsewhere, e.g. [`LogWriter::last_hash`] in a run report) shows them
//! missing. Writer key rotation is not supported: a log has one writer key
//! for life. Payloads are decrypted with Fernet's `decrypt`, which also
//! refuses a token stamped more than 60 seconds ahead of the reader's
//! clock, so verify payloads on a machine whose clock is not behind the
//! writer's.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit_key;
mod crosscheck;
mod digest;
mod entry;
mod error;
mod fsutil;
mod hex;
mod reader;
mod recover;
mod render;
mod rules;
mod signing;
mod summary;
mod timestamp;
mod verify;
mod writer;

pub use audit_key::{AUDIT_KEY_ENV, AuditKey};
pub use crosscheck::{CrossCheckReport, Discrepancy, DiscrepancyKind, Flow, Side, cross_check};
pub use digest::Digest;
pub use entry::{
    Direction, Entry, FORMAT_VERSION, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, kinds,
    meta_keys,
};
pub use error::AuditError;
pub use medfed_wire::describe::{DecodedPayload, describe_payload, message_types};
pub use reader::{LogReader, read_log};
pub use render::render_text;
pub use signing::{PublicKey, Signature, SigningKey};
pub use summary::{KindCount, PeerActivity, RoundSummary, Summary};
pub use verify::{Binding, Problem, ProblemKind, VerifyOptions, VerifyReport, verify};
pub use writer::{EntryInfo, LogWriter, Record, Repair, SyncPolicy};
