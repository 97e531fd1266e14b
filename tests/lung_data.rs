//! The bundled lung-cancer data (`data/lung`) imports as its README says:
//! one file per institution, the row counts of its table, and `time` the
//! only column `node import` flags as a record identifier, at the three
//! institutions with 20 patients or more.

use std::process::Command;

use medfed::{bin, lung_csv, lung_sites};

/// Patients per institution, as in `data/lung/README.md`.
const ROWS: [(&str, usize); 18] = [
    ("inst01", 36),
    ("inst02", 5),
    ("inst03", 19),
    ("inst04", 4),
    ("inst05", 9),
    ("inst06", 14),
    ("inst07", 8),
    ("inst10", 4),
    ("inst11", 18),
    ("inst12", 23),
    ("inst13", 20),
    ("inst15", 6),
    ("inst16", 16),
    ("inst21", 13),
    ("inst22", 17),
    ("inst26", 6),
    ("inst32", 7),
    ("inst33", 2),
];

#[test]
fn every_institution_imports_with_the_documented_rows_and_flags() {
    let sites = lung_sites();
    let expected: Vec<&str> = ROWS.iter().map(|(site, _)| *site).collect();
    assert_eq!(sites, expected);
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("vault.key");
    for (site, rows) in ROWS {
        let out = Command::new(bin("node"))
            .arg("import")
            .arg("--csv")
            .arg(lung_csv(site))
            .arg("--vault")
            .arg(dir.path().join(format!("{site}.vault")))
            .arg("--vault-key-file")
            .arg(&key)
            .args(["--create-key", "--target", "status"])
            .env_remove("MEDFED_VAULT_KEY")
            .output()
            .expect("run node import");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{site}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("imported {rows} rows x 9 columns")),
            "{site}: {stdout}"
        );
        let flagged: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("looks like a record identifier:"))
            .collect();
        if ["inst01", "inst12", "inst13"].contains(&site) {
            assert_eq!(flagged.len(), 1, "{site}: {stdout}");
            assert!(
                flagged[0].starts_with("column `time` looks like a record identifier: its "),
                "{site}: {stdout}"
            );
        } else {
            assert!(flagged.is_empty(), "{site}: {stdout}");
            assert!(
                stdout.contains("no column looks like a record identifier"),
                "{site}: {stdout}"
            );
        }
    }
}
