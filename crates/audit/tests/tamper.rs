//! Tampering with real log files, and what `verify` and `LogWriter::open`
//! make of it.

mod common;

use std::num::NonZeroU32;

use common::{COORDINATOR, Fault, Federation, NODE, TASK, lines, write_lines};
use medfed_audit::{
    AuditError, AuditKey, Digest, Direction, LogWriter, ProblemKind, Record, SigningKey,
    SyncPolicy, VerifyOptions, VerifyReport, kinds, meta_keys, read_log, verify,
};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn with_key(f: &Federation) -> VerifyOptions<'_> {
    VerifyOptions {
        audit_key: Some(&f.audit_key),
        writer_key: None,
    }
}

/// The index and reason of the first problem; panics when there is none.
fn problem(report: &VerifyReport) -> (u64, ProblemKind) {
    match &report.first_problem {
        Some(p) => (p.index, p.reason.clone()),
        None => panic!("expected a problem, the log verified: {report:?}"),
    }
}

/// Replaces the value of JSON field `field` in a line (values here never
/// contain `,"`).
fn set_field(line: &[u8], field: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(line).into_owned();
    let key = format!("\"{field}\":");
    let start = text
        .find(&key)
        .map(|i| i + key.len())
        .unwrap_or_else(|| panic!("no {field}"));
    let end = text[start..]
        .find(",\"")
        .or_else(|| text[start..].find('}'))
        .map_or(text.len(), |i| start + i);
    format!("{}{}{}", &text[..start], value, &text[end..]).into_bytes()
}

/// The writer signature of an entry hash, as the format defines it.
fn entry_signature(key: &SigningKey, hash: &Digest) -> String {
    let mut message = b"medfed-audit v1 entry-signature\0".to_vec();
    message.extend_from_slice(hash.as_bytes());
    key.sign(&message).to_string()
}

#[test]
fn untouched_logs_verify() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    for (log, key) in [
        (&f.coordinator_log, &f.coordinator_key),
        (&f.node_log, &f.node_key),
    ] {
        let report = verify(
            log,
            &VerifyOptions {
                audit_key: Some(&f.audit_key),
                writer_key: Some(&key.public_key()),
            },
        )?;
        assert!(report.is_ok(), "{report:?}");
        assert!(report.payloads_checked);
        assert_eq!(report.entries, lines(log)?.len() as u64);
        assert_eq!(report.writer_key, Some(key.public_key()));
        assert!(verify(log, &VerifyOptions::default())?.is_ok());
    }
    let report = verify(&f.coordinator_log, &with_key(&f))?;
    assert_eq!(report.entries, 13);
    assert_eq!(report.member_signatures, 3);
    assert_eq!(report.writer.as_deref(), Some(COORDINATOR));
    assert_eq!(report.bindings.len(), 2);
    // The node's own signed submissions are checked against its own binding.
    assert_eq!(verify(&f.node_log, &with_key(&f))?.member_signatures, 2);
    Ok(())
}

#[test]
fn every_single_bit_flip_is_caught_at_its_entry() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let original = std::fs::read(&f.node_log)?;
    let line_of = line_index_table(&original);
    let copy = f.dir.path().join("flipped.log");
    for position in 0..original.len() {
        let mut data = original.clone();
        data[position] ^= 0x01;
        std::fs::write(&copy, &data)?;
        let report = verify(&copy, &VerifyOptions::default())?;
        let (index, reason) = problem(&report);
        assert_eq!(
            index, line_of[position],
            "byte {position} (line {}): {reason}",
            line_of[position]
        );
    }
    Ok(())
}

#[test]
fn random_byte_changes_are_caught_at_their_entry() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let original = std::fs::read(&f.coordinator_log)?;
    let line_of = line_index_table(&original);
    let copy = f.dir.path().join("changed.log");
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&(0..original.len(), 1u8..=255), |(position, mask)| {
        let mut data = original.clone();
        data[position] ^= mask;
        std::fs::write(&copy, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let report =
            verify(&copy, &with_key(&f)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Some(found) = &report.first_problem else {
            return Err(TestCaseError::fail(format!(
                "byte {position} ^ {mask:#04x} went unnoticed"
            )));
        };
        if found.index != line_of[position] {
            return Err(TestCaseError::fail(format!(
                "byte {position} ^ {mask:#04x} (line {}) reported at {}: {}",
                line_of[position], found.index, found.reason
            )));
        }
        Ok(())
    })?;
    Ok(())
}

