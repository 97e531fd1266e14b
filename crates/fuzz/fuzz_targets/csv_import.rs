//! A hospital's CSV file, imported: must never panic, only refuse with an
//! error naming the file, line and column.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("records.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let options = medfed_vault::ImportOptions {
        required: vec!["y".into()],
        missing_tokens: vec!["?".into(), "NA".into()],
        ..Default::default()
    };
    let _ = medfed_vault::import_csv(&path, &options);
    let _ = medfed_vault::import_csv(&path, &medfed_vault::ImportOptions::default());
});
