//! Harness for the IAM integration tests: the built helper in a temp HOME (from `support`),
//! pointed at an in-process fake IAM on 127.0.0.1, plus what the assertions need — the exact
//! `get` answer, the token cache files, a request id blanked out of an error line, and a
//! loopback TLS listener whose certificate no client trusts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_iam::FakeIam;
use serde_json::Value;

use crate::support::{run_bounded, Helper, Output};

/// An API key the fake accepts.
pub const API_KEY: &str = "iam-test-apikey-7f3a9c2e5b1d8064aa";
/// An API key the fake does not know.
pub const UNKNOWN_KEY: &str = "iam-test-unknown-key-3c9e1f7a2b6d05";
/// The compute-resource token the fake's trusted profile accepts.
pub const CR_TOKEN: &str = "cr-token-for-tests-51e0b7d2c4a9f386";
pub const PROFILE_ID: &str = "Profile-5e1c0a7b-2d3f-4e6a-9b8c-1f0e2d3c4b5a";
pub const PROFILE_NAME: &str = "ci-puller";

/// No single `get` may take longer than this, whatever IAM does (SPEC section 6).
pub const GET_BOUND: Duration = Duration::from_secs(20);

/// A fake IAM that accepts [`API_KEY`] and the trusted profile, configured further by `f`.
pub fn fake_iam(f: impl FnOnce(fake_iam::Config) -> fake_iam::Config) -> FakeIam {
    FakeIam::start(f(fake_iam::Config::new().apikey(API_KEY).profile_named(PROFILE_ID, PROFILE_NAME, CR_TOKEN)))
}

/// The helper with a temp HOME whose IAM endpoint is `endpoint`.
pub struct Case {
    pub helper: Helper,
}

/// One finished invocation and how long it took.
pub struct Run {
    pub out: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// Fails the test, printing everything, unless the exit status is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status:\n{}", self.out);
        self
    }

    /// Fails unless stdout is exactly `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) -> &Self {
        assert_eq!(self.out.stdout, expected, "unexpected stdout:\n{}", self.out);
        self
    }

    /// Fails unless stderr is empty.
    #[track_caller]
    pub fn assert_quiet(&self) -> &Self {
        assert_eq!(self.out.stderr, "", "unexpected stderr:\n{}", self.out);
        self
    }

    /// Exit 1 with exactly one line on stdout; returns that line without its newline.
    #[track_caller]
    pub fn error_line(&self) -> String {
        self.assert_code(1);
        let line = self.out.stdout.strip_suffix('\n').unwrap_or_else(|| panic!("no final newline:\n{}", self.out));
        assert!(!line.is_empty() && !line.contains('\n'), "not one line:\n{}", self.out);
        line.to_owned()
    }

    /// The answer of a successful `get`, as (username, secret), after checking that stdout is
    /// exactly what the protocol prints for them.
    #[track_caller]
    pub fn answer(&self, server: &str) -> (String, String) {
        self.assert_code(0);
        let json: Value = serde_json::from_str(&self.out.stdout)
            .unwrap_or_else(|e| panic!("get printed no JSON ({e}):\n{}", self.out));
        let username = json["Username"].as_str().unwrap_or_else(|| panic!("no Username:\n{}", self.out)).to_owned();
        let secret = json["Secret"].as_str().unwrap_or_else(|| panic!("no Secret:\n{}", self.out)).to_owned();
        self.assert_stdout(&get_answer(server, &username, &secret));
        (username, secret)
    }
}

impl Case {
    pub fn new(iam: &FakeIam) -> Case {
        Case::with_endpoint(&iam.url())
    }

    pub fn with_endpoint(endpoint: &str) -> Case {
        let mut helper = Helper::new();
        helper.set_env("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", endpoint);
        Case { helper }
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.helper.set_env(key, value.as_ref());
        self
    }

    pub fn home(&self) -> &Path {
        self.helper.home()
    }

    /// The default token cache directory, `$XDG_CACHE_HOME/docker-credential-icr`.
    pub fn default_cache_dir(&self) -> PathBuf {
        self.helper.cache_home().join(Helper::NAME)
    }

    /// Writes a secret file (a key or a compute-resource token) under HOME, 0600.
    pub fn secret_file(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.home().join(name);
        fs::write(&path, contents).expect("write secret file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod secret file");
        path
    }