/// For each byte of a file, the index of the line it belongs to (its
/// newline included).
fn line_index_table(data: &[u8]) -> Vec<u64> {
    let mut line = 0;
    data.iter()
        .map(|&b| {
            let this = line;
            if b == b'\n' {
                line += 1;
            }
            this
        })
        .collect()
}

#[test]
fn a_deleted_entry_is_caught_where_it_was() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let original = lines(&f.coordinator_log)?;
    for deleted in [0usize, 1, 5, 11] {
        let mut cut = original.clone();
        cut.remove(deleted);
        write_lines(&f.coordinator_log, &cut)?;
        let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
        assert_eq!(index, deleted as u64);
        assert_eq!(
            reason,
            ProblemKind::SeqMismatch {
                expected: deleted as u64,
                got: deleted as u64 + 1
            }
        );
    }
    Ok(())
}

#[test]
fn renumbering_after_a_deletion_breaks_the_hash() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    all.remove(5);
    all[5] = set_field(&all[5], "seq", "5");
    write_lines(&f.coordinator_log, &all)?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
    assert_eq!(index, 5);
    assert!(
        matches!(reason, ProblemKind::ChainBroken { .. }),
        "{reason}"
    );
    Ok(())
}

#[test]
fn swapped_entries_are_caught() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    all.swap(7, 8);
    write_lines(&f.coordinator_log, &all)?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
    assert_eq!(index, 7);
    assert_eq!(
        reason,
        ProblemKind::SeqMismatch {
            expected: 7,
            got: 8
        }
    );
    Ok(())
}

#[test]
fn a_torn_last_entry_is_reported_and_repaired_on_open() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let all = lines(&f.coordinator_log)?;
    let last = all.len() - 1;
    let mut torn = all.clone();
    let half = torn[last].len() / 2;
    torn[last].truncate(half);
    write_lines(&f.coordinator_log, &torn)?;

    let report = verify(&f.coordinator_log, &with_key(&f))?;
    assert_eq!(
        problem(&report),
        (last as u64, ProblemKind::Torn { bytes: half as u64 })
    );
    assert_eq!(report.entries, last as u64);
    assert!(matches!(
        read_log(&f.coordinator_log),
        Err(AuditError::TornTail { index, .. }) if index == last as u64
    ));

    let size_before = std::fs::metadata(&f.coordinator_log)?.len();
    let (mut writer, repair) = LogWriter::open(
        &f.coordinator_log,
        COORDINATOR,
        &f.coordinator_key,
        &f.audit_key,
        SyncPolicy::EveryEntry,
    )?;
    let repair = repair.ok_or("expected a repair")?;
    assert_eq!(repair.bytes_cut, half as u64);
    assert_eq!(repair.cut_at, size_before - half as u64);
    assert_eq!(repair.repaired_seq, last as u64);
    let info = writer.append(&Record {
        task: TASK,
        round: 0,
        direction: Direction::Out,
        peer: NODE,
        kind: "finished",
        bytes: b"again",
        member_signature: None,
    })?;
    assert_eq!(info.seq, last as u64 + 2);
    writer.close()?;

    let report = verify(&f.coordinator_log, &with_key(&f))?;
    assert!(report.is_ok(), "{report:?}");
    let entries = read_log(&f.coordinator_log)?;
    let repaired = &entries[last];
    assert_eq!(repaired.kind, kinds::REPAIRED);
    assert_eq!(repaired.direction, Direction::Local);
    assert_eq!(
        repaired.meta.get(meta_keys::BYTES_CUT),
        Some(&half.to_string())
    );
    assert_eq!(entries[last + 1].kind, kinds::LOG_REOPENED);
    // Everything before the torn line is untouched.
    assert_eq!(lines(&f.coordinator_log)?[..last], all[..last]);
    Ok(())
}

