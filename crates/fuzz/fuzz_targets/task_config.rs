//! A task file of any content, parsed and checked: must never panic, only
//! refuse naming the key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medfed_coordinator::config::TaskConfig::parse(text, "task.toml");
    }
});
