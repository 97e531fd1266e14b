//! Logs for log shippers: with `MEDFED_LOG_FORMAT=json`, every line a node
//! logs is one JSON object with a time, level, target and message.

use std::process::Command;

use medfed::bin;

fn ok(command: &mut Command) {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    ok(Command::new(bin("medfed-certs"))
        .args(["demo", "--out"])
        .arg(root.join("pki"))
        .args(["--member", "site-a", "--san", "127.0.0.1"]));
    std::fs::write(root.join("r.csv"), "x,y\n1,0\n2,1\n").expect("csv");
    ok(Command::new(bin("node"))
        .arg("import")
        .arg("--csv")
        .arg(root.join("r.csv"))
        .arg("--vault")
        .arg(root.join("site.vault"))
        .arg("--key-file")
        .arg(root.join("vault.key"))
        .args(["--create-key", "--target", "y"]));
    ok(Command::new(bin("medfed-audit"))
        .args(["keygen", "--audit-key"])
        .arg(root.join("audit.key")));
    let pki = root.join("pki/site-a");
    // Nobody listens on port 9: the node logs its retries, then gives up.
    let output = Command::new(bin("node"))
        .args([
            "run",
            "--coordinator",
            "https://127.0.0.1:9",
            "--connect-timeout",
            "1",
        ])
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("site-a.pem"))
        .arg("--key")
        .arg(pki.join("site-a.key"))
        .arg("--signing-key")
        .arg(pki.join("site-a.sign.key"))
        .arg("--vault")
        .arg(root.join("site.vault"))
        .arg("--key-file")
        .arg(root.join("vault.key"))
        .arg("--audit-key-file")
        .arg(root.join("audit.key"))
        .env("MEDFED_LOG_FORMAT", "json")
        .env("MEDFED_LOG", "medfed_node=debug")
        .output()
        .expect("node run");
    assert_eq!(
        output.status.code(),
        Some(5),
        "an unreachable coordinator is a peer failure"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!logs.is_empty(), "no JSON log lines in: {stderr}");
    for log in &logs {
        for field in ["timestamp", "level", "target"] {
            assert!(log.get(field).is_some(), "{field} missing in {log}");
        }
        assert!(log["fields"]["message"].is_string(), "{log}");
    }
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "coordinator not reachable; retrying"),
        "{stderr}"
    );
    // The final error stays a plain line for the person at the terminal.
    assert!(
        stderr.contains("node: error: cannot reach the coordinator"),
        "{stderr}"
    );
}
