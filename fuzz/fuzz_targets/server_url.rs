//! Server-URL parsing sees whatever a client (or an attacker who controls an image reference)
//! puts on stdin. It must never panic, and whatever it accepts as ICR must really be a host of
//! the table: the parsed host, printed and parsed again, names the same registry.
#![no_main]

use docker_credential_icr::registry::parse_server_url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(registry) = parse_server_url(text) else { return };
    if let Some((region, _)) = registry.icr() {
        assert!(region.domains().any(|d| d == registry.host()), "{text:?} → {registry}");
        assert_eq!(registry.port(), None, "{text:?}: ICR with a port");
    }
    let again = parse_server_url(&registry.to_string()).expect("a parsed registry parses again");
    assert_eq!(again, registry, "{text:?}");
});
