//! The `store` request is JSON from the client. Parsing must never panic, and an error line
//! must never carry the secret the request held.
#![no_main]

use docker_credential_icr::protocol::parse_store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_store(text) {
        Ok(request) => {
            assert!(!request.username.is_empty());
            assert!(!request.secret.is_empty());
            assert!(!request.server_url.trim().is_empty());
        }
        Err(error) => {
            let line = error.to_string();
            assert!(!line.contains('\n'), "{line:?}");
            // If the input held a string value for a Secret field, the error must not repeat it.
            if let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text) {
                for (key, value) in object {
                    if let (true, Some(secret)) = (key.eq_ignore_ascii_case("secret"), value.as_str()) {
                        if secret.len() >= 4 {
                            assert!(!line.contains(secret), "{line:?} echoes the secret");
                        }
                    }
                }
            }
        }
    }
});