#[test]
fn a_torn_first_entry_leaves_a_fresh_log() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let first = lines(&f.node_log)?.remove(0);
    std::fs::write(&f.node_log, &first[..10])?;
    let (writer, repair) = LogWriter::open(
        &f.node_log,
        NODE,
        &f.node_key,
        &f.audit_key,
        SyncPolicy::EveryEntry,
    )?;
    assert_eq!(repair.map(|r| (r.bytes_cut, r.repaired_seq)), Some((10, 1)));
    writer.close()?;
    let entries = read_log(&f.node_log)?;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [kinds::LOG_OPENED, kinds::REPAIRED]);
    assert!(verify(&f.node_log, &with_key(&f))?.is_ok());
    Ok(())
}

#[test]
fn reopening_continues_the_chain() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let before = read_log(&f.coordinator_log)?;
    let mut writer = f.open_coordinator()?;
    assert_eq!(writer.next_seq(), before.len() as u64 + 1);
    writer.append(&Record {
        task: TASK,
        round: 2,
        direction: Direction::Local,
        peer: "",
        kind: "round-closed",
        bytes: b"",
        member_signature: None,
    })?;
    drop(writer);
    let after = read_log(&f.coordinator_log)?;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after[before.len()].kind, kinds::LOG_REOPENED);
    assert_eq!(after[before.len()].prev, before[before.len() - 1].hash);
    assert!(verify(&f.coordinator_log, &with_key(&f))?.is_ok());
    Ok(())
}

#[test]
fn another_writer_cannot_continue_a_log() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let before = std::fs::read(&f.coordinator_log)?;
    let wrong_key = LogWriter::open(
        &f.coordinator_log,
        COORDINATOR,
        &f.node_key,
        &f.audit_key,
        SyncPolicy::EveryEntry,
    );
    match wrong_key {
        Err(AuditError::WrongWriterKey {
            log_key, own_key, ..
        }) => {
            assert_eq!(log_key, f.coordinator_key.public_key().to_string());
            assert_eq!(own_key, f.node_key.public_key().to_string());
        }
        other => panic!("expected WrongWriterKey, got {other:?}"),
    }
    let wrong_name = LogWriter::open(
        &f.coordinator_log,
        "coordinator-2",
        &f.coordinator_key,
        &f.audit_key,
        SyncPolicy::EveryEntry,
    );
    assert!(matches!(
        wrong_name,
        Err(AuditError::WrongWriterName { .. })
    ));
    assert_eq!(std::fs::read(&f.coordinator_log)?, before);
    Ok(())
}

#[test]
fn a_damaged_last_entry_is_not_cut_on_open() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.node_log)?;
    let last = all.len() - 1;
    all[last] = set_field(&all[last], "round", "7");
    write_lines(&f.node_log, &all)?;
    let before = std::fs::read(&f.node_log)?;
    let result = f.open_node();
    assert!(
        matches!(result, Err(AuditError::InvalidLogEnd { .. })),
        "{result:?}"
    );
    assert_eq!(std::fs::read(&f.node_log)?, before);
    Ok(())
}

#[test]
fn a_swapped_in_payload_is_caught() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    let entries = read_log(&f.coordinator_log)?;
    // Entry 11 is st-marys' update; put another valid token there.
    assert_eq!(
        (entries[11].kind.as_str(), entries[11].peer.as_str()),
        ("update", NODE)
    );
    let forged = common::update_bytes(1, 50.0);
    let token = f.audit_key.encrypt(&forged);
    all[11] = set_field(&all[11], "payload", &format!("\"{token}\""));
    write_lines(&f.coordinator_log, &all)?;
    for options in [VerifyOptions::default(), with_key(&f)] {
        let (index, reason) = problem(&verify(&f.coordinator_log, &options)?);
        assert_eq!(index, 11);
        assert!(
            matches!(reason, ProblemKind::HashMismatch { .. }),
            "{reason}"
        );
    }

    // Fixing up sha256, len and hash too still needs the writer's key.
    all[11] = set_field(&all[11], "sha256", &format!("\"{}\"", Digest::of(&forged)));
    all[11] = set_field(&all[11], "len", &forged.len().to_string());
    write_lines(&f.coordinator_log, &all)?;
    let hash = read_log(&f.coordinator_log)?[11].computed_hash();
    all[11] = set_field(&all[11], "hash", &format!("\"{hash}\""));
    write_lines(&f.coordinator_log, &all)?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
    assert_eq!(index, 11);
    assert!(
        matches!(reason, ProblemKind::BadWriterSignature { .. }),
        "{reason}"
    );
    Ok(())
}

