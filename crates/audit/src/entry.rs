//! [`Entry`], one line of a log: its fields, the rules each must follow,
//! its canonical encoding (what the entry hash covers), and its JSON line.
//!
//! The JSON line is only a container: the hash is computed over the
//! length-prefixed canonical encoding described in the crate docs, never
//! over JSON text. Parsing is strict, and a line must also be byte for byte
//! the JSON this module writes for the entry it decodes to, so each entry
//! has exactly one valid spelling and any changed byte is noticed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::rules::{check_kind, check_meta, check_name, check_token, shorten};
use crate::signing::{PublicKey, Signature};
use crate::timestamp;

/// Version of the log format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Longest line (entry) read or written, in bytes, newline included.
pub const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// Largest message the log records: the largest gRPC message medfed
/// exchanges. Its Fernet token (base64, about 4/3 of it) fits in a line.
pub const MAX_MESSAGE_BYTES: u64 = medfed_wire::limits::MAX_MESSAGE_BYTES as u64;

const _: () = assert!(MAX_MESSAGE_BYTES * 3 / 2 + 64 * 1024 < MAX_LINE_BYTES);

/// Longest task id, peer or writer name, in bytes.
pub const MAX_NAME_BYTES: usize = medfed_wire::limits::MAX_NAME_BYTES;

/// Prefix of the canonical encoding an entry hash covers.
pub(crate) const HASH_DOMAIN: &[u8] = b"medfed-audit v1\0";
/// Prefix of the message a writer signs: this, then the 32-byte entry hash.
pub(crate) const SIGNATURE_DOMAIN: &[u8] = b"medfed-audit v1 entry-signature\0";

/// Kinds with a meaning the log itself defines. All have direction `local`.
pub mod kinds {
    /// First entry of every log: metadata `writer` (name) and `public-key`
    /// (the writer's Ed25519 key, which signs every entry).
    pub const LOG_OPENED: &str = "log-opened";
    /// Written each time a writer continues an existing log: metadata
    /// `writer` and `public-key`, which must equal those of `log-opened`.
    pub const LOG_REOPENED: &str = "log-reopened";
    /// Written after cutting a torn last line: metadata `bytes-cut`.
    pub const REPAIRED: &str = "repaired";
    /// Binds the member named in `peer` to the Ed25519 key in metadata
    /// `public-key`; member signatures on later entries are checked
    /// against the latest binding of their signer.
    pub const KEY_BINDING: &str = "key-binding";

    /// Every reserved kind.
    pub(crate) const RESERVED: [&str; 4] = [LOG_OPENED, LOG_REOPENED, REPAIRED, KEY_BINDING];
}

/// Metadata keys of the reserved kinds.
pub mod meta_keys {
    /// Name of the writer (`log-opened`, `log-reopened`).
    pub const WRITER: &str = "writer";
    /// An Ed25519 public key in hex (`log-opened`, `log-reopened`,
    /// `key-binding`).
    pub const PUBLIC_KEY: &str = "public-key";
    /// Bytes cut from the end of the file (`repaired`).
    pub const BYTES_CUT: &str = "bytes-cut";
}

/// Which way a message went, seen from the log's writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from `peer`.
    In,
    /// Sent to `peer`.
    Out,
    /// Not a message: an event of the writer itself (log opened, repaired,
    /// key bound, ...).
    Local,
}

