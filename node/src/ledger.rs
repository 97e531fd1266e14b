//! The hospital's own exchange log: every message this node sent to the
//! coordinator and received from it, hash-chained and signed with the
//! hospital's certified signing key (see `medfed-audit`). It lets the
//! hospital prove exactly what left its building, and lets an auditor
//! cross-check the coordinator's log against it.

use std::path::Path;

use medfed_audit::{
    AuditKey, Direction, LogWriter, Record, Repair, Signature, SigningKey, SyncPolicy,
};
use medfed_wire::kinds;

/// Never sync by count: `Batch` syncs only every `n` entries and on
/// `sync`, close and drop.
const MANUAL_SYNC: SyncPolicy = SyncPolicy::Batch(std::num::NonZeroU32::MAX);

/// The node's exchange log.
pub struct Ledger {
    writer: LogWriter,
    me: String,
    task: String,
    coordinator: String,
    bound: bool,
}

impl Ledger {
    /// Opens (or continues, repairing a torn tail) the log at `path`, written
    /// as `me` and signed with `signing`; payloads are encrypted with
    /// `audit_key`.
    ///
    /// # Errors
    /// The log cannot be created, belongs to another writer, or is damaged
    /// beyond a torn last entry.
    pub fn open(
        path: &Path,
        me: &str,
        signing: &SigningKey,
        audit_key: &AuditKey,
    ) -> Result<(Ledger, Option<Repair>), medfed_audit::AuditError> {
        // Synced by hand in `sent` (see there), never by count.
        let (writer, repair) = LogWriter::open(path, me, signing, audit_key, MANUAL_SYNC)?;
        Ok((
            Ledger {
                writer,
                me: me.to_owned(),
                task: String::new(),
                coordinator: String::new(),
                bound: false,
            },
            repair,
        ))
    }

    /// Sets the task and the coordinator's name, known once joined, and
    /// binds the hospital's own signing key in the log (once), so that
    /// the signatures on its submissions can be checked from the log alone.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn joined(&mut self, task: &str, coordinator: &str) -> anyhow::Result<()> {
        task.clone_into(&mut self.task);
        coordinator.clone_into(&mut self.coordinator);
        if !self.bound {
            let key = self.writer.public_key();
            self.writer.bind_member(task, &self.me, &key)?;
            self.bound = true;
        }
        Ok(())
    }

    fn append(
        &mut self,
        direction: Direction,
        kind: &str,
        round: u32,
        bytes: &[u8],
        member_signature: Option<Signature>,
    ) -> anyhow::Result<()> {
        self.writer.append(&Record {
            task: &self.task,
            round,
            direction,
            peer: &self.coordinator,
            kind,
            bytes,
            member_signature,
        })?;
        Ok(())
    }

    /// Records a message sent, with the hospital's signature when it is a
    /// signed submission.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn sent(
        &mut self,
        kind: &str,
        round: u32,
        bytes: &[u8],
        signature: Option<Signature>,
    ) -> anyhow::Result<()> {
        self.append(Direction::Out, kind, round, bytes, signature)?;
        // What leaves the building is on disk before it leaves, and with it
        // every message received before: one fsync per message sent. A
        // received message needs no fsync of its own: until the node answers
        // it, losing its entry in a crash loses nothing that left.
        self.writer.sync()?;
        Ok(())
    }

    /// Records a privacy spend of this site (a local entry: round, σ, ε
    /// after the round, δ), flushed to disk at once.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn spent(&mut self, round: u32, bytes: &[u8]) -> anyhow::Result<()> {
        self.append(Direction::Local, kinds::PRIVACY_SPEND, round, bytes, None)?;
        self.writer.sync()?;
        Ok(())
    }

    /// Records a message received (flushed to disk with the next message
    /// sent, or when the log is dropped).
    ///
    /// # Errors
    /// The append failed.
    pub fn received(&mut self, kind: &str, round: u32, bytes: &[u8]) -> anyhow::Result<()> {
        self.append(Direction::In, kind, round, bytes, None)
    }
}