#[test]
fn an_entry_signed_with_another_key_is_caught() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    let entry = read_log(&f.coordinator_log)?.remove(5);
    let forged = entry_signature(&f.other_key, &entry.hash);
    all[5] = set_field(&all[5], "sig", &format!("\"{forged}\""));
    write_lines(&f.coordinator_log, &all)?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
    assert_eq!(index, 5);
    assert_eq!(
        reason,
        ProblemKind::BadWriterSignature {
            key: f.coordinator_key.public_key()
        }
    );
    Ok(())
}

#[test]
fn the_operator_cannot_rewrite_a_members_update_even_with_its_own_key() -> Result {
    let f = Federation::new()?;
    let mut writer = f.open_coordinator()?;
    writer.bind_member(TASK, NODE, &f.node_key.public_key())?;
    let genuine = common::update_bytes(1, 1.0);
    writer.append(&Record {
        task: TASK,
        round: 1,
        direction: Direction::In,
        peer: NODE,
        kind: "update",
        bytes: &genuine,
        member_signature: Some(f.node_key.sign(&genuine)),
    })?;
    writer.close()?;

    // The operator rewrites the update and re-signs the entry properly.
    let mut all = lines(&f.coordinator_log)?;
    let forged = common::update_bytes(1, -3.0);
    let token = f.audit_key.encrypt(&forged);
    all[2] = set_field(&all[2], "payload", &format!("\"{token}\""));
    all[2] = set_field(&all[2], "sha256", &format!("\"{}\"", Digest::of(&forged)));
    all[2] = set_field(&all[2], "len", &forged.len().to_string());
    write_lines(&f.coordinator_log, &all)?;
    let hash = read_log(&f.coordinator_log)?[2].computed_hash();
    all[2] = set_field(&all[2], "hash", &format!("\"{hash}\""));
    all[2] = set_field(
        &all[2],
        "sig",
        &format!("\"{}\"", entry_signature(&f.coordinator_key, &hash)),
    );
    write_lines(&f.coordinator_log, &all)?;

    // Chain and writer signatures hold; the member signature does not.
    assert!(verify(&f.coordinator_log, &VerifyOptions::default())?.is_ok());
    let (index, reason) = problem(&verify(&f.coordinator_log, &with_key(&f))?);
    assert_eq!(index, 2);
    assert_eq!(
        reason,
        ProblemKind::BadMemberSignature {
            signer: NODE.into(),
            key: f.node_key.public_key()
        }
    );
    Ok(())
}

#[test]
fn member_signatures_must_match_the_bound_key() -> Result {
    let f = Federation::new()?;
    let mut writer = f.open_coordinator()?;
    writer.bind_member(TASK, NODE, &f.node_key.public_key())?;
    let bytes = common::update_bytes(1, 1.0);
    let record = Record {
        task: TASK,
        round: 1,
        direction: Direction::In,
        peer: NODE,
        kind: "update",
        bytes: &bytes,
        // Signed by someone else than the key bound to st-marys.
        member_signature: Some(f.other_key.sign(&bytes)),
    };
    writer.append(&record)?;
    writer.close()?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &with_key(&f))?);
    assert_eq!(index, 2);
    assert!(
        matches!(reason, ProblemKind::BadMemberSignature { .. }),
        "{reason}"
    );
    Ok(())
}

#[test]
fn member_signatures_need_an_earlier_binding() -> Result {
    let f = Federation::new()?;
    let mut writer = f.open_coordinator()?;
    let bytes = common::update_bytes(1, 1.0);
    writer.append(&Record {
        task: TASK,
        round: 1,
        direction: Direction::In,
        peer: NODE,
        kind: "update",
        bytes: &bytes,
        member_signature: Some(f.node_key.sign(&bytes)),
    })?;
    // Binding after the fact does not count.
    writer.bind_member(TASK, NODE, &f.node_key.public_key())?;
    writer.close()?;
    let (index, reason) = problem(&verify(&f.coordinator_log, &VerifyOptions::default())?);
    assert_eq!(index, 1);
    assert_eq!(
        reason,
        ProblemKind::UnboundMemberSignature {
            signer: NODE.into()
        }
    );
    Ok(())
}

