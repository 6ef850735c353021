//! The token cache, and the single flight that makes N parallel cold `get`s one IAM request.
//!
//! One file per key, `<cache dir>/<sha256>.json`, with a lock file beside it. One file
//! per key rather than one file for all: independent credentials never wait for each other, a
//! corrupt file costs one exchange for one key, and the per-key lock *is* the single flight —
//! the first process to miss takes the lock and asks IAM; the others wait on the same lock
//! (bounded), then find the fresh token it wrote. The key is a hash of (endpoint, grant,
//! credential, profile): the credential itself is never written, only the token it bought.
//!
//! A token is reused until 80 % of its lifetime; after that a new one is fetched, and if that
//! fails while the old one still has more than 10 s left, the old one is used (with a warning).
//! A file that does not parse, or is of another version, is ignored and replaced.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::exchange::{Cached, Exchange, Grant, Profile, Token};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::files::{self, Dir};
use crate::log::Log;
use crate::paths::Place;
use crate::secret::Secret;

const VERSION: u32 = 1;
/// A token is fresh until this share of its lifetime has passed.
const FRESH_SHARE: f64 = 0.8;
/// A stale token is used as a fallback only while it has at least this long left.
const MIN_REMAINING: u64 = 10;
/// A failure recorded this recently by another process is reported instead of asking again.
const FAILURE_MEMORY: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: u32,
    /// The endpoint and grant, in clear, for a human looking at the directory.
    endpoint: String,
    grant: String,
    token: Option<CachedToken>,
    /// The last failed exchange: when (Unix seconds), and its error line (which holds no secret).
    failure: Option<(u64, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedToken {
    access: Secret,
    refresh: Option<Secret>,
    issued_at: u64,
    expires_at: u64,
}

impl From<CachedToken> for Token {
    fn from(t: CachedToken) -> Token {
        Token { access: t.access, refresh: t.refresh, issued_at: t.issued_at, expires_at: t.expires_at }
    }
}

impl From<&Token> for CachedToken {
    fn from(t: &Token) -> CachedToken {
        CachedToken {
            access: t.access.clone(),
            refresh: t.refresh.clone(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
        }
    }
}

/// Whether a token is still within the first 80 % of its life.
pub fn is_fresh(token: &Token, now: u64) -> bool {
    let lifetime = token.expires_at.saturating_sub(token.issued_at);
    now < token.issued_at + (lifetime as f64 * FRESH_SHARE) as u64
}

/// Whether a token that is no longer fresh may still stand in when a refresh fails.
pub fn is_usable(token: &Token, now: u64) -> bool {
    now.saturating_add(MIN_REMAINING) < token.expires_at
}

/// Where the tokens live.
pub struct TokenCache {
    dir: PathBuf,
    whose: Dir,
}

impl TokenCache {
    pub fn new(place: Place) -> Self {
        TokenCache { dir: place.path, whose: place.dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, endpoint: &Endpoint, grant: &Grant) -> PathBuf {
        self.path_as(endpoint, grant, None)
    }

    fn path_as(&self, endpoint: &Endpoint, grant: &Grant, identity: Option<&str>) -> PathBuf {
        self.dir.join(format!("{}.json", key_as(endpoint, grant, identity)))
    }

    fn read(&self, path: &Path, log: &Log) -> Option<Entry> {
        let bytes = match files::read_limited(path, 1 << 20) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(e) => {
                log.warn(format_args!("ignoring token cache file {}: {e}", path.display()));
                return None;
            }
        };
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.version == VERSION => Some(entry),
            _ => {
                log.info(format_args!("ignoring token cache file {} of another version or corrupt", path.display()));
                None
            }
        }
    }

    fn write(&self, path: &Path, entry: &Entry, log: &Log) {
        let bytes = serde_json::to_vec(entry).expect("cache entries always serialize");
        // A cache that cannot be written costs an exchange next time, nothing more.
        if let Err(e) = files::write_atomic(path, &bytes, self.whose) {
            log.warn(format_args!("cannot write token cache file {}: {e}", path.display()));
        }
    }

    /// The cached token for this grant, fresh or not, for `explain`.
    fn peek(&self, endpoint: &Endpoint, grant: &Grant, log: &Log) -> Option<Token> {
        self.read(&self.path(endpoint, grant), log).and_then(|e| e.token).map(Token::from)
    }
}

/// The cache key: a hash of what the token was bought with, never the credential itself.
#[cfg(test)]
fn key(endpoint: &Endpoint, grant: &Grant) -> String {
    key_as(endpoint, grant, None)
}

/// The cache key with, when given, the identity the grant speaks for in place of its credential
/// (see [`Exchange::exchange_as`]); the endpoint, grant type and profile still count.
fn key_as(endpoint: &Endpoint, grant: &Grant, identity: Option<&str>) -> String {
    let mut hash = Sha256::new();
    let mut field = |s: &str| {
        hash.update((s.len() as u64).to_be_bytes());
        hash.update(s.as_bytes());
    };
    field(endpoint.as_str());
    // The label tells the two kinds of key apart in the same position, so that no credential,
    // whatever its bytes, can hash like an identity (or the other way round).
    match identity {
        Some(_) => field(&format!("{}+identity", grant_label(grant))),
        None => field(grant_label(grant)),
    }
    let mut credential = |secret: &Secret| field(identity.unwrap_or(secret.expose()));
    match grant {
        Grant::ApiKey { apikey, .. } => credential(apikey),
        Grant::CrToken { cr_token, profile } => {
            credential(cr_token);
            match profile {
                Profile::Id(id) => field(&format!("id:{id}")),
                Profile::Name(name) => field(&format!("name:{name}")),
            }
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    hash.finalize().iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]).map(char::from).collect()
}

fn grant_label(grant: &Grant) -> &'static str {
    match grant {
        Grant::ApiKey { refresh: false, .. } => "apikey",
        Grant::ApiKey { refresh: true, .. } => "apikey+bx",
        Grant::CrToken { .. } => "cr-token",
    }
}

