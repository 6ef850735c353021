//! Stand-ins for IBM Cloud IAM's token endpoint (`POST /identity/token`) and the VPC instance
//! metadata service's identity operations ([`FakeMetadata`]), for tests and benchmarks.
//!
//! Each server binds `127.0.0.1:<port>` only, speaks a small hand-written HTTP/1.1 (keep-alive
//! and `Connection: close`, `Content-Length` and chunked request bodies), and is as strict as
//! the service it stands for is documented to be (see `iam.rs` and `metadata.rs` for what each
//! refuses). IAM answers the `apikey`, `cr-token` and `refresh_token` grants; the tokens it
//! issues can be checked with [`FakeIam::validate`], the way a registry's token service would
//! check what a client presents. A script of [`Behavior`]s lets a test inject failures (HTTP
//! errors, 429 with `Retry-After`, truncated or malformed bodies, stalls, delays), one per
//! request.
//!
//! ```no_run
//! use fake_iam::{Behavior, Config, FakeIam};
//!
//! let iam = FakeIam::start(
//!     Config::new()
//!         .apikey("my-key")
//!         .lifetime(600)
//!         .behavior(Behavior::Status(503)),
//! );
//! let token_url = format!("{}/identity/token", iam.url());
//! // ... point the client at `token_url`; the first request gets a 503,
//! // the second a token.
//! assert!(iam.request_count() <= 2);
//! ```

mod iam;
mod metadata;
mod tokens;

pub use iam::error_body;
pub use metadata::{FakeMetadata, MetadataConfig, METADATA_VERSION_MIN};
pub use tokens::{apikey_subject, compute_resource_token, cr_token_for, jwt_claims, CLUSTER_ISSUER, CR_TOKEN_AUDIENCE};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Grant type for exchanging an API key.
pub const GRANT_APIKEY: &str = "urn:ibm:params:oauth:grant-type:apikey";
/// Grant type for exchanging a compute-resource token for a trusted profile.
pub const GRANT_CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
/// Grant type for refreshing a token (needs the `bx:bx` client).
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// The `Authorization` value of the `bx` / `bx` client.
pub const BX_BASIC_AUTH: &str = "Basic Yng6Yng=";
/// The token endpoint path.
pub const TOKEN_PATH: &str = "/identity/token";
/// `refresh_token` value returned when the request is not from the `bx` client.
pub const REFRESH_NOT_SUPPORTED: &str = "not_supported";
/// `ims_user_id` in every success body.
pub const IMS_USER_ID: u64 = 118;
/// Default token lifetime (`expires_in`), in seconds.
pub const DEFAULT_LIFETIME: u64 = 3600;
/// Default refresh token lifetime: 30 days.
pub const DEFAULT_REFRESH_LIFETIME: u64 = 30 * 24 * 3600;
/// The account every identity of the fake belongs to.
pub const ACCOUNT: &str = "0000fake0000";
/// Default socket read timeout.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(3);

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One scripted behaviour, consumed by one request (any method or path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Answer normally (useful to space out other behaviours).
    Normal,
    /// This HTTP status with an IAM-shaped error body.
    Status(u16),
    /// 429 with an IAM-shaped error body, and `Retry-After: <value>`
    /// (verbatim: seconds or an HTTP date) when `Some`.
    TooManyRequests { retry_after: Option<String> },
    /// This status with `{"errorCode":code,"errorMessage":message,...}`.
    IamError { status: u16, code: String, message: String },
    /// 200 whose `Content-Length` is larger than the bytes sent, then close.
    TruncatedBody,
    /// 200 with `Content-Type: application/json` and a body that is not JSON.
    MalformedBody,
    /// 200 with `Content-Type: application/json` and exactly this body: an IAM (or something
    /// posing as one) that answers with values no client should trust as they are.
    Answer(String),
    /// Read the request, send nothing for this long, then close.
    Stall(Duration),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// This status with exactly this body (`application/json`): an error shape other than
    /// IAM's own, as a gateway in front of it, or another IBM service, may answer.
    Raw { status: u16, body: String },
}

impl Behavior {
    /// An [`Behavior::IamError`] from borrowed strings.
    pub fn iam_error(status: u16, code: &str, message: &str) -> Self {
        Behavior::IamError { status, code: code.to_string(), message: message.to_string() }
    }

