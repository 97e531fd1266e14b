//! The `medfed-audit` binary: exit codes and output, run as a process.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Fault, Federation, lines, write_lines};
use medfed_audit::{AUDIT_KEY_ENV, AuditKey};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn audit(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_medfed-audit"))
        .args(args)
        .env_remove(AUDIT_KEY_ENV)
        .output()?)
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A federation's logs plus the audit key in a file.
fn setup(fault: Fault) -> Result<(Federation, std::path::PathBuf)> {
    let f = Federation::new()?;
    f.run(fault)?;
    let key_file = f.dir.path().join("audit.key");
    f.audit_key.write_new(&key_file)?;
    Ok((f, key_file))
}

#[test]
fn help_has_an_example_per_subcommand_and_version_works() -> Result {
    for sub in ["verify", "list", "show", "cross-check", "keygen"] {
        let out = audit(&[sub, "--help"])?;
        assert_eq!(code(&out), Some(0), "{sub}");
        assert!(stdout(&out).contains("Example:"), "{sub}: {}", stdout(&out));
    }
    let out = audit(&["--version"])?;
    assert_eq!(code(&out), Some(0));
    assert!(stdout(&out).starts_with("medfed-audit "));
    Ok(())
}

#[test]
fn verify_exit_codes() -> Result {
    let (f, key_file) = setup(Fault::None)?;
    let log = path(&f.coordinator_log);
    let writer_key = f.coordinator_key.public_key().to_string();

    let out = audit(&[
        "verify",
        log,
        "--audit-key-file",
        path(&key_file),
        "--writer-key",
        &writer_key,
    ])?;
    assert_eq!(code(&out), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("OK "), "{}", stdout(&out));

    // The audit key from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_medfed-audit"))
        .args(["verify", log, "--json"])
        .env(AUDIT_KEY_ENV, std::fs::read_to_string(&key_file)?.trim())
        .output()?;
    assert_eq!(code(&out), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["report"]["payloads_checked"], true);

    // Another writer key: verification failed, exit 6.
    let other = f.other_key.public_key().to_string();
    let out = audit(&["verify", log, "--writer-key", &other])?;
    assert_eq!(code(&out), Some(6));
    assert!(stdout(&out).contains("entry 0"), "{}", stdout(&out));

    // Usage errors (2) and unreadable inputs (4, data).
    assert_eq!(
        code(&audit(&["verify", log, "--writer-key", "xyz"])?),
        Some(2)
    );
    assert_eq!(code(&audit(&["verify"])?), Some(2));
    assert_eq!(
        code(&audit(&["verify", path(&f.dir.path().join("nope.log"))])?),
        Some(4)
    );
    let bad_key = f.dir.path().join("bad.key");
    std::fs::write(&bad_key, "not a key")?;
    assert_eq!(
        code(&audit(&[
            "verify",
            log,
            "--audit-key-file",
            path(&bad_key)
        ])?),
        Some(4)
    );

    // Tampered: the first bad entry and its reason, exit 6.
    let mut all = lines(&f.coordinator_log)?;
    all.swap(3, 4);
    write_lines(&f.coordinator_log, &all)?;
    let out = audit(&["verify", log])?;
    assert_eq!(code(&out), Some(6));
    assert!(stdout(&out).contains("entry 3"), "{}", stdout(&out));
    assert!(stdout(&out).contains("seq-mismatch"), "{}", stdout(&out));
    let out = audit(&["verify", log, "--json"])?;
    assert_eq!(code(&out), Some(6));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["report"]["first_problem"]["index"], 3);
    assert_eq!(
        doc["report"]["first_problem"]["reason"]["kind"],
        "seq-mismatch"
    );
    Ok(())
}

#[test]
fn list_prints_entries_and_a_round_summary() -> Result {
    let (f, _) = setup(Fault::None)?;
    let out = audit(&["list", path(&f.coordinator_log)])?;
    assert_eq!(code(&out), Some(0));
    let text = stdout(&out);
    assert!(text.contains("log-opened"), "{text}");
    assert!(text.contains("global-model"), "{text}");
    assert!(text.contains("task \"sepsis-2025\" round 1:"), "{text}");
    assert!(
        text.contains("st-marys: from update; to global-model"),
        "{text}"
    );

    let out = audit(&["list", path(&f.coordinator_log), "--json"])?;
    assert_eq!(code(&out), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["entries"].as_array().map(Vec::len), Some(13));
    assert_eq!(doc["entries"][11]["kind"], "update");
    assert!(doc["error"].is_null());
    Ok(())
}