/// An [`Exchange`] that asks the cache first and the inner exchange once per key at a time.
pub struct CachedExchange<'a> {
    pub inner: &'a dyn Exchange,
    pub cache: Option<TokenCache>,
    pub clock: &'a dyn Clock,
    pub log: &'a Log<'a>,
    /// The longest wait for another process's exchange.
    pub lock_timeout: Duration,
}

impl Exchange for CachedExchange<'_> {
    fn exchange(&self, endpoint: &Endpoint, grant: &Grant) -> Result<Token> {
        self.through_cache(endpoint, grant, None)
    }

    fn exchange_as(&self, endpoint: &Endpoint, grant: &Grant, identity: &str) -> Result<Token> {
        self.through_cache(endpoint, grant, Some(identity))
    }

    fn cached(&self, endpoint: &Endpoint, grant: &Grant) -> Cached {
        match &self.cache {
            None => Cached::Off,
            Some(cache) => match cache.peek(endpoint, grant, self.log) {
                Some(token) => Cached::Token(token),
                None => Cached::Empty(cache.dir().to_owned()),
            },
        }
    }
}

impl CachedExchange<'_> {
    fn through_cache(&self, endpoint: &Endpoint, grant: &Grant, identity: Option<&str>) -> Result<Token> {
        let Some(cache) = &self.cache else { return self.inner.exchange(endpoint, grant) };
        let path = cache.path_as(endpoint, grant, identity);
        let started = self.clock.now();
        if let Some(token) = self.read_token(cache, &path).filter(|t| is_fresh(t, self.clock.now())) {
            self.log.debug(format_args!("using cached token {} (expires at {})", path.display(), token.expires_at));
            return Ok(token);
        }
        let waited = Instant::now();
        let lock = files::lock(&files::lock_path(&path), self.lock_timeout, cache.whose)
            .map_err(|e| Error::failed(format!("cannot lock token cache {}: {e}", path.display())))?;
        let Some(_lock) = lock else {
            // Whoever holds the lock is still talking to IAM after the longest an exchange
            // may take; do not pile on.
            return self.read_token(cache, &path).filter(|t| is_usable(t, self.clock.now())).ok_or_else(|| {
                Error::failed(format!(
                    "another docker-credential-icr has been exchanging this credential at IAM for {} s: try again",
                    waited.elapsed().as_secs()
                ))
            });
        };
        // Another process may have done the exchange while this one waited.
        let entry = cache.read(&path, self.log);
        let cached = entry.as_ref().and_then(|e| e.token.clone()).map(Token::from);
        if let Some(token) = cached.clone().filter(|t| is_fresh(t, self.clock.now())) {
            self.log.debug(format_args!(
                "using token cached by another process while waiting {} ms",
                waited.elapsed().as_millis()
            ));
            return Ok(token);
        }
        if let Some((at, message)) = entry.as_ref().and_then(|e| e.failure.clone()) {
            if at >= started.saturating_sub(FAILURE_MEMORY) && at <= self.clock.now() {
                if let Some(token) = cached.clone().filter(|t| is_usable(t, self.clock.now())) {
                    return Ok(token);
                }
                return Err(Error::failed(message));
            }
        }
        let mut entry = Entry {
            version: VERSION,
            endpoint: endpoint.to_string(),
            grant: grant_label(grant).to_owned(),
            token: cached.as_ref().map(CachedToken::from),
            failure: None,
        };
        match self.inner.exchange(endpoint, grant) {
            Ok(token) => {
                entry.token = Some(CachedToken::from(&token));
                cache.write(&path, &entry, self.log);
                Ok(token)
            }
            Err(error) => {
                entry.failure = Some((self.clock.now(), error.to_string()));
                cache.write(&path, &entry, self.log);
                match cached.filter(|t| is_usable(t, self.clock.now())) {
                    Some(token) => {
                        self.log.warn(format_args!(
                            "{error}; using the cached token, which expires in {} s",
                            token.expires_at.saturating_sub(self.clock.now())
                        ));
                        Ok(token)
                    }
                    None => Err(error),
                }
            }
        }
    }

    fn read_token(&self, cache: &TokenCache, path: &Path) -> Option<Token> {
        cache.read(path, self.log).and_then(|e| e.token).map(Token::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::log::Level;
    use std::cell::{Cell, RefCell};

    /// Counts exchanges and answers from a script: `Ok(lifetime)` or `Err(message)`.
    struct Scripted<'c> {
        clock: &'c FixedClock,
        answers: RefCell<Vec<std::result::Result<u64, &'static str>>>,
        calls: Cell<u32>,
    }

    impl Exchange for Scripted<'_> {
        fn exchange(&self, _: &Endpoint, _: &Grant) -> Result<Token> {
            self.calls.set(self.calls.get() + 1);
            let now = self.clock.now();
            match self.answers.borrow_mut().remove(0) {
                Ok(lifetime) => Ok(Token {
                    access: Secret::new(format!("token-{}", self.calls.get())),
                    refresh: None,
                    issued_at: now,
                    expires_at: now + lifetime,
                }),
                Err(message) => Err(Error::failed(message)),
            }
        }
    }

    fn grant() -> Grant {
        Grant::ApiKey { apikey: Secret::new("api-key-for-cache-tests"), refresh: false }
    }

    fn run<R>(
        answers: Vec<std::result::Result<u64, &'static str>>,
        f: impl FnOnce(&CachedExchange, &FixedClock, &Scripted, &Path) -> R,
    ) -> R {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(1_000_000);
        let inner = Scripted { clock: &clock, answers: RefCell::new(answers), calls: Cell::new(0) };
        let mut sink = Vec::new();
        let log = Log::new(Level::Debug, &mut sink);
        let cached = CachedExchange {
            inner: &inner,
            cache: Some(TokenCache::new(Place { path: tmp.path().to_owned(), dir: Dir::Chosen })),
            clock: &clock,
            log: &log,
            lock_timeout: Duration::from_secs(1),
        };
        f(&cached, &clock, &inner, tmp.path())
    }

    #[test]
    fn cached_token_is_reused_until_80_percent_of_lifetime() {
        run(vec![Ok(1000), Ok(1000)], |cached, clock, inner, _| {
            let endpoint = Endpoint::default();
            let first = cached.exchange(&endpoint, &grant()).unwrap();
            clock.advance(799);
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap(), first);
            assert_eq!(inner.calls.get(), 1);
            clock.advance(1);
            let second = cached.exchange(&endpoint, &grant()).unwrap();
            assert_ne!(second, first);
            assert_eq!(inner.calls.get(), 2);
        });
    }

    #[test]
    fn a_failed_refresh_falls_back_to_the_stale_token_until_10_s_before_expiry() {
        run(vec![Ok(1000), Err("IAM is down"), Err("IAM is down")], |cached, clock, inner, _| {
            let endpoint = Endpoint::default();
            let first = cached.exchange(&endpoint, &grant()).unwrap();
            clock.advance(900);
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap(), first, "stale fallback");
            assert_eq!(inner.calls.get(), 2);
            // Within the failure memory the recorded failure stands for everyone: no new request.
            clock.advance(2);
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap(), first);
            assert_eq!(inner.calls.get(), 2);
            clock.advance(89); // 991 s: 9 s left, too little to hand out.
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap_err(), Error::failed("IAM is down"));
            assert_eq!(inner.calls.get(), 3);
        });
    }

    #[test]
    fn keys_differ_by_endpoint_grant_and_credential_and_hide_the_credential() {
        let e1 = Endpoint::default();
        let e2 = Endpoint::parse("https://private.iam.cloud.ibm.com").unwrap();
        let k = |refresh, key: &str| Grant::ApiKey { apikey: Secret::new(key), refresh };
        let cr = |name: &str| Grant::CrToken { cr_token: Secret::new("t"), profile: Profile::Name(name.into()) };
        let keys = [
            key(&e1, &k(false, "a")),
            key(&e2, &k(false, "a")),
            key(&e1, &k(true, "a")),
            key(&e1, &k(false, "b")),
            key(&e1, &cr("p1")),
            key(&e1, &cr("p2")),
        ];
        let mut unique = keys.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        assert!(keys.iter().all(|k| k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit())));
    }

    #[test]
    fn a_key_is_the_lowercase_hex_sha256_of_the_length_prefixed_fields() {
        // Pinned (computed with Python's hashlib): a cache file's name must not change between
        // releases, or an upgrade orphans every cached token.
        let grant = Grant::ApiKey { apikey: Secret::new("k"), refresh: false };
        assert_eq!(
            key(&Endpoint::default(), &grant),
            "75be89004692b3b57c96ed4cbfa0614f76a497e0a9bff5d04cec33fdf9f0607c"
        );
    }

    #[test]
    fn an_identity_key_ignores_the_credential_but_not_the_identity_profile_or_endpoint() {
        let e1 = Endpoint::default();
        let e2 = Endpoint::parse("https://private.iam.cloud.ibm.com").unwrap();
        let cr = |token: &str, name: &str| Grant::CrToken {
            cr_token: Secret::new(token),
            profile: Profile::Name(name.into()),
        };
        let a = key_as(&e1, &cr("token-1", "p"), Some("sa-a"));
        assert_eq!(a, key_as(&e1, &cr("token-2", "p"), Some("sa-a")), "a new token of the same account");
        for other in [
            key_as(&e1, &cr("token-1", "p"), Some("sa-b")),
            key_as(&e1, &cr("token-1", "q"), Some("sa-a")),
            key_as(&e2, &cr("token-1", "p"), Some("sa-a")),
            key_as(&e1, &cr("token-1", "p"), None),
            key_as(&e1, &cr("sa-a", "p"), None),
            key_as(&e1, &cr("cr-token+identity", "p"), None),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn a_corrupt_or_foreign_cache_file_is_replaced() {
        run(vec![Ok(1000), Ok(1000)], |cached, _, inner, dir| {
            let endpoint = Endpoint::default();
            let path = dir.join(format!("{}.json", key(&endpoint, &grant())));
            for junk in [&b"{not json"[..], br#"{"version":99,"whatever":1}"#] {
                std::fs::write(&path, junk).unwrap();
                cached.exchange(&endpoint, &grant()).unwrap();
            }
            assert_eq!(inner.calls.get(), 2);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("\"version\":1") && !text.contains("api-key-for-cache-tests"), "{text}");
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        });
    }

    #[test]
    fn freshness_and_usability_bounds() {
        let t = Token { access: Secret::new("a"), refresh: None, issued_at: 100, expires_at: 200 };
        assert!(is_fresh(&t, 179) && !is_fresh(&t, 180));
        assert!(is_usable(&t, 189) && !is_usable(&t, 190));
    }
}
