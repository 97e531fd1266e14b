//! The coordinator's side of the exchange log: every message in and out,
//! appended to a hash-chained, signed log (see `medfed-audit`) before the
//! call returns, with each member's signing key bound on its first join.
//!
//! The writer sits behind a std `Mutex`: appends are short and never held
//! across an `.await`. A message that cannot be logged is refused, so
//! nothing is exchanged without evidence.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Mutex;

use medfed_audit::{
    AuditError, AuditKey, Direction, PublicKey, Record, Repair, Signature, SigningKey, SyncPolicy,
};

/// When the coordinator's exchange log reaches the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogSync {
    /// After every entry, before the message is acted on (the default).
    #[default]
    Entry,
    /// Once per step, when the step closes and before the coordinator
    /// computes on its answers: a crash can lose the entries of the open
    /// step only, and that step is redone on restart.
    Step,
    /// After every `n` entries (and when the run ends).
    Every(NonZeroU32),
}

/// The coordinator's exchange log.
pub struct Exchange {
    task: String,
    per_step: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    writer: medfed_audit::LogWriter,
    /// The signing key last bound for each member.
    bound: BTreeMap<String, [u8; 32]>,
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
        sync: LogSync,
    ) -> Result<(Exchange, Option<Repair>), AuditError> {
        let policy = match sync {
            LogSync::Entry => SyncPolicy::EveryEntry,
            // Synced by hand in `step_closed`, never by count.
            LogSync::Step => SyncPolicy::Batch(NonZeroU32::MAX),
            LogSync::Every(n) => SyncPolicy::Batch(n),
        };
        let (writer, repair) =
            medfed_audit::LogWriter::open(path, writer_name, signing, audit_key, policy)?;
        Ok((
            Exchange {
                task: task.to_owned(),
                per_step: sync == LogSync::Step,
                inner: Mutex::new(Inner {
                    writer,
                    bound: BTreeMap::new(),
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

    /// Records that `peer` signs with `key` (from its certificate): on its
    /// first call, and again whenever the key changes (a member that renewed
    /// its certificate mid-task), so every later member signature in the log
    /// verifies against the key bound before it.
    ///
    /// # Errors
    /// The append or its fsync failed.
    pub fn bind(&self, peer: &str, key: [u8; 32]) -> Result<(), AuditError> {
        let mut inner = self.lock();
        if inner.bound.get(peer) == Some(&key) {
            return Ok(());
        }
        inner
            .writer
            .bind_member(&self.task, peer, &PublicKey::from_bytes(key))?;
        inner.bound.insert(peer.to_owned(), key);
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

    /// A step closed: with [`LogSync::Step`], flushes everything to disk.
    ///
    /// # Errors
    /// The fsync failed.
    pub fn step_closed(&self) -> Result<(), AuditError> {
        if self.per_step {
            self.sync()?;
        }
        Ok(())
    }

    /// Flushes everything to disk.
    ///
    /// # Errors
    /// The fsync failed.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.lock().writer.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that renews its certificate (new signing key) mid-task gets
    /// the new key bound, and the log still verifies with every member
    /// signature checked.
    #[test]
    fn a_renewed_signing_key_is_bound_again_and_the_log_verifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("exchange.log");
        let writer = SigningKey::generate().expect("writer key");
        let audit = AuditKey::generate();
        let (exchange, _) = Exchange::open(
            &path,
            "task",
            "coordinator",
            &writer,
            &audit,
            LogSync::Entry,
        )
        .expect("open");
        let old = SigningKey::generate().expect("old key");
        let new = SigningKey::generate().expect("new key");
        for (key, body) in [
            (&old, b"first".as_slice()),
            (&old, b"second"),
            (&new, b"third"),
        ] {
            exchange
                .bind("site-a", *key.public_key().as_bytes())
                .expect("bind");
            let signature = key.sign(body);
            exchange
                .record(
                    Direction::In,
                    "site-a",
                    "update",
                    1,
                    body,
                    Some(signature.as_bytes()),
                )
                .expect("record");
        }
        exchange.sync().expect("sync");
        // Two bindings (old key once, then the new one) and three messages.
        assert_eq!(exchange.entries(), 5);
        let report = medfed_audit::verify(
            &path,
            &medfed_audit::VerifyOptions {
                audit_key: Some(&audit),
                writer_key: Some(&writer.public_key()),
            },
        )
        .expect("verify");
        assert!(report.is_ok(), "{:?}", report.first_problem);
        assert_eq!(report.member_signatures, 3);
        let keys: Vec<_> = report.bindings.iter().map(|b| b.key).collect();
        assert_eq!(keys, [old.public_key(), new.public_key()]);
    }
}