#[test]
fn wrong_writer_key_and_wrong_audit_key_are_reported() -> Result {
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let other = f.other_key.public_key();
    let report = verify(
        &f.coordinator_log,
        &VerifyOptions {
            audit_key: None,
            writer_key: Some(&other),
        },
    )?;
    assert_eq!(
        problem(&report),
        (
            0,
            ProblemKind::WriterKeyMismatch {
                expected: other,
                got: f.coordinator_key.public_key()
            }
        )
    );
    let wrong = AuditKey::generate();
    let report = verify(
        &f.coordinator_log,
        &VerifyOptions {
            audit_key: Some(&wrong),
            writer_key: None,
        },
    )?;
    let (index, reason) = problem(&report);
    assert_eq!(index, 0);
    assert!(
        matches!(reason, ProblemKind::PayloadUndecryptable { .. }),
        "{reason}"
    );
    Ok(())
}

#[test]
fn empty_and_foreign_files_fail() -> Result {
    let f = Federation::new()?;
    let empty = f.dir.path().join("empty.log");
    std::fs::write(&empty, b"")?;
    assert_eq!(
        problem(&verify(&empty, &VerifyOptions::default())?),
        (0, ProblemKind::Empty)
    );
    let text = f.dir.path().join("notes.txt");
    std::fs::write(&text, b"hello\n")?;
    let (index, reason) = problem(&verify(&text, &VerifyOptions::default())?);
    assert_eq!(index, 0);
    assert!(matches!(reason, ProblemKind::Malformed { .. }));
    // A writer refuses to continue a file that is not a log.
    assert!(matches!(
        LogWriter::open(
            &text,
            NODE,
            &f.node_key,
            &f.audit_key,
            SyncPolicy::EveryEntry
        ),
        Err(AuditError::CorruptLog { index: 0, .. })
    ));
    // Nor one without a newline that does not look like a torn entry.
    let binary = f.dir.path().join("model.bin");
    std::fs::write(&binary, [7u8; 300])?;
    assert!(matches!(
        LogWriter::open(
            &binary,
            NODE,
            &f.node_key,
            &f.audit_key,
            SyncPolicy::EveryEntry
        ),
        Err(AuditError::InvalidLogEnd { .. })
    ));
    assert_eq!(std::fs::read(&binary)?, [7u8; 300]);
    assert!(matches!(
        verify(&f.dir.path().join("missing.log"), &VerifyOptions::default()),
        Err(AuditError::Io { .. })
    ));
    Ok(())
}

#[test]
fn batch_sync_keeps_every_entry() -> Result {
    let f = Federation::new()?;
    let policy = SyncPolicy::Batch(NonZeroU32::new(3).ok_or("zero")?);
    let (mut writer, _) = LogWriter::open(&f.node_log, NODE, &f.node_key, &f.audit_key, policy)?;
    for round in 1..=5 {
        writer.append(&Record {
            task: TASK,
            round,
            direction: Direction::Out,
            peer: COORDINATOR,
            kind: "update",
            bytes: &common::update_bytes(round, 1.0),
            member_signature: None,
        })?;
    }
    drop(writer);
    assert_eq!(read_log(&f.node_log)?.len(), 6);
    assert!(verify(&f.node_log, &with_key(&f))?.is_ok());
    Ok(())
}

#[test]
fn dropping_the_last_entries_leaves_a_valid_log() -> Result {
    // A hash chain cannot show that its end was cut off: that takes the
    // other side's log (see the cross-check tests) or a published head hash.
    let f = Federation::new()?;
    f.run(Fault::None)?;
    let mut all = lines(&f.coordinator_log)?;
    all.pop();
    write_lines(&f.coordinator_log, &all)?;
    assert!(verify(&f.coordinator_log, &with_key(&f))?.is_ok());
    Ok(())
}