    /// A 429 with `Retry-After: <value>`.
    pub fn retry_after(value: impl Into<String>) -> Self {
        Behavior::TooManyRequests { retry_after: Some(value.into()) }
    }
}

/// A trusted profile: its id (`Profile-…`), name and CRN, and the compute resources it trusts,
/// by the subject of their tokens (`system:serviceaccount:<namespace>:<name>` for a
/// Kubernetes service account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub crn: String,
    pub trusts: Vec<String>,
}

impl Profile {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Profile {
        let id = id.into();
        Profile { crn: profile_crn(&id), id, name: name.into(), trusts: Vec::new() }
    }
}

/// The CRN of the fake's profile `id`.
pub fn profile_crn(id: &str) -> String {
    format!("crn:v1:bluemix:public:iam-identity::a/{ACCOUNT}::profile:{id}")
}

/// Server configuration (a builder). Everything except the port, the read
/// timeout and the log file can also be changed while running, through
/// [`FakeIam`].
#[derive(Clone, Debug)]
pub struct Config {
    port: u16,
    api_keys: BTreeSet<String>,
    any_apikey: bool,
    profiles: Vec<Profile>,
    lifetime: u64,
    refresh_lifetime: u64,
    script: Vec<Behavior>,
    read_timeout: Duration,
    log_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            api_keys: BTreeSet::new(),
            any_apikey: false,
            profiles: Vec::new(),
            lifetime: DEFAULT_LIFETIME,
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
            script: Vec::new(),
            read_timeout: DEFAULT_READ_TIMEOUT,
            log_file: None,
        }
    }
}

impl Config {
    /// No valid keys or profiles, lifetime 3600 s, empty script, port 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Port to bind on 127.0.0.1 (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Accept this API key.
    pub fn apikey(mut self, key: impl Into<String>) -> Self {
        self.api_keys.insert(key.into());
        self
    }

    /// Accept all these API keys.
    pub fn apikeys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.api_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Accept any non-empty API key.
    pub fn any_apikey(mut self, any: bool) -> Self {
        self.any_apikey = any;
        self
    }

    /// A trusted profile `id` (named `<id>-name`) that trusts compute resources whose token's
    /// subject is `subject`; naming the same id again adds a subject.
    pub fn profile(self, id: impl Into<String>, subject: impl Into<String>) -> Self {
        let id = id.into();
        let name = format!("{id}-name");
        self.profile_named(id, name, subject)
    }

    /// A trusted profile with this id and name that trusts `subject`.
    pub fn profile_named(mut self, id: impl Into<String>, name: impl Into<String>, subject: impl Into<String>) -> Self {
        add_profile(&mut self.profiles, id.into(), name.into(), subject.into());
        self
    }

    /// Token lifetime in seconds (`expires_in`; `expiration = now + lifetime`).
    pub fn lifetime(mut self, secs: u64) -> Self {
        self.lifetime = secs;
        self
    }

    /// How long a refresh token it issues stays good, in seconds.
    pub fn refresh_lifetime(mut self, secs: u64) -> Self {
        self.refresh_lifetime = secs;
        self
    }

    /// Append one behaviour to the script.
    pub fn behavior(mut self, b: Behavior) -> Self {
        self.script.push(b);
        self
    }

    /// Append these behaviours to the script.
    pub fn script(mut self, script: impl IntoIterator<Item = Behavior>) -> Self {
        self.script.extend(script);
        self
    }

    /// Read timeout on accepted sockets (also bounds how long an idle
    /// keep-alive connection thread lives). Default 3 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Append one JSON line per request to this file.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }
}

/// What the server saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// 1-based arrival order.
    pub seq: u64,
    pub method: String,
    /// The request target without the query string.
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub authorization: Option<String>,
    /// All headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Decoded form fields (empty if the body is not a valid form).
    pub form: BTreeMap<String, String>,
    /// The raw body.
    pub body: String,
    /// The scripted behaviour this request consumed, if any.
    pub behavior: Option<Behavior>,
    /// The status sent (`None` while in flight, or when nothing was sent).
    pub status: Option<u16>,
}

