//! One function per subcommand: call the library, print text or JSON.

use std::path::Path;

use anyhow::Result;
use medfed_audit::{
    AUDIT_KEY_ENV, AuditError, AuditKey, CrossCheckReport, Digest, Direction, Entry, LogReader,
    PublicKey, SigningKey, Summary, VerifyOptions, VerifyReport, cross_check, describe_payload,
    render_text, verify,
};
use serde_json::{Value, json};

use crate::args::{AuditKeyArg, Command};

/// Writes a line to standard output. A reader that closes the pipe early
/// (`medfed-audit list log | head`) ends the command quietly: the error
/// carries [`crate::StdoutClosed`], which `main` treats as success.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(crate::StdoutClosed::or_io)?
    }};
}
use crate::{NeedsAuditKey, Outcome};

pub(crate) fn run(command: Command) -> Result<Outcome> {
    match command {
        Command::Verify {
            log,
            key,
            writer_key,
            json,
        } => verify_command(&log, &key, writer_key.as_ref(), json),
        Command::List { log, json } => list(&log, json),
        Command::Show {
            log,
            seq,
            key,
            json,
        } => show(&log, seq, &key, json),
        Command::CrossCheck {
            node,
            coordinator,
            key,
            json,
        } => cross_check_command(&node, &coordinator, &key, json),
        Command::Keygen {
            audit_key,
            signing_key,
        } => keygen(audit_key.as_deref(), signing_key.as_deref()),
    }
}

