//! A vault file of any content, opened with a fixed key: must never panic,
//! only refuse (wrong key, damaged, truncated).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The key the seed vault (`seeds/vault_file/`) was made with.
const KEY: &str = "zoNlz2SaYUmuTiZcqKBR53nrgZo4jltrNrGRaVWTD88=";

fuzz_target!(|data: &[u8]| {
    let key = medfed_vault::VaultKey::from_base64(KEY).expect("the seed key is valid");
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("site.vault");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = medfed_vault::read_vault(&path, &key);
});