impl RequestRecord {
    /// A form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

fn add_profile(profiles: &mut Vec<Profile>, id: String, name: String, subject: String) {
    match profiles.iter_mut().find(|p| p.id == id) {
        Some(p) => p.trusts.push(subject),
        None => {
            let mut profile = Profile::new(id, name);
            profile.trusts.push(subject);
            profiles.push(profile);
        }
    }
}

struct State {
    api_keys: BTreeSet<String>,
    any_apikey: bool,
    profiles: Vec<Profile>,
    lifetime: u64,
    refresh_lifetime: u64,
    script: VecDeque<Behavior>,
    requests: Vec<RequestRecord>,
    /// Every access token issued, with whom it speaks for and when it expires.
    access_tokens: HashMap<String, (iam::Identity, u64)>,
    refresh_tokens: HashMap<String, iam::Refresh>,
    ended_sessions: HashSet<u64>,
}

/// What a server answers: IAM's token operation, or the metadata service's identity
/// operations (which mint their IAM tokens at the IAM it stands beside).
enum Kind {
    Iam,
    Metadata { iam: Arc<Shared>, instance: Mutex<metadata::Instance> },
}

struct Shared {
    kind: Kind,
    state: Mutex<State>,
    shutdown: AtomicBool,
    request_seq: AtomicU64,
    token_seq: AtomicU64,
    read_timeout: Duration,
    log_file: Option<PathBuf>,
    log_lock: Mutex<()>,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleep for `d`, waking early on shutdown.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= end || self.stopping() {
                return;
            }
            thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}

/// A running fake IAM server. Dropping it stops it.
pub struct FakeIam {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakeIam {
    /// Start on `127.0.0.1:<config port>`. Panics if it cannot bind.
    pub fn start(config: Config) -> FakeIam {
        Self::try_start(config).expect("fake-iam: cannot bind 127.0.0.1")
    }

    /// Start on `127.0.0.1:<config port>`.
    pub fn try_start(config: Config) -> io::Result<FakeIam> {
        FakeIam::serve(config, Kind::Iam)
    }