impl Direction {
    /// `in`, `out` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Local => "local",
        }
    }

    fn parse(text: &str) -> Result<Direction, String> {
        match text {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            "local" => Ok(Direction::Local),
            other => Err(format!(
                "expected `in`, `out` or `local`, got {:?}",
                shorten(other)
            )),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One entry of a log, as read from its line. Fields are public to read;
/// entries are made only by [`LogWriter`](crate::LogWriter) and the
/// parser, which enforce the format's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Position in the log, from 0, consecutive.
    pub seq: u64,
    /// When it was written, UTC: `2025-03-01T14:07:09.123456789Z`.
    pub time: String,
    /// Task id (may be empty, e.g. for `log-opened`).
    pub task: String,
    /// Training round; 0 when not in a round.
    pub round: u32,
    /// Which way the message went.
    pub direction: Direction,
    /// Certificate name of the other side (for `key-binding`: the member
    /// bound). Empty only for some `local` entries.
    pub peer: String,
    /// Message kind, `[a-z0-9-]{1,32}`.
    pub kind: String,
    /// Metadata of `local` entries, in clear (empty for messages).
    pub meta: BTreeMap<String, String>,
    /// SHA-256 of the exact message bytes.
    pub sha256: Digest,
    /// Length of the message bytes.
    pub len: u64,
    /// The message bytes as a Fernet token under the audit key.
    pub payload: String,
    /// Ed25519 signature of the sending member over the message bytes.
    pub member_signature: Option<Signature>,
    /// Hash of the previous entry ([`Digest::ZERO`] for the first).
    pub prev: Digest,
    /// Hash of this entry's canonical encoding.
    pub hash: Digest,
    /// The writer's signature over this entry's hash.
    pub signature: Signature,
}

impl Entry {
    /// SHA-256 of this entry's canonical encoding: every field but `hash`
    /// and `signature` (see the crate docs for the byte layout).
    pub fn computed_hash(&self) -> Digest {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let put_str = |context: &mut ring::digest::Context, text: &str| {
            context.update(&(text.len() as u64).to_be_bytes());
            context.update(text.as_bytes());
        };
        context.update(HASH_DOMAIN);
        context.update(&self.seq.to_be_bytes());
        put_str(&mut context, &self.time);
        put_str(&mut context, &self.task);
        context.update(&self.round.to_be_bytes());
        put_str(&mut context, self.direction.as_str());
        put_str(&mut context, &self.peer);
        put_str(&mut context, &self.kind);
        context.update(&(self.meta.len() as u64).to_be_bytes());
        for (key, value) in &self.meta {
            put_str(&mut context, key);
            put_str(&mut context, value);
        }
        context.update(self.sha256.as_bytes());
        context.update(&self.len.to_be_bytes());
        put_str(&mut context, &self.payload);
        match &self.member_signature {
            None => context.update(&[0]),
            Some(signature) => {
                context.update(&[1]);
                context.update(signature.as_bytes());
            }
        }
        context.update(self.prev.as_bytes());
        Digest::from_ring(context.finish())
    }

    /// Whether `signature` is `writer_key`'s signature over `hash` (the
    /// stored one; compare it with [`Entry::computed_hash`] too).
    pub fn writer_signature_valid(&self, writer_key: &PublicKey) -> bool {
        writer_key.verify(&signed_message(&self.hash), &self.signature)
    }

    /// The key a `log-opened`, `log-reopened` or `key-binding` entry
    /// records (`None` for other kinds).
    pub fn recorded_key(&self) -> Option<PublicKey> {
        if !matches!(
            self.kind.as_str(),
            kinds::LOG_OPENED | kinds::LOG_REOPENED | kinds::KEY_BINDING
        ) {
            return None;
        }
        self.meta
            .get(meta_keys::PUBLIC_KEY)
            .and_then(|text| PublicKey::from_log_hex(text).ok())
    }

    /// The writer name a `log-opened` or `log-reopened` entry records.
    pub fn recorded_writer(&self) -> Option<&str> {
        if !matches!(self.kind.as_str(), kinds::LOG_OPENED | kinds::LOG_REOPENED) {
            return None;
        }
        self.meta.get(meta_keys::WRITER).map(String::as_str)
    }

    /// The JSON line of this entry, without the newline.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let member_sig = self.member_signature.map(|s| s.to_string());
        let line = LineOut {
            v: FORMAT_VERSION,
            seq: self.seq,
            time: &self.time,
            task: &self.task,
            round: self.round,
            dir: self.direction.as_str(),
            peer: &self.peer,
            kind: &self.kind,
            meta: &self.meta,
            sha256: self.sha256.to_string(),
            len: self.len,
            payload: &self.payload,
            member_sig,
            prev: self.prev.to_string(),
            hash: self.hash.to_string(),
            sig: self.signature.to_string(),
        };
        match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            // Serialising plain strings, integers and a string map cannot fail.
            Err(error) => unreachable!("serialising a log line failed: {error}"),
        }
    }

    /// Parses one line (without its newline) strictly: valid JSON with
    /// exactly the expected fields, every field following its rule, and the
    /// line in canonical form.
    ///
    /// # Errors
    /// A sentence naming the field and what is wrong with it.
    pub(crate) fn parse(line: &[u8]) -> Result<Entry, String> {
        let raw: LineIn = serde_json::from_slice(line).map_err(|e| {
            format!(
                "not a JSON entry line: {} (at column {})",
                e.to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or("syntax error"),
                e.column()
            )
        })?;
        if raw.v != FORMAT_VERSION {
            return Err(format!(
                "field `v`: format version {}; this build reads only {FORMAT_VERSION}",
                raw.v
            ));
        }
        let field = |name: &'static str| move |reason: String| format!("field `{name}`: {reason}");
        let entry = Entry {
            seq: raw.seq,
            time: raw.time,
            task: raw.task,
            round: raw.round,
            direction: Direction::parse(&raw.dir).map_err(field("dir"))?,
            peer: raw.peer,
            kind: raw.kind,
            meta: raw.meta,
            sha256: Digest::from_log_hex(&raw.sha256).map_err(field("sha256"))?,
            len: raw.len,
            payload: raw.payload,
            member_signature: raw
                .member_sig
                .as_deref()
                .map(Signature::from_log_hex)
                .transpose()
                .map_err(field("member_sig"))?,
            prev: Digest::from_log_hex(&raw.prev).map_err(field("prev"))?,
            hash: Digest::from_log_hex(&raw.hash).map_err(field("hash"))?,
            signature: Signature::from_log_hex(&raw.sig).map_err(field("sig"))?,
        };
        entry
            .check_rules()
            .map_err(|(name, reason)| format!("field `{name}`: {reason}"))?;
        if entry.to_json() != line {
            return Err("the line is not in canonical form (extra spaces, escapes, \
                 field order or key order differ from what a writer writes)"
                .into());
        }
        Ok(entry)
    }

    /// Checks every rule of the format that concerns one entry alone;
    /// returns the JSON name of the first field that breaks one, and why.
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        timestamp::parse(&self.time).map_err(|r| ("time", r))?;
        check_name(&self.task).map_err(|r| ("task", r))?;
        check_name(&self.peer).map_err(|r| ("peer", r))?;
        check_kind(&self.kind).map_err(|r| ("kind", r))?;
        check_meta(&self.meta).map_err(|r| ("meta", r))?;
        if self.len > MAX_MESSAGE_BYTES {
            return Err((
                "len",
                format!("{} is more than the limit of {MAX_MESSAGE_BYTES}", self.len),
            ));
        }
        check_token(&self.payload).map_err(|r| ("payload", r))?;
        let reserved = kinds::RESERVED.contains(&self.kind.as_str());
        match self.direction {
            Direction::In | Direction::Out => {
                if self.peer.is_empty() {
                    return Err(("peer", "a message needs the name of its peer".into()));
                }
                if reserved {
                    return Err((
                        "kind",
                        format!("`{}` is reserved for `local` entries", self.kind),
                    ));
                }
                if !self.meta.is_empty() {
                    return Err(("meta", "only `local` entries carry metadata".into()));
                }
            }
            Direction::Local => {
                if self.member_signature.is_some() {
                    return Err((
                        "member_sig",
                        "a `local` entry is not a message and has no member signature".into(),
                    ));
                }
                self.check_reserved_meta()?;
            }
        }
        Ok(())
    }

    /// Metadata the reserved kinds need.
    fn check_reserved_meta(&self) -> Result<(), (&'static str, String)> {
        let required: &[&str] = match self.kind.as_str() {
            kinds::LOG_OPENED | kinds::LOG_REOPENED => &[meta_keys::WRITER, meta_keys::PUBLIC_KEY],
            kinds::KEY_BINDING => &[meta_keys::PUBLIC_KEY],
            kinds::REPAIRED => &[meta_keys::BYTES_CUT],
            _ => &[],
        };
        for key in required {
            let Some(value) = self.meta.get(*key) else {
                return Err((
                    "meta",
                    format!("a `{}` entry needs the metadata `{key}`", self.kind),
                ));
            };
            let problem = match *key {
                meta_keys::PUBLIC_KEY => PublicKey::from_log_hex(value).err(),
                meta_keys::WRITER if value.is_empty() => Some("the writer name is empty".into()),
                meta_keys::BYTES_CUT => match value.parse::<u64>() {
                    Ok(n) if n.to_string() == *value => None,
                    _ => Some(format!(
                        "expected a decimal number, got {:?}",
                        shorten(value)
                    )),
                },
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(("meta", format!("`{key}`: {problem}")));
            }
        }
        if self.kind == kinds::KEY_BINDING && self.peer.is_empty() {
            return Err(("peer", "a `key-binding` names the member it binds".into()));
        }
        Ok(())
    }
}

