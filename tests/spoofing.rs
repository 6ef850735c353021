//! The spoofing corpus (tests/data/spoofed-urls.txt): server URLs an attacker could put in an
//! image reference or a `docker login` to make the helper hand an IBM Cloud key to another host.
//! With every source armed — an API key in the environment, a default key in the config file, a
//! stored login for us.icr.io — each must get exactly the not-found line, nothing on stderr even
//! at debug level that holds a key, and `store` must refuse each without writing anything.

mod common;

use std::fs;
use std::path::Path;

use common::{Output, Scenario, NOT_FOUND};

const ENV_KEY: &str = "env-api-key-that-must-not-leak";
const CONFIG_KEY: &str = "config-default-key-that-must-not-leak";
const STORED_KEY: &str = "stored-login-key-that-must-not-leak";

/// The corpus, with `\u{HEX}` escapes decoded; comment and blank lines dropped.
fn corpus() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/spoofed-urls.txt");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(decode).collect()
}

fn decode(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\\u{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let end = after.find('}').unwrap_or_else(|| panic!("unterminated escape in {line:?}"));
        let code = u32::from_str_radix(&after[..end], 16).unwrap_or_else(|_| panic!("bad escape in {line:?}"));
        out.push(char::from_u32(code).unwrap_or_else(|| panic!("bad code point in {line:?}")));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn run(s: &Scenario, action: &str, input: &str, debug: bool) -> Output {
    let run = s.cmd(&[action]).stdin(input);
    if debug {
        run.env("DOCKER_CREDENTIAL_ICR_LOG", "debug").run()
    } else {
        run.run()
    }
}

fn assert_no_key(what: &str, text: &str) {
    for key in [ENV_KEY, CONFIG_KEY, STORED_KEY] {
        assert!(!text.contains(key), "{what} shows a key: {text:?}");
    }
}

#[test]
fn the_corpus_is_large_enough_and_has_no_duplicates() {
    let urls = corpus();
    assert!(urls.len() >= 100, "only {} URLs", urls.len());
    let mut sorted = urls.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), urls.len(), "duplicate lines in the corpus");
    assert_eq!(decode(r"a\u{0}b\u{1F600}"), "a\u{0}b\u{1F600}");
}

#[test]
fn no_spoofed_server_url_yields_a_secret() {
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", ENV_KEY);
    home.write_config(&format!("{{\"apiKey\":\"{CONFIG_KEY}\"}}\n"));
    let login = format!(r#"{{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"{STORED_KEY}"}}"#);
    run(&home, "store", &login, false).ok("");
    let credentials = home.credentials_path();
    let before = fs::read(&credentials).unwrap();

    // The armed sources do answer for a real ICR host: the corpus is judged against a live setup.
    run(&home, "get", "us.icr.io\n", false).ok(&common::get_answer("us.icr.io", "iamapikey", STORED_KEY));
    run(&home, "get", "de.icr.io\n", false).ok(&common::get_answer("de.icr.io", "iamapikey", ENV_KEY));

    let mut failures = Vec::new();
    for url in corpus() {
        for debug in [false, true] {
            let get = run(&home, "get", &format!("{url}\n"), debug);
            let (stdout, stderr) = (get.stdout(), get.stderr());
            assert_no_key(&format!("get {url:?} stdout"), &stdout);
            assert_no_key(&format!("get {url:?} stderr"), &stderr);
            if stdout != NOT_FOUND || get.code() != Some(1) || (!debug && !stderr.is_empty()) {
                failures.push(format!("get {url:?} (debug: {debug}): {:?} {stdout:?} {stderr:?}", get.code()));
            }
        }
        let store = run(
            &home,
            "store",
            &serde_json::json!({"ServerURL": url, "Username": "iamapikey", "Secret": "spoofed-store"}).to_string(),
            false,
        );
        let stdout = store.stdout();
        if store.code() != Some(1) || stdout.contains("spoofed-store") {
            failures.push(format!("store {url:?}: {:?} {stdout:?}", store.code()));
        }
        let erase = run(&home, "erase", &format!("{url}\n"), false);
        if erase.code() != Some(1) {
            failures.push(format!("erase {url:?}: {:?}", erase.code()));
        }
    }
    assert!(failures.is_empty(), "{} spoofed URLs were answered:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(fs::read(&credentials).unwrap(), before, "a spoofed store or erase changed the stored logins");
}
