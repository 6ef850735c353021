//! The spoofing corpus (tests/data/spoofed-urls.txt): server URLs an attacker could put in an
//! image reference or a `docker login` to make the helper hand an IBM Cloud key to another host.
//! With every source armed — an API key in the environment, a default key in the config file, a
//! stored login for us.icr.io — each must get exactly the not-found line, nothing on stderr even
//! at debug level that holds a key, and `store` must refuse each without writing anything.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_docker-credential-icr");
const ENV_KEY: &str = "env-api-key-that-must-not-leak";
const CONFIG_KEY: &str = "config-default-key-that-must-not-leak";
const STORED_KEY: &str = "stored-login-key-that-must-not-leak";
const NOT_FOUND: &str = "credentials not found in native keychain\n";

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

fn run(home: &Path, action: &str, input: &str, debug: bool) -> Output {
    let mut command = Command::new(BINARY);
    command
        .arg(action)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .env("IBMCLOUD_API_KEY", ENV_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if debug {
        command.env("DOCKER_CREDENTIAL_ICR_LOG", "debug");
    }
    let mut child = command.spawn().expect("spawn the helper");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
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
    let home = tempfile::tempdir().unwrap();
    let config_dir = home.path().join(".config/docker-credential-icr");
    fs::create_dir_all(&config_dir).unwrap();
    fs::write(config_dir.join("config.json"), format!("{{\"apiKey\":\"{CONFIG_KEY}\"}}\n")).unwrap();
    let login = format!(r#"{{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"{STORED_KEY}"}}"#);
    let stored = run(home.path(), "store", &login, false);
    assert!(stored.status.success(), "{stored:?}");
    let credentials = config_dir.join("credentials.json");
    let before = fs::read(&credentials).unwrap();

    // The armed sources do answer for a real ICR host: the corpus is judged against a live setup.
    let real = run(home.path(), "get", "us.icr.io\n", false);
    assert_eq!(
        String::from_utf8_lossy(&real.stdout),
        format!("{{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"{STORED_KEY}\"}}\n")
    );
    let real = run(home.path(), "get", "de.icr.io\n", false);
    assert!(String::from_utf8_lossy(&real.stdout).contains(ENV_KEY), "{real:?}");

    let mut failures = Vec::new();
    for url in corpus() {
        for debug in [false, true] {
            let get = run(home.path(), "get", &format!("{url}\n"), debug);
            let (stdout, stderr) = (String::from_utf8_lossy(&get.stdout), String::from_utf8_lossy(&get.stderr));
            assert_no_key(&format!("get {url:?} stdout"), &stdout);
            assert_no_key(&format!("get {url:?} stderr"), &stderr);
            if stdout != NOT_FOUND || get.status.code() != Some(1) || (!debug && !stderr.is_empty()) {
                failures.push(format!("get {url:?} (debug: {debug}): {} {stdout:?} {stderr:?}", get.status));
            }
        }
        let store = run(
            home.path(),
            "store",
            &serde_json::json!({"ServerURL": url, "Username": "iamapikey", "Secret": "spoofed-store"}).to_string(),
            false,
        );
        let stdout = String::from_utf8_lossy(&store.stdout);
        if store.status.code() != Some(1) || stdout.contains("spoofed-store") {
            failures.push(format!("store {url:?}: {} {stdout:?}", store.status));
        }
        let erase = run(home.path(), "erase", &format!("{url}\n"), false);
        if erase.status.code() != Some(1) {
            failures.push(format!("erase {url:?}: {}", erase.status));
        }
    }
    assert!(failures.is_empty(), "{} spoofed URLs were answered:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(fs::read(&credentials).unwrap(), before, "a spoofed store or erase changed the stored logins");
}
