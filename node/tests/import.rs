//! `node import` and vault handling through the real binary: clear errors
//! that name the problem without echoing record values, and an existing
//! vault never damaged by a failed import.

use std::path::Path;
use std::process::{Command, Output};

fn node(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_node"))
        .args(args)
        .env_remove("MEDFED_VAULT_KEY")
        .output()
        .expect("run node")
}

fn import(csv: &Path, vault: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "import".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
        "--vault".as_ref(),
        vault.as_os_str(),
        "--key-file".as_ref(),
        key.as_os_str(),
        "--create-key".as_ref(),
    ];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    node(&args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn import_then_a_bad_csv_leaves_the_vault_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, vault, key) = (
        dir.path().join("good.csv"),
        dir.path().join("site.vault"),
        dir.path().join("vault.key"),
    );
    std::fs::write(&csv, "age,chol,target\n63,233,0\n67,,1\n").unwrap();
    let out = import(&csv, &vault, &key, &["--target", "target"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 rows x 3 columns"), "{stdout}");
    let before = std::fs::read(&vault).unwrap();

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "age,chol,target\n63,233,0\n67,Smithson,1\n").unwrap();
    let out = import(&bad, &vault, &key, &["--target", "target"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("chol"), "{err}");
    assert!(!err.contains("Smithson"), "the cell's text leaked: {err}");
    assert_eq!(std::fs::read(&vault).unwrap(), before, "vault changed");
}

#[test]
fn missing_target_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("records.csv");
    std::fs::write(&csv, "age,chol\n63,233\n").unwrap();
    let out = import(
        &csv,
        &dir.path().join("v.vault"),
        &dir.path().join("k.key"),
        &["--target", "outcome"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("outcome"), "{err}");
    assert!(!dir.path().join("v.vault").exists());
}

#[test]
fn wrong_key_and_damaged_vault_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, vault, key) = (
        dir.path().join("r.csv"),
        dir.path().join("r.vault"),
        dir.path().join("right.key"),
    );
    std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
    assert!(import(&csv, &vault, &key, &[]).status.success());

    // Another key: `node run` reads the vault before it connects anywhere.
    let other = dir.path().join("other.key");
    let other_csv = dir.path().join("o.csv");
    std::fs::write(&other_csv, "a\n1\n").unwrap();
    assert!(
        import(&other_csv, &dir.path().join("o.vault"), &other, &[])
            .status
            .success()
    );
    let run = |key: &Path| {
        node(&[
            "run".as_ref(),
            "--coordinator".as_ref(),
            "https://127.0.0.1:9".as_ref(),
            "--ca".as_ref(),
            "missing-ca.pem".as_ref(),
            "--cert".as_ref(),
            "missing.pem".as_ref(),
            "--key".as_ref(),
            "missing.key".as_ref(),
            "--signing-key".as_ref(),
            "missing.sign.key".as_ref(),
            "--vault".as_ref(),
            vault.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
        ])
    };
    let wrong = run(&other);
    assert!(!wrong.status.success());
    let err = stderr(&wrong);
    assert!(err.contains("the key given has fingerprint"), "{err}");
    assert!(!err.contains("Usage"), "{err}");

    // One flipped byte near the end of the vault.
    let mut bytes = std::fs::read(&vault).unwrap();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&vault, &bytes).unwrap();
    let damaged = run(&key);
    assert!(!damaged.status.success());
    let damaged_err = stderr(&damaged);
    assert_ne!(err, damaged_err, "wrong key and damage give the same error");
    assert!(damaged_err.contains("r.vault"), "{damaged_err}");
}

#[test]
fn record_identifiers_are_named_after_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, vault, key) = (
        dir.path().join("records.csv"),
        dir.path().join("site.vault"),
        dir.path().join("vault.key"),
    );
    // `mrn` by its name; `number` by its 30 distinct integers; `age`
    // (repeats) and `crp` (fractional) are ordinary.
    let mut text = String::from("mrn,number,age,crp,target\n");
    for row in 0..30 {
        text.push_str(&format!(
            "{},{},{},{}.5,{}\n",
            7_000_123 + row % 3,
            880_000 + row * 17,
            40 + row % 9,
            row,
            row % 2
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let out = import(&csv, &vault, &key, &["--target", "target"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let flagged: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("looks like a record identifier:"))
        .collect();
    assert_eq!(flagged.len(), 2, "{stdout}");
    assert!(
        flagged[0].starts_with("column `mrn` looks like a record identifier: its name looks like")
            && flagged[0].contains("[policy] not_identifiers"),
        "{stdout}"
    );
    assert!(
        flagged[1].starts_with("column `number` looks like a record identifier: its 30 values")
            && flagged[1].contains("distinct in 30 of 30 rows"),
        "{stdout}"
    );
    for value in ["7000123", "880000", "880017"] {
        assert!(!stdout.contains(value), "a cell value leaked: {stdout}");
    }

    let heart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/heart/cleveland.csv");
    let out = import(
        &heart,
        &dir.path().join("heart.vault"),
        &key,
        &["--target", "target"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "no column looks like a record identifier"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("looks like a record identifier:"),
        "{stdout}"
    );
}
