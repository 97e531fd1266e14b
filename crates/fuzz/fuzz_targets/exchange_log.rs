//! An exchange log of any content, read and verified: must never panic,
//! only report the first bad entry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("exchange.log");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = medfed_audit::read_log(&path);
    let _ = medfed_audit::verify(&path, &medfed_audit::VerifyOptions::default());
});
