//! The coordinator's side of the exchange log: every message in and out,
//! appended to a hash-chained, signed log (see `medfed-audit`) before the
//! call returns, with each member's signing key bound on its first join.
//!
//! The writer sits behind a std `Mutex`: appends are short and never held
//! across an `.await`. A message that cannot be logged is refused, so
//! nothing is exchanged without evidence.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use medfed_audit::{
    AuditError, AuditKey, Direction, PublicKey, Record, Repair, Signature, SigningKey, SyncPolicy,
};

/// The coordinator's exchange log.
pub struct Exchange {
    task: String,
    inner: Mutex<Inner>,
}

struct Inner {
    writer: medfed_audit::LogWriter,
    bound: BTreeSet<String>,
    entries: u64,
}

impl Exchange {
    /// Opens (or continues, repairing a torn tail) the log at `path`, written
    /// as `writer_name` and signed with `signing`.
    ///
    /// # Errors
    /// The log cannot be created, belongs to another writer, or is damaged
    /// beyond a torn last entry.
    pub fn open(
        path: &Path,
        task: &str,
        writer_name: &str,
        signing: &SigningKey,
        audit_key: &AuditKey,
        policy: SyncPolicy,
    ) -> Result<(Exchange, Option<Repair>), AuditError> {
        let (writer, repair) =
            medfed_audit::LogWriter::open(path, writer_name, signing, audit_key, policy)?;
        Ok((
            Exchange {
                task: task.to_owned(),
                inner: Mutex::new(Inner {
                    writer,
                    bound: BTreeSet::new(),
                    entries: 0,
                }),
            },
            repair,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one message.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn record(
        &self,
        direction: Direction,
        peer: &str,
        kind: &str,
        round: u32,
        bytes: &[u8],
        member_signature: Option<&[u8]>,
    ) -> Result<(), AuditError> {
        let member_signature = member_signature.and_then(|s| Signature::try_from(s).ok());
        let mut inner = self.lock();
        inner.writer.append(&Record {
            task: &self.task,
            round,
            direction,
            peer,
            kind,
            bytes,
            member_signature,
        })?;
        inner.entries += 1;
        Ok(())
    }

    /// Records that `peer` signs with `key` (from its certificate), once.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn bind(&self, peer: &str, key: [u8; 32]) -> Result<(), AuditError> {
        let mut inner = self.lock();
        if inner.bound.contains(peer) {
            return Ok(());
        }
        inner
            .writer
            .bind_member(&self.task, peer, &PublicKey::from_bytes(key))?;
        inner.bound.insert(peer.to_owned());
        inner.entries += 1;
        Ok(())
    }

    /// Entries appended by this process.
    pub fn entries(&self) -> u64 {
        self.lock().entries
    }

    /// Hash of the last entry: publishing it (the run summary does) lets an
    /// auditor detect entries cut from the end of the log.
    pub fn last_hash(&self) -> String {
        self.lock().writer.last_hash().to_string()
    }

    /// Flushes everything to disk.
    ///
    /// # Errors
    /// The fsync failed.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.lock().writer.sync()
    }
}