/// The bytes a writer signs for an entry with hash `hash`.
pub(crate) fn signed_message(hash: &Digest) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 32);
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(hash.as_bytes());
    message
}

/// A line as written. Field order here is the canonical field order.
#[derive(Serialize)]
struct LineOut<'a> {
    v: u32,
    seq: u64,
    time: &'a str,
    task: &'a str,
    round: u32,
    dir: &'static str,
    peer: &'a str,
    kind: &'a str,
    meta: &'a BTreeMap<String, String>,
    sha256: String,
    len: u64,
    payload: &'a str,
    member_sig: Option<String>,
    prev: String,
    hash: String,
    sig: String,
}

/// A line as read; the same fields as [`LineOut`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    v: u32,
    seq: u64,
    time: String,
    task: String,
    round: u32,
    dir: String,
    peer: String,
    kind: String,
    meta: BTreeMap<String, String>,
    sha256: String,
    len: u64,
    payload: String,
    member_sig: Option<String>,
    prev: String,
    hash: String,
    sig: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            seq: 3,
            time: "2025-03-01T14:07:09.123456789Z".into(),
            task: "sepsis-2025".into(),
            round: 2,
            direction: Direction::In,
            peer: "hospital-a".into(),
            kind: "update".into(),
            meta: BTreeMap::new(),
            sha256: Digest::of(b"message"),
            len: 7,
            payload: "gAAAAABtoken-_=".into(),
            member_signature: Some(Signature::from_bytes([7; 64])),
            prev: Digest::of(b"prev"),
            hash: Digest::ZERO,
            signature: Signature::from_bytes([9; 64]),
        }
    }

    #[test]
    fn line_round_trips() -> Result<(), String> {
        let mut entry = sample();
        entry.hash = entry.computed_hash();
        let line = entry.to_json();
        assert_eq!(Entry::parse(&line)?, entry);
        Ok(())
    }

    #[test]
    fn hash_covers_every_field_but_hash_and_signature() {
        let base = sample();
        let h = base.computed_hash();
        let mut changed: Vec<Entry> = Vec::new();
        let mut e = base.clone();
        e.seq += 1;
        changed.push(e);
        let mut e = base.clone();
        e.time = "2025-03-01T14:07:09.123456780Z".into();
        changed.push(e);
        let mut e = base.clone();
        e.task.push('x');
        changed.push(e);
        let mut e = base.clone();
        e.round += 1;
        changed.push(e);
        let mut e = base.clone();
        e.direction = Direction::Out;
        changed.push(e);
        let mut e = base.clone();
        e.peer.push('x');
        changed.push(e);
        let mut e = base.clone();
        e.kind = "updatf".into();
        changed.push(e);
        let mut e = base.clone();
        e.meta.insert("a".into(), String::new());
        changed.push(e);
        let mut e = base.clone();
        e.sha256 = Digest::ZERO;
        changed.push(e);
        let mut e = base.clone();
        e.len += 1;
        changed.push(e);
        let mut e = base.clone();
        e.payload.push('A');
        changed.push(e);
        let mut e = base.clone();
        e.member_signature = None;
        changed.push(e);
        let mut e = base.clone();
        e.prev = Digest::ZERO;
        changed.push(e);
        for (i, e) in changed.iter().enumerate() {
            assert_ne!(e.computed_hash(), h, "change {i}");
        }
        let mut e = base.clone();
        e.hash = Digest::of(b"x");
        e.signature = Signature::from_bytes([1; 64]);
        assert_eq!(e.computed_hash(), h);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let mut a = sample();
        a.task = "ab".into();
        a.peer = "c".into();
        let mut b = sample();
        b.task = "a".into();
        b.peer = "bc".into();
        assert_ne!(a.computed_hash(), b.computed_hash());
    }

    #[test]
    fn rejects_non_canonical_and_unknown_fields() {
        let mut entry = sample();
        entry.hash = entry.computed_hash();
        let line = String::from_utf8(entry.to_json()).unwrap_or_default();
        let spaced = line.replacen("\"seq\":3", "\"seq\": 3", 1);
        assert!(Entry::parse(spaced.as_bytes()).is_err());
        let escaped = line.replacen("hospital-a", "hospital\\u002da", 1);
        assert!(Entry::parse(escaped.as_bytes()).is_err());
        let extra = line.replacen("{\"v\":1", "{\"v\":1,\"x\":0", 1);
        assert!(Entry::parse(extra.as_bytes()).is_err());
        let upper = line.replacen(
            &entry.prev.to_string(),
            &entry.prev.to_string().to_uppercase(),
            1,
        );
        assert!(Entry::parse(upper.as_bytes()).is_err());
    }

    #[test]
    fn local_and_message_rules() {
        let mut e = sample();
        e.direction = Direction::Local;
        assert!(e.check_rules().is_err(), "local with a member signature");
        e.member_signature = None;
        e.kind = kinds::KEY_BINDING.into();
        assert!(e.check_rules().is_err(), "key-binding without a key");
        e.meta.insert(meta_keys::PUBLIC_KEY.into(), "ab".repeat(32));
        assert!(e.check_rules().is_ok());
        e.direction = Direction::In;
        assert!(e.check_rules().is_err(), "reserved kind as a message");
        let mut e = sample();
        e.peer.clear();
        assert!(e.check_rules().is_err(), "message without a peer");
        let mut e = sample();
        e.peer = "a\nb".into();
        assert!(e.check_rules().is_err(), "control character");
    }
}
