//! Arbitrary bytes as config.toml: the loader must answer Ok or located problems, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = igmod::config::parse(std::path::Path::new("fuzz.toml"), text) {
            assert!(!e.problems.is_empty());
        }
    }
});