    fn serve(config: Config, kind: Kind) -> io::Result<FakeIam> {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, config.port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            kind,
            state: Mutex::new(State {
                api_keys: config.api_keys,
                any_apikey: config.any_apikey,
                profiles: config.profiles,
                lifetime: config.lifetime,
                refresh_lifetime: config.refresh_lifetime,
                script: config.script.into(),
                requests: Vec::new(),
                access_tokens: HashMap::new(),
                refresh_tokens: HashMap::new(),
                ended_sessions: HashSet::new(),
            }),
            shutdown: AtomicBool::new(false),
            request_seq: AtomicU64::new(0),
            token_seq: AtomicU64::new(0),
            read_timeout: config.read_timeout,
            log_file: config.log_file,
            log_lock: Mutex::new(()),
            conns: Mutex::new(HashMap::new()),
        });
        let workers = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let shared = shared.clone();
            let workers = workers.clone();
            thread::Builder::new()
                .name("fake-iam-accept".into())
                .spawn(move || accept_loop(listener, shared, workers))?
        };
        Ok(FakeIam { addr, shared, acceptor: Some(acceptor), workers })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/identity/token`
    pub fn token_url(&self) -> String {
        format!("http://{}{}", self.addr, TOKEN_PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Change the lifetime of tokens issued from now on.
    pub fn set_lifetime(&self, secs: u64) {
        self.shared.state().lifetime = secs;
    }

    pub fn lifetime(&self) -> u64 {
        self.shared.state().lifetime
    }

    /// Accept one more API key.
    pub fn add_apikey(&self, key: impl Into<String>) {
        self.shared.state().api_keys.insert(key.into());
    }

    /// Stop accepting an API key.
    pub fn remove_apikey(&self, key: &str) {
        self.shared.state().api_keys.remove(key);
    }

    pub fn set_any_apikey(&self, any: bool) {
        self.shared.state().any_apikey = any;
    }

    /// See [`Config::profile`].
    pub fn add_profile(&self, id: impl Into<String>, subject: impl Into<String>) {
        let id = id.into();
        let name = format!("{id}-name");
        add_profile(&mut self.shared.state().profiles, id, name, subject.into());
    }

    /// The trusted profiles.
    pub fn profiles(&self) -> Vec<Profile> {
        self.shared.state().profiles.clone()
    }

    /// Ends every login session so far: their refresh tokens are refused with `BXNIM0439E`.
    pub fn end_sessions(&self) {
        let mut st = self.shared.state();
        let sessions: Vec<u64> = st.refresh_tokens.values().map(|r| r.session).collect();
        st.ended_sessions.extend(sessions);
    }

    /// Makes every refresh token issued so far expired (`BXNIM0408E` from now on).
    pub fn expire_refresh_tokens(&self) {
        for refresh in self.shared.state().refresh_tokens.values_mut() {
            refresh.expires_at = 0;
        }
    }

    /// Whether a registry's token service should accept this username and secret as ICR does:
    /// `iamapikey` with an API key this IAM knows, `iambearer` with an access token it issued
    /// that has not expired, `iamrefresh` with a refresh token it issued that is still good.
    /// `Ok` names whom the secret speaks for; `Err` says why not.
    pub fn validate(&self, username: &str, secret: &str) -> Result<String, String> {
        let st = self.shared.state();
        let now = unix_now();
        match username {
            "iamapikey" if st.any_apikey || st.api_keys.contains(secret) => Ok(apikey_subject(secret)),
            "iamapikey" => Err("an API key IAM does not know".into()),
            "iambearer" => match st.access_tokens.get(secret) {
                Some((identity, exp)) if *exp > now => Ok(format!("{identity:?}")),
                Some(_) => Err("an access token that has expired".into()),
                None => Err("an access token IAM did not issue".into()),
            },
            "iamrefresh" => match st.refresh_tokens.get(secret) {
                Some(r) if st.ended_sessions.contains(&r.session) => Err("a refresh token of an ended session".into()),
                Some(r) if r.expires_at > now => Ok(format!("{:?}", r.identity)),
                Some(_) => Err("a refresh token that has expired".into()),
                None => Err("a refresh token IAM did not issue".into()),
            },
            other => Err(format!("username {other:?}, which names no IAM credential")),
        }
    }

    /// Append one behaviour to the script.
    pub fn push_behavior(&self, b: Behavior) {
        self.shared.state().script.push_back(b);
    }

    /// Append behaviours to the script.
    pub fn extend_script(&self, script: impl IntoIterator<Item = Behavior>) {
        self.shared.state().script.extend(script);
    }

    /// Replace the script.
    pub fn set_script(&self, script: impl IntoIterator<Item = Behavior>) {
        self.shared.state().script = script.into_iter().collect();
    }

    /// Behaviours not consumed yet.
    pub fn remaining_script(&self) -> Vec<Behavior> {
        self.shared.state().script.iter().cloned().collect()
    }

    /// Requests received since start (not reset by [`FakeIam::clear_requests`]).
    pub fn request_count(&self) -> u64 {
        self.shared.request_seq.load(Ordering::SeqCst)
    }

    /// Tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.token_seq.load(Ordering::SeqCst)
    }

    /// The request log.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    pub fn last_request(&self) -> Option<RequestRecord> {
        self.shared.state().requests.last().cloned()
    }

    /// Take and clear the request log.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut self.shared.state().requests)
    }

    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// Wait until at least `n` requests arrived, up to `timeout`.
    pub fn wait_for_requests(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.request_count() < n {
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stop now (same as dropping).
    pub fn stop(self) {}
}

impl Drop for FakeIam {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        // Unblock connection threads waiting on reads.
        for s in self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let handles = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, workers: Arc<Mutex<Vec<JoinHandle<()>>>>) {
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                if shared.stopping() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.stopping() {
            return;
        }
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            shared.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id, clone);
        }
        let sh = shared.clone();
        let spawned = thread::Builder::new().name("fake-iam-conn".into()).spawn(move || {
            serve_connection(stream, &sh);
            sh.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        let mut w = workers.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|h| !h.is_finished());
        match spawned {
            Ok(h) => w.push(h),
            Err(_) => {
                shared.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP

struct Request {
    method: String,
    target: String,
    keep_alive: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

enum ReadError {
    /// Clean EOF / timeout / reset between requests: just close.
    Closed,
    /// Garbage: answer 400 (or 413) and close.
    Bad(u16, &'static str),
}

fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut buf = Vec::new();
    let n = r.take(*budget as u64 + 1).read_until(b'\n', &mut buf).map_err(|_| ReadError::Closed)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(ReadError::Bad(431, "Request header too large"));
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        // EOF in the middle of a line.
        return Err(ReadError::Closed);
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map(Some).map_err(|_| ReadError::Bad(400, "Request head is not UTF-8"))
}

fn read_request(r: &mut impl BufRead) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD;
    // Skip stray empty lines before the request line (RFC 9112 2.2).
    let line = loop {
        match read_line(r, &mut budget)? {
            None => return Err(ReadError::Closed),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(ReadError::Bad(400, "Malformed request line")),
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(400, "Unsupported HTTP version")),
    };
    let mut headers = Vec::new();
    loop {
        let line = match read_line(r, &mut budget)? {
            None => return Err(ReadError::Closed),
            Some(l) => l,
        };
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "Malformed header line"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let conn = headers
        .iter()
        .filter(|(k, _)| k == "connection")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let keep_alive = if http10 { conn.iter().any(|t| t == "keep-alive") } else { !conn.iter().any(|t| t == "close") };
    let te = headers.iter().find(|(k, _)| k == "transfer-encoding").map(|(_, v)| v.to_ascii_lowercase());
    let body = if let Some(te) = te {
        if te.trim() != "chunked" {
            return Err(ReadError::Bad(501, "Unsupported Transfer-Encoding"));
        }
        read_chunked(r)?
    } else if let Some((_, cl)) = headers.iter().find(|(k, _)| k == "content-length") {
        let len: usize = cl.parse().map_err(|_| ReadError::Bad(400, "Invalid Content-Length"))?;
        if len > MAX_BODY {
            return Err(ReadError::Bad(413, "Request body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).map_err(|_| ReadError::Closed)?;
        body
    } else {
        Vec::new()
    };
    Ok(Request { method: method.to_string(), target: target.to_string(), keep_alive, headers, body })
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let line = read_line(r, &mut budget)?.ok_or(ReadError::Closed)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "Invalid chunk size"))?;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                match read_line(r, &mut budget)? {
                    None => return Err(ReadError::Closed),
                    Some(l) if l.is_empty() => return Ok(body),
                    Some(_) => {}
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413, "Request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).map_err(|_| ReadError::Closed)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|_| ReadError::Closed)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Bad(400, "Malformed chunk"));
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Declared Content-Length if different from the body length.
    declared_len: Option<usize>,
    close: bool,
}

impl Response {
    fn json(status: u16, body: String) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body: body.into_bytes(),
            declared_len: None,
            close: false,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::error_with(status, code, message, None)
    }

    fn error_with(status: u16, code: &str, message: &str, details: Option<&str>) -> Self {
        Self::json(status, error_body(code, message, details))
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(w: &mut impl Write, resp: &Response) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", resp.declared_len.unwrap_or(resp.body.len())));
    out.push_str("Cache-Control: no-store\r\nPragma: no-cache\r\n");
    out.push_str(if resp.close { "Connection: close\r\n\r\n" } else { "Connection: keep-alive\r\n\r\n" });
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp.body);
    w.write_all(&bytes)?;
    w.flush()
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(shared.read_timeout));
    let _ = stream.set_write_timeout(Some(shared.read_timeout));
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while !shared.stopping() {
        let req = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => break,
            Err(ReadError::Bad(status, msg)) => {
                let mut resp = Response::error(status, "BXNIM0100E", msg);
                resp.close = true;
                let _ = write_response(reader.get_mut(), &resp);
                break;
            }
        };
        if shared.stopping() {
            break;
        }
        let (seq, idx, behavior) = record(shared, &req);
        let mut resp = match &behavior {
            Some(Behavior::Stall(d)) => {
                shared.sleep(*d);
                log_line(shared, seq, idx, None);
                break;
            }
            Some(Behavior::Delay(d)) => {
                shared.sleep(*d);
                handle(shared, &req)
            }
            Some(b) => scripted(shared, b),
            None => handle(shared, &req),
        };
        if !req.keep_alive {
            resp.close = true;
        }
        resp.headers.push(("Transaction-Id", format!("fake-iam-{seq}")));
        set_status(shared, idx, resp.status);
        log_line(shared, seq, idx, Some(resp.status));
        if write_response(reader.get_mut(), &resp).is_err() || resp.close {
            break;
        }
    }
    let s = reader.get_mut();
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
}

fn record(shared: &Shared, req: &Request) -> (u64, usize, Option<Behavior>) {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (req.target.clone(), None),
    };
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let form = decode_form(&body).unwrap_or_default();
    let mut st = shared.state();
    let seq = shared.request_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let behavior = st.script.pop_front();
    let rec = RequestRecord {
        seq,
        method: req.method.clone(),
        path,
        query,
        content_type: req.header("content-type").map(str::to_string),
        accept: req.header("accept").map(str::to_string),
        authorization: req.header("authorization").map(str::to_string),
        headers: req.headers.clone(),
        form,
        body,
        behavior: behavior.clone(),
        status: None,
    };
    st.requests.push(rec);
    let idx = st.requests.len() - 1;
    let behavior = match behavior {
        Some(Behavior::Normal) => None,
        b => b,
    };
    (seq, idx, behavior)
}

fn set_status(shared: &Shared, idx: usize, status: u16) {
    let mut st = shared.state();
    // The log may have been cleared meanwhile; ignore then.
    if let Some(r) = st.requests.get_mut(idx) {
        if r.status.is_none() {
            r.status = Some(status);
        }
    }
}

fn log_line(shared: &Shared, seq: u64, idx: usize, status: Option<u16>) {
    let Some(path) = &shared.log_file else {
        return;
    };
    let rec = {
        let st = shared.state();
        match st.requests.get(idx) {
            Some(r) if r.seq == seq => r.clone(),
            _ => return,
        }
    };
    let form = rec.form.iter().map(|(k, v)| format!("{}:{}", json_str(k), json_str(v))).collect::<Vec<_>>().join(",");
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_str);
    let line = format!(
        "{{\"seq\":{},\"time\":{},\"method\":{},\"path\":{},\"content_type\":{},\"accept\":{},\"authorization\":{},\"form\":{{{}}},\"behavior\":{},\"status\":{}}}\n",
        seq,
        unix_now(),
        json_str(&rec.method),
        json_str(&rec.path),
        opt(&rec.content_type),
        opt(&rec.accept),
        opt(&rec.authorization),
        form,
        opt(&rec.behavior.as_ref().map(|b| format!("{b:?}"))),
        status.map_or("null".to_string(), |s| s.to_string()),
    );
    let _g = shared.log_lock.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Answers

fn handle(shared: &Shared, req: &Request) -> Response {
    match &shared.kind {
        Kind::Iam => iam::handle(shared, req),
        Kind::Metadata { iam, instance } => metadata::handle(iam, instance, req),
    }
}

fn scripted(shared: &Shared, b: &Behavior) -> Response {
    let error = |status: u16, code: &str, message: &str| match shared.kind {
        Kind::Iam => Response::error(status, code, message),
        Kind::Metadata { .. } => metadata::error(status, "internal_error", message),
    };
    match b {
        Behavior::Status(s) => {
            // 400 and 401 with IAM's codes of that meaning; the rest are the fake's own codes
            // (IAM publishes none for these statuses), each used for nothing else.
            let (code, msg) = match s {
                400 => ("BXNIM0109E", "Property missing or empty."),
                401 => ("BXNIM0308E", "No authorization header found"),
                403 => ("BXNIM0513E", "Forbidden"),
                404 => ("BXNIM0101E", "Not found"),
                429 => ("BXNIM0436E", "Too many requests"),
                500 => ("BXNIM0100E", "Internal server error"),
                501 => ("BXNIM0105E", "Not implemented"),
                502 => ("BXNIM0106E", "Bad gateway"),
                503 => ("BXNIM0103E", "Service temporarily unavailable"),
                504 => ("BXNIM0107E", "Gateway timeout"),
                _ => ("BXNIM0100E", "Unexpected error"),
            };
            error(*s, code, msg)
        }
        Behavior::TooManyRequests { retry_after } => {
            let mut r = error(429, "BXNIM0436E", "Too many requests");
            if let Some(v) = retry_after {
                r.headers.push(("Retry-After", v.clone()));
            }
            r
        }
        Behavior::IamError { status, code, message } => Response::error(*status, code, message),
        Behavior::Raw { status, body } => Response::json(*status, body.clone()),
        Behavior::TruncatedBody => {
            let full = format!(
                "{{\"access_token\":\"{}\",\"refresh_token\":\"not_supported\",\"ims_user_id\":{IMS_USER_ID},",
                "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
            );
            let mut r = Response::json(200, full);
            r.declared_len = Some(r.body.len() + 200);
            r.close = true;
            r
        }
        Behavior::MalformedBody => Response::json(200, "<html><body>upstream said hello</body></html>".into()),
        Behavior::Answer(body) => Response::json(200, body.clone()),
        // Handled by the caller.
        Behavior::Normal | Behavior::Stall(_) | Behavior::Delay(_) => error(500, "BXNIM0100E", "Internal server error"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------
// Script syntax (used by the binary's --script)

/// Parse a comma-separated script:
///
/// * `ok` / `normal` — answer normally
/// * `NNN` — [`Behavior::Status`] (`429` alone: 429 without `Retry-After`)
/// * `429:VALUE` — 429 with `Retry-After: VALUE` (an HTTP date such as
///   `429:Wed, 21 Oct 2015 07:28:00 GMT` is accepted despite its comma)
/// * `NNN:CODE:MESSAGE` — [`Behavior::IamError`]
/// * `truncated`, `malformed`
/// * `stall:DUR`, `delay:DUR` — DUR in seconds (`1.5`, `2s`) or `300ms`
pub fn parse_script(s: &str) -> Result<Vec<Behavior>, String> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let items: Vec<&str> = s.split(',').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let item = items[i].trim();
        i += 1;
        if item.is_empty() {
            continue;
        }
        let lower = item.to_ascii_lowercase();
        let (head, rest) = match item.split_once(':') {
            Some((h, r)) => (h.trim().to_ascii_lowercase(), Some(r.trim())),
            None => (lower.clone(), None),
        };
        let b = match (head.as_str(), rest) {
            ("ok" | "normal", None) => Behavior::Normal,
            ("truncated", None) => Behavior::TruncatedBody,
            ("malformed", None) => Behavior::MalformedBody,
            ("stall", Some(d)) => Behavior::Stall(parse_duration(d)?),
            ("delay", Some(d)) => Behavior::Delay(parse_duration(d)?),
            ("429", Some(v)) if !v.is_empty() => {
                let mut v = v.to_string();
                if DAYS.contains(&v.to_ascii_lowercase().as_str()) && i < items.len() {
                    v.push(',');
                    v.push_str(items[i].trim_end());
                    i += 1;
                }
                Behavior::TooManyRequests { retry_after: Some(v) }
            }
            (code, rest) => {
                let status: u16 = code
                    .parse()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| format!("unknown script item {item:?}"))?;
                match rest {
                    None if status == 429 => Behavior::TooManyRequests { retry_after: None },
                    None => Behavior::Status(status),
                    Some(r) => match r.split_once(':') {
                        Some((c, m)) if !c.trim().is_empty() => {
                            Behavior::IamError { status, code: c.trim().to_string(), message: m.trim().to_string() }
                        }
                        _ => return Err(format!("expected NNN:CODE:MESSAGE, got {item:?}")),
                    },
                }
            }
        };
        out.push(b);
    }
    Ok(out)
}

/// `1.5`, `2s`, `300ms` → a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("invalid duration {s:?}"))
}

// ---------------------------------------------------------------------------
// Encoding helpers

/// Decode an `application/x-www-form-urlencoded` body (`+` is a space,
/// `%XX` a byte). Later duplicates win. Errors on bad `%` escapes or
/// non-UTF-8 results.
pub fn decode_form(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("not UTF-8 after decoding: {s:?}"))
}

/// Encode for a form body (spaces as `+`).
pub fn encode_form_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON string literal (with quotes).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decode base64url (padding optional).
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
