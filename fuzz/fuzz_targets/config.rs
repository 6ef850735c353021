//! The config file is written by hand; a typo must give an error line, never a panic.
#![no_main]

use docker_credential_icr::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(error) = Config::parse(std::path::Path::new("/fuzz/config.json"), text) {
        assert!(!error.to_string().contains('\n'));
    }
});
