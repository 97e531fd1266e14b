//! The identifier flags on the repository's bundled data, imported the way
//! `node import` imports a file (every column, an empty field missing).

use std::path::PathBuf;

use medfed_vault::{ImportOptions, flag_identifiers, import_csv};

/// The CSV files of `data/<set>`, sorted.
fn csv_files(set: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(set);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    files.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    files
}

#[test]
fn no_heart_column_looks_like_an_identifier() {
    let files = csv_files("heart");
    assert_eq!(files.len(), 4, "{files:?}");
    for file in files {
        let table = import_csv(&file, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let flags = flag_identifiers(&table);
        assert!(flags.is_empty(), "{}: {flags:?}", file.display());
    }
}
