//! What the IAM tests share: a fake IAM on 127.0.0.1 that knows a key and a trusted profile,
//! what the assertions need of its tokens and error lines, the token cache files, and a loopback
//! TLS listener whose certificate no client trusts.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fake_iam::FakeIam;
use serde_json::Value;

/// An API key the fake accepts.
pub const API_KEY: &str = "iam-test-apikey-7f3a9c2e5b1d8064aa";
/// An API key the fake does not know.
pub const UNKNOWN_KEY: &str = "iam-test-unknown-key-3c9e1f7a2b6d05";
/// The compute resource the fake's trusted profile trusts: a Kubernetes service account.
pub const CR_SUBJECT: &str = "system:serviceaccount:ci:puller";
/// A compute-resource token of [`CR_SUBJECT`], signed by the fake cluster, good for an hour
/// (the same one for the whole test process).
pub fn cr_token() -> &'static str {
    static TOKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        fake_iam::cr_token_for(CR_SUBJECT, now + 3600)
    });
    &TOKEN
}
pub const PROFILE_ID: &str = "Profile-5e1c0a7b-2d3f-4e6a-9b8c-1f0e2d3c4b5a";
pub const PROFILE_NAME: &str = "ci-puller";

/// No single `get` may take longer than this, whatever IAM does (SPEC section 6).
pub const GET_BOUND: Duration = Duration::from_secs(20);

/// A fake IAM that accepts [`API_KEY`] and the trusted profile, configured further by `f`.
pub fn fake_iam(f: impl FnOnce(fake_iam::Config) -> fake_iam::Config) -> FakeIam {
    FakeIam::start(f(fake_iam::Config::new().apikey(API_KEY).profile_named(PROFILE_ID, PROFILE_NAME, CR_SUBJECT)))
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
        id.len() == 40 && id.starts_with("fakeIAM-") && id[8..].chars().all(|c| c.is_ascii_hexdigit()),
        "request id {id:?} in {line:?} is not the fake's"
    );
    format!("{}<ID>{}", &line[..start], &line[start + len..])
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