#[test]
fn list_into_a_closed_pipe_stops_quietly() -> Result {
    // `medfed-audit list log | head -1`: the reader goes away early. Here
    // it is gone before the first line is written.
    let (f, _) = setup(Fault::None)?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_medfed-audit"))
        .args(["list", path(&f.coordinator_log)])
        .env_remove(AUDIT_KEY_ENV)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), Some(0), "{errors}");
    assert!(errors.is_empty(), "{errors}");
    Ok(())
}

#[test]
fn show_decrypts_and_decodes() -> Result {
    let (f, key_file) = setup(Fault::None)?;
    let log = path(&f.coordinator_log);
    let out = audit(&[
        "show",
        log,
        "--seq",
        "11",
        "--audit-key-file",
        path(&key_file),
    ])?;
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("medfed.v2.ModelUpdate"), "{text}");
    assert!(text.contains("dimension: 6"), "{text}");
    assert!(text.contains("matches the payload"), "{text}");

    let out = audit(&[
        "show",
        log,
        "--seq",
        "8",
        "--audit-key-file",
        path(&key_file),
        "--json",
    ])?;
    assert_eq!(code(&out), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["payload"]["message_type"], "medfed.v2.Instruction");
    assert_eq!(doc["payload"]["content"]["instruction"], "train");

    // No key: a configuration error. A missing entry: a usage error. A
    // wrong key: a finding.
    assert_eq!(code(&audit(&["show", log, "--seq", "11"])?), Some(3));
    assert_eq!(
        code(&audit(&[
            "show",
            log,
            "--seq",
            "99",
            "--audit-key-file",
            path(&key_file)
        ])?),
        Some(2)
    );
    let wrong = f.dir.path().join("wrong.key");
    AuditKey::generate().write_new(&wrong)?;
    assert_eq!(
        code(&audit(&[
            "show",
            log,
            "--seq",
            "11",
            "--audit-key-file",
            path(&wrong)
        ])?),
        Some(6)
    );
    Ok(())
}

#[test]
fn cross_check_exit_codes() -> Result {
    let (f, _) = setup(Fault::None)?;
    let args = |json: bool| {
        let mut a = vec![
            "cross-check".to_owned(),
            "--node".to_owned(),
            path(&f.node_log).to_owned(),
            "--coordinator".to_owned(),
            path(&f.coordinator_log).to_owned(),
        ];
        if json {
            a.push("--json".to_owned());
        }
        a
    };
    let run = |json: bool| -> Result<Output> {
        let a = args(json);
        audit(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = run(false)?;
    assert_eq!(code(&out), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 discrepancies"), "{}", stdout(&out));

    let (g, _) = setup(Fault::CoordinatorAltersUpdate)?;
    let out = audit(&[
        "cross-check",
        "--node",
        path(&g.node_log),
        "--coordinator",
        path(&g.coordinator_log),
        "--json",
    ])?;
    assert_eq!(code(&out), Some(6));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["cross_check"]["discrepancies"][0]["kind"], "altered");

    // A damaged log fails the cross-check too.
    let mut all = lines(&f.node_log)?;
    all.remove(2);
    write_lines(&f.node_log, &all)?;
    assert_eq!(code(&run(true)?), Some(6));
    Ok(())
}

#[test]
fn keygen_writes_new_keys_only() -> Result {
    let dir = tempfile::tempdir()?;
    let audit_key = dir.path().join("audit.key");
    let signing_key = dir.path().join("writer.key");
    let out = audit(&[
        "keygen",
        "--audit-key-file",
        path(&audit_key),
        "--signing-key",
        path(&signing_key),
    ])?;
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = AuditKey::from_file(&audit_key)?;
    assert!(stdout(&out).contains(key.fingerprint()));
    let public = medfed_audit::SigningKey::from_file(&signing_key)?.public_key();
    assert!(stdout(&out).contains(&public.to_string()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&audit_key)?.permissions().mode() & 0o777,
            0o600
        );
    }
    // The former spelling --audit-key still works; an existing key file is
    // never overwritten (4, a data error).
    let out = audit(&["keygen", "--audit-key", path(&audit_key)])?;
    assert_eq!(code(&out), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(
        AuditKey::from_file(&audit_key)?.fingerprint(),
        key.fingerprint()
    );
    assert_eq!(code(&audit(&["keygen"])?), Some(2));
    Ok(())
}