    pub fn write_config(&self, config: &Value) {
        self.helper.write_config(config);
    }

    /// `docker-credential-icr <action>` with `stdin`, bounded by [`GET_BOUND`] plus slack for a
    /// loaded machine (the tests that care about the bound measure `elapsed`).
    pub fn run(&self, action: &str, stdin: &str) -> Run {
        self.run_args(&[action], stdin)
    }

    pub fn run_args(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = self.helper.command(Helper::NAME);
        command.args(args);
        let started = Instant::now();
        let out = run_bounded(command, Some(stdin), GET_BOUND + Duration::from_secs(40));
        Run { out, elapsed: started.elapsed() }
    }

    pub fn get(&self, server: &str) -> Run {
        self.run("get", &format!("{server}\n"))
    }
}

/// What `get` prints for these credentials (SPEC section 2).
pub fn get_answer(server: &str, username: &str, secret: &str) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("serialize a string");
    format!("{{\"ServerURL\":{},\"Username\":{},\"Secret\":{}}}\n", quote(server), quote(username), quote(secret))
}

/// A form as the fake records it.
pub fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The claims of a JWT the fake issued.
#[track_caller]
pub fn claims(token: &str) -> Value {
    let text = fake_iam::jwt_claims(token).unwrap_or_else(|| panic!("not a JWT: {token:?}"));
    serde_json::from_str(&text).expect("JWT claims are JSON")
}

/// The refresh token the fake issues as its `n`th token (`fake-refresh.<n>.<base64url(n)>`).
pub fn fake_refresh_token(n: u64) -> String {
    format!("fake-refresh.{n}.{}", fake_iam::base64url(&n.to_be_bytes()))
}

/// Replaces the request id in `(request id …)` by `<ID>`, after checking it looks like one
/// (the fake makes a fresh random one for every error body).
#[track_caller]
pub fn blank_request_id(line: &str) -> String {
    const OPEN: &str = "(request id ";
    let start = line.find(OPEN).unwrap_or_else(|| panic!("no request id in {line:?}")) + OPEN.len();
    let len = line[start..].find(')').unwrap_or_else(|| panic!("unclosed request id in {line:?}"));
    let id = &line[start..start + len];
    assert!(
        id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "request id {id:?} in {line:?} is not the fake's"
    );
    format!("{}<ID>{}", &line[..start], &line[start + len..])
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// The token cache files (`*.json`) in `dir`, sorted; empty when `dir` does not exist.
pub fn cache_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect()
}

/// Every file in `dir` (not recursive), sorted; empty when `dir` does not exist.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("read_dir entry").path()).collect();
    files.sort();
    files
}

/// The one token cache file in `dir`.
#[track_caller]
pub fn the_cache_file(dir: &Path) -> PathBuf {
    let files = cache_files(dir);
    assert_eq!(files.len(), 1, "expected one cache file in {}: {files:?}", dir.display());
    files.into_iter().next().expect("one file")
}

#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}

/// Rewrites the token in a cache file the helper wrote, keeping its format and place: the way
/// to put a token of any age there without waiting for it to age.
pub fn rewrite_cached_token(path: &Path, access: &str, issued_at: u64, expires_at: u64) {
    let mut entry = read_json(path);
    assert_eq!(entry["version"], 1, "cache format changed: {entry}");
    assert!(entry["token"].is_object(), "no token in {entry}");
    let token = entry["token"].as_object_mut().expect("token object");
    token.insert("access".into(), access.into());
    token.insert("issued_at".into(), issued_at.into());
    token.insert("expires_at".into(), expires_at.into());
    entry["failure"] = Value::Null;
    fs::write(path, serde_json::to_vec(&entry).expect("serialize")).expect("rewrite cache file");
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A TLS server on 127.0.0.1 with a fresh self-signed certificate: every handshake fails on
/// the client's side, as behind an intercepting proxy. It only handshakes; it never answers.
pub struct UntrustedTls {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handshakes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl UntrustedTls {
    pub fn start() -> UntrustedTls {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, handshakes) = (stop.clone(), handshakes.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        Err(_) => return,
                    };
                    handshakes.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else { continue };
                    // Ends when the client rejects the certificate with an alert.
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut stream).is_err() {
                            break;
                        }
                    }
                }
            })
        };
        UntrustedTls { addr, stop, handshakes, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for UntrustedTls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