/// The audit key from `--audit-key-file`, else from the environment when set.
fn audit_key(arg: &AuditKeyArg) -> Result<Option<AuditKey>> {
    if let Some(path) = &arg.audit_key_file {
        return Ok(Some(AuditKey::from_file(path)?));
    }
    match AuditKey::from_env(AUDIT_KEY_ENV) {
        Ok(key) => Ok(Some(key)),
        Err(AuditError::AuditKeyEnvUnset { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn print_json(value: &Value) -> Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn outcome(ok: bool) -> Outcome {
    if ok {
        Outcome::Clean
    } else {
        Outcome::Findings
    }
}

fn verify_command(
    log: &Path,
    key: &AuditKeyArg,
    writer_key: Option<&PublicKey>,
    json: bool,
) -> Result<Outcome> {
    let audit_key = audit_key(key)?;
    let report = verify(
        log,
        &VerifyOptions {
            audit_key: audit_key.as_ref(),
            writer_key,
        },
    )?;
    if json {
        print_json(&json!({
            "log": log.display().to_string(),
            "ok": report.is_ok(),
            "report": report,
        }))?;
    } else {
        print_verify(log, &report)?;
    }
    Ok(outcome(report.is_ok()))
}

fn print_verify(log: &Path, report: &VerifyReport) -> Result<()> {
    let writer = match (&report.writer, &report.writer_key) {
        (Some(name), Some(key)) => format!("writer {name:?}, key {key}"),
        _ => "writer unknown".to_owned(),
    };
    let scope = if report.payloads_checked {
        "chain, signatures, payloads and member signatures checked"
    } else {
        "chain and signatures checked; payloads and member signatures NOT checked (no audit key)"
    };
    match &report.first_problem {
        None => out!(
            "OK {}: {} entries verified ({writer}; {scope})",
            log.display(),
            report.entries
        ),
        Some(problem) => {
            out!("FAILED {}: {problem}", log.display());
            out!(
                "  the {} entries before it verified ({writer}; {scope})",
                report.entries
            );
        }
    }
    Ok(())
}

fn list(log: &Path, json: bool) -> Result<Outcome> {
    let mut summary = Summary::new();
    let mut rows = Vec::new();
    let mut failure = None;
    if !json {
        out!(
            "{:>6}  {:<30}  {:>5}  {:<5}  {:<20}  {:<18}  {:>9}  sha256",
            "seq",
            "time",
            "round",
            "dir",
            "peer",
            "kind",
            "bytes"
        );
    }
    for entry in LogReader::open(log)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error @ AuditError::Io { .. }) => return Err(error.into()),
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        summary.add(&entry);
        if json {
            rows.push(entry_json(&entry));
        } else {
            out!(
                "{:>6}  {:<30}  {:>5}  {:<5}  {:<20}  {:<18}  {:>9}  {}",
                entry.seq,
                entry.time,
                entry.round,
                entry.direction,
                entry.peer,
                entry.kind,
                entry.len,
                entry.sha256.short()
            );
        }
    }
    let rounds = summary.finish();
    if json {
        print_json(&json!({
            "log": log.display().to_string(),
            "entries": rows,
            "rounds": rounds,
            "error": failure.as_ref().map(|e| format!("{e:#}")),
        }))?;
    } else {
        out!();
        out!("Per round (from: received from the peer; to: sent to it):");
        for round in &rounds {
            out!("  task {:?} round {}:", round.task, round.round);
            for peer in &round.peers {
                let kinds = |list: &[medfed_audit::KindCount]| {
                    let parts: Vec<String> = list
                        .iter()
                        .map(|k| {
                            if k.count == 1 {
                                k.kind.clone()
                            } else {
                                format!("{} x{}", k.kind, k.count)
                            }
                        })
                        .collect();
                    if parts.is_empty() {
                        "-".to_owned()
                    } else {
                        parts.join(", ")
                    }
                };
                out!(
                    "    {}: from {}; to {}",
                    peer.peer,
                    kinds(&peer.from_peer),
                    kinds(&peer.to_peer)
                );
            }
        }
        if let Some(error) = &failure {
            eprintln!("medfed-audit: listing stopped: {error:#}");
        }
    }
    Ok(outcome(failure.is_none()))
}

fn entry_json(entry: &Entry) -> Value {
    json!({
        "seq": entry.seq,
        "time": entry.time,
        "task": entry.task,
        "round": entry.round,
        "direction": entry.direction,
        "peer": entry.peer,
        "kind": entry.kind,
        "meta": entry.meta,
        "bytes": entry.len,
        "sha256": entry.sha256,
        "member_signature": entry.member_signature,
        "hash": entry.hash,
    })
}

fn show(log: &Path, seq: u64, key: &AuditKeyArg, json: bool) -> Result<Outcome> {
    let audit_key = audit_key(key)?.ok_or(NeedsAuditKey("show"))?;
    let mut seen = 0;
    let mut found = None;
    for entry in LogReader::open(log)? {
        let entry = entry?;
        seen += 1;
        if entry.seq == seq {
            found = Some(entry);
            break;
        }
    }
    let entry = found.ok_or_else(|| AuditError::EntryNotFound {
        path: log.to_path_buf(),
        seq,
        entries: seen,
    })?;
    let Some(bytes) = audit_key.decrypt(&entry.payload) else {
        let error = AuditError::Decrypt {
            path: log.to_path_buf(),
            seq,
            fingerprint: audit_key.fingerprint().to_owned(),
        };
        eprintln!("medfed-audit: {error}");
        return Ok(Outcome::Findings);
    };
    let computed = Digest::of(&bytes);
    let hash_ok = computed == entry.sha256;
    let decoded = describe_payload(&entry.kind, &bytes);
    if json {
        print_json(&json!({
            "entry": entry_json(&entry),
            "payload_sha256": computed,
            "payload_matches": hash_ok,
            "payload": decoded,
        }))?;
    } else {
        let arrow = match entry.direction {
            Direction::In => format!("in from {}", entry.peer),
            Direction::Out => format!("out to {}", entry.peer),
            Direction::Local => format!("local {}", entry.peer),
        };
        out!(
            "entry {}  {}  task {:?}  round {}  {arrow}  kind {}",
            entry.seq,
            entry.time,
            entry.task,
            entry.round,
            entry.kind
        );
        for (key, value) in &entry.meta {
            out!("meta {key}: {value}");
        }
        if hash_ok {
            out!("sha256 {} (matches the payload)", entry.sha256);
        } else {
            out!(
                "sha256 {} DOES NOT MATCH the payload's {computed}",
                entry.sha256
            );
        }
        match &entry.member_signature {
            Some(signature) => out!("member signature {signature} (run verify to check it)"),
            None => out!("member signature: none"),
        }
        out!("payload: {} bytes, {}", decoded.bytes, decoded.message_type);
        let text = render_text(&decoded.content);
        for line in text.lines() {
            out!("  {line}");
        }
    }
    Ok(outcome(hash_ok))
}

fn cross_check_command(
    node: &Path,
    coordinator: &Path,
    key: &AuditKeyArg,
    json: bool,
) -> Result<Outcome> {
    let audit_key = audit_key(key)?;
    let options = VerifyOptions {
        audit_key: audit_key.as_ref(),
        writer_key: None,
    };
    let node_report = verify(node, &options)?;
    let coordinator_report = verify(coordinator, &options)?;
    let verified = node_report.is_ok() && coordinator_report.is_ok();
    let compared = match cross_check(node, coordinator) {
        Ok(report) => Ok(report),
        // The logs' own damage was found above; report it instead of failing.
        Err(error) if !verified => Err(format!("{error:#}")),
        Err(error) => return Err(error.into()),
    };
    let clean = verified && compared.as_ref().is_ok_and(CrossCheckReport::is_clean);
    if json {
        let (report, error) = match &compared {
            Ok(report) => (Some(report), None),
            Err(error) => (None, Some(error)),
        };
        print_json(&json!({
            "ok": clean,
            "node_log": { "path": node.display().to_string(), "verify": node_report },
            "coordinator_log": {
                "path": coordinator.display().to_string(),
                "verify": coordinator_report,
            },
            "cross_check": report,
            "error": error,
        }))?;
        return Ok(outcome(clean));
    }
    print_verify(node, &node_report)?;
    print_verify(coordinator, &coordinator_report)?;
    match &compared {
        Err(error) => out!("cannot compare the logs: {error}"),
        Ok(report) => print_cross_check(report)?,
    }
    Ok(outcome(clean))
}

fn print_cross_check(report: &CrossCheckReport) -> Result<()> {
    out!(
        "node {:?} vs coordinator {:?}: {} {} match, {} {}",
        report.node,
        report.coordinator,
        report.matched,
        if report.matched == 1 {
            "message"
        } else {
            "messages"
        },
        report.discrepancies.len(),
        if report.discrepancies.len() == 1 {
            "discrepancy"
        } else {
            "discrepancies"
        }
    );
    if report.node_entries_skipped > 0 {
        out!(
            "  note: {} node entries have a peer other than {:?} and were not compared",
            report.node_entries_skipped,
            report.coordinator
        );
    }
    for d in &report.discrepancies {
        let side = |s: &Option<medfed_audit::Side>| {
            s.as_ref().map_or_else(
                || "-".to_owned(),
                |s| format!("seq {} sha256 {}", s.seq, s.sha256.short()),
            )
        };
        out!(
            "  {}: {} task {:?} round {} kind {}: node {}; coordinator {}",
            d.kind.as_str(),
            d.flow.as_str(),
            d.task,
            d.round,
            d.message_kind,
            side(&d.node),
            side(&d.coordinator)
        );
    }
    Ok(())
}

fn keygen(audit_key: Option<&Path>, signing_key: Option<&Path>) -> Result<Outcome> {
    if let Some(path) = audit_key {
        let key = AuditKey::generate();
        key.write_new(path)?;
        out!(
            "wrote a new audit key to {} (fingerprint {}); give it to the auditor and the \
             log writers only, and keep a backup: payloads are unreadable without it",
            path.display(),
            key.fingerprint()
        );
    }
    if let Some(path) = signing_key {
        let key = SigningKey::generate()?;
        key.write_new(path)?;
        out!(
            "wrote a new Ed25519 writer key to {}; its public key (for verify --writer-key) is\n{}",
            path.display(),
            key.public_key()
        );
    }
    Ok(Outcome::Clean)
}
