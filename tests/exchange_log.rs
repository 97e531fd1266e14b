//! The exchange logs of a real run (coordinator and four heart-site nodes on
//! 127.0.0.1 over mutual TLS), checked the way an auditor would, with the
//! `medfed-audit` tool and keys taken from the certificates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medfed::{Federation, bin};

const SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

fn task() -> String {
    let members: Vec<String> = SITES.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"
[task]
id = "audited"
members = [{}]
model = "logistic"
features = ["age", "sex", "cp", "trestbps", "chol", "thalach", "exang", "oldpeak"]
target = "target"

[training]
algorithm = "fedavg"
rounds = 4

[evaluation]
baselines = true
every_rounds = 2
"#,
        members.join(", ")
    )
}

fn audit(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin("medfed-audit"))
        .args(args)
        .output()
        .expect("run medfed-audit")
}

/// The signing key a certificate certifies, as hex.
fn certified_key(cert: &Path) -> String {
    let certs = medfed_tls::load_certs(cert).expect("certificate");
    let key = medfed_tls::signing_key_from_der(&certs[0])
        .expect("readable certificate")
        .expect("a certified signing key");
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_runs_logs_verify_against_the_certified_keys_and_cross_check_clean() {
    let run = Federation::heart(&SITES, task()).run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let root = run.dir.path();
    let coordinator_log = root.join("run/exchange.log");
    let pki = root.join("pki");

    // The coordinator's log: every entry chained, signed by the key its
    // certificate certifies, every payload decrypting to its recorded hash,
    // every member signature valid.
    let writer_key = certified_key(&pki.join("coordinator/coordinator.pem"));
    let verified = audit(&[
        "verify".as_ref(),
        coordinator_log.as_os_str(),
        "--audit-key-file".as_ref(),
        root.join("coordinator-audit.key").as_os_str(),
        "--writer-key".as_ref(),
        writer_key.as_ref(),
    ]);
    assert!(verified.status.success(), "{}", text(&verified));

    // The summary publishes the last entry's hash, so a shortened log shows.
    let entries = medfed_audit::read_log(&coordinator_log).expect("coordinator log");
    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["exchange_log"]["last_hash"].as_str(),
        Some(entries.last().expect("entries").hash.to_string().as_str())
    );
    // Each member's update for each round is in it, with its signature.
    for round in 1..=4u32 {
        let updates: Vec<&medfed_audit::Entry> = entries
            .iter()
            .filter(|e| e.kind == "update" && e.round == round)
            .collect();
        assert_eq!(updates.len(), 4, "round {round}");
        assert!(updates.iter().all(|e| e.member_signature.is_some()));
    }

    for site in SITES {
        let node_log = root.join("sites").join(site).join("exchange.log");
        let writer_key = certified_key(&pki.join(site).join(format!("{site}.pem")));
        let verified = audit(&[
            "verify".as_ref(),
            node_log.as_os_str(),
            "--audit-key-file".as_ref(),
            root.join("sites").join(site).join("audit.key").as_os_str(),
            "--writer-key".as_ref(),
            writer_key.as_ref(),
        ]);
        assert!(verified.status.success(), "{site}: {}", text(&verified));
        let crossed = audit(&[
            "cross-check".as_ref(),
            "--node".as_ref(),
            node_log.as_os_str(),
            "--coordinator".as_ref(),
            coordinator_log.as_os_str(),
            "--json".as_ref(),
        ]);
        assert!(crossed.status.success(), "{site}: {}", text(&crossed));
        let report: serde_json::Value =
            serde_json::from_slice(&crossed.stdout).expect("cross-check JSON");
        assert_eq!(report["ok"], true, "{site}: {report:#}");
        assert_eq!(
            report["cross_check"]["discrepancies"],
            serde_json::json!([]),
            "{site}: {report:#}"
        );
        // join, task, the statistics request and answer, 4 rounds in and
        // out, baselines, evaluation, finished: well over a dozen messages.
        let matched = report["cross_check"]["matched"]
            .as_u64()
            .expect("matched count");
        assert!(matched >= 14, "{site}: only {matched} messages matched");
    }

    // An altered copy of a node's log no longer verifies, and the tool says
    // which entry broke.
    let original = root.join("sites/va/exchange.log");
    let tampered: PathBuf = root.join("tampered.log");
    let mut bytes = std::fs::read(&original).expect("node log");
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let fifth = line_starts[5] + 40;
    bytes[fifth] = if bytes[fifth] == b'0' { b'1' } else { b'0' };
    std::fs::write(&tampered, &bytes).expect("write copy");
    let verified = audit(&["verify".as_ref(), tampered.as_os_str()]);
    // Exit status 6: verification failed.
    assert_eq!(verified.status.code(), Some(6), "{}", text(&verified));
    assert!(text(&verified).contains("entry 5"), "{}", text(&verified));
}
