//! The token cache, and the single flight that makes N parallel cold `get`s one IAM request.
//!
//! One file per key, `<cache dir>/<sha256>.json`, with a lock file beside it. One file
//! per key rather than one file for all: independent credentials never wait for each other, a
//! corrupt file costs one exchange for one key, and the per-key lock *is* the single flight —
//! the first process to miss takes the lock and asks IAM; the others wait on the same lock
//! (bounded), then find the fresh token it wrote, or the failure it recorded, which they report
//! without asking again. A process that did not have to wait asks IAM itself. The key is a hash of (endpoint, grant,
//! credential, profile): the credential itself is never written, only the token it bought.
//!
//! A token is reused until 80 % of its lifetime; after that a new one is fetched, and if that
//! fails while the old one still has more than 10 s left, the old one is used (with a warning).
//! A file that does not parse, or is of another version, is ignored and replaced. An entry
//! issued in the future (the clock was set back) is stale, and no entry is believed to live
//! longer than IAM lets a token live.
//!
//! The cache is an optimisation, never a reason to fail: a directory that cannot be created,
//! locked, read or written, or that is not fit to hold secrets (`files::check_private`: someone
//! else's, or writable by others), costs an exchange without the cache and one warning line.
//! Waiting for another process's exchange and making one's own share the invocation's deadline.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::exchange::{Cached, Exchange, Grant, Profile, Token, MAX_TOKEN_LIFETIME};
use super::request::{self, Service};
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
    /// A token as the cache file holds it, believed to live no longer than IAM lets one.
    fn from(t: CachedToken) -> Token {
        let expires_at = t.expires_at.min(t.issued_at.saturating_add(MAX_TOKEN_LIFETIME));
        Token { access: t.access, refresh: t.refresh, issued_at: t.issued_at, expires_at }
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

/// Whether a token is still within the first 80 % of its life. One issued in the future is not:
/// the clock was set back, and how long it has left cannot be known.
pub fn is_fresh(token: &Token, now: u64) -> bool {
    let lifetime = token.expires_at.saturating_sub(token.issued_at);
    token.issued_at <= now && now < token.issued_at + (lifetime as f64 * FRESH_SHARE) as u64
}

/// Whether a token that is no longer fresh may still stand in when a refresh fails.
pub fn is_usable(token: &Token, now: u64) -> bool {
    token.issued_at <= now && now.saturating_add(MIN_REMAINING) < token.expires_at
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

    /// The entry in `path`: `Ok(None)` when there is none or it is corrupt (it is then replaced);
    /// `Err` when the file cannot be read or is not fit to be believed.
    fn read(&self, path: &Path, log: &Log) -> std::result::Result<Option<Entry>, String> {
        files::check_private(&self.dir, Some(path))?;
        let bytes = match files::read_limited(path, 1 << 20, false) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.version == VERSION => Ok(Some(entry)),
            _ => {
                log.info(format_args!("ignoring token cache file {} of another version or corrupt", path.display()));
                Ok(None)
            }
        }
    }

    fn write(&self, path: &Path, entry: &Entry) -> std::result::Result<(), String> {
        let bytes = serde_json::to_vec(entry).expect("cache entries always serialize");
        files::write_atomic(path, &bytes, files::Writing::secret(self.whose))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
    let credential = |secret: &Secret| identity.unwrap_or(secret.expose()).to_owned();
    let profile = |profile: &Profile| match profile {
        Profile::Id(id) => format!("id:{id}"),
        Profile::Name(name) => format!("name:{name}"),
        Profile::Crn(crn) => format!("crn:{crn}"),
    };
    match grant {
        Grant::ApiKey { apikey, .. } => field(&credential(apikey)),
        Grant::RefreshToken { refresh_token } => field(&credential(refresh_token)),
        Grant::CrToken { cr_token, profile: p } => {
            field(&credential(cr_token));
            field(&profile(p));
        }
        // The instance is the credential: one per machine, and the endpoint is its own.
        Grant::Instance { profile: p } => {
            field(&p.as_ref().map(profile).unwrap_or_else(|| "default profile".to_owned()))
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
        Grant::RefreshToken { .. } => "refresh-token+bx",
        Grant::Instance { .. } => "vpc-instance",
    }
}

/// An [`Exchange`] that asks the cache first and the inner exchange once per key at a time.
pub struct CachedExchange<'a> {
    pub inner: &'a dyn Exchange,
    /// The cache, none when it is turned off, or why its setting is unusable.
    pub cache: Result<Option<TokenCache>>,
    pub clock: &'a dyn Clock,
    pub log: &'a Log<'a>,
    /// When the invocation's time is up: waiting for another process's exchange ends here.
    pub deadline: Instant,
    /// Whether the one warning about an unusable cache has been given.
    pub warned: Cell<bool>,
}

impl<'a> CachedExchange<'a> {
    pub fn new(
        inner: &'a dyn Exchange,
        cache: Result<Option<TokenCache>>,
        clock: &'a dyn Clock,
        log: &'a Log<'a>,
        deadline: Instant,
    ) -> Self {
        CachedExchange { inner, cache, clock, log, deadline, warned: Cell::new(false) }
    }
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
            Err(e) => Cached::Unusable(e.to_string()),
            Ok(None) => Cached::Off,
            Ok(Some(cache)) => match cache.read(&cache.path(endpoint, grant), self.log) {
                Ok(Some(Entry { token: Some(token), .. })) => Cached::Token(token.into()),
                Ok(_) => Cached::Empty(cache.dir().to_owned()),
                Err(why) => Cached::Unusable(format!("{}: {why}", cache.dir().display())),
            },
        }
    }
}

impl CachedExchange<'_> {
    fn through_cache(&self, endpoint: &Endpoint, grant: &Grant, identity: Option<&str>) -> Result<Token> {
        let cache = match &self.cache {
            Err(e) => return Err(e.clone()),
            Ok(None) => return self.exchange_now(endpoint, grant),
            Ok(Some(cache)) => cache,
        };
        let path = cache.path_as(endpoint, grant, identity);
        let started = self.clock.now();
        match cache.read(&path, self.log) {
            Ok(entry) => {
                if let Some(token) = entry.and_then(|e| e.token).map(Token::from).filter(|t| is_fresh(t, started)) {
                    self.log.debug(format_args!(
                        "using cached token {} (expires at {})",
                        path.display(),
                        token.expires_at
                    ));
                    return Ok(token);
                }
            }
            Err(why) => return self.without(cache, &why, endpoint, grant),
        }
        let waited = Instant::now();
        let lock = match files::lock(&files::lock_path(&path), self.deadline, cache.whose) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                // Whoever holds the lock is still talking to IAM when this invocation's time is
                // up; do not pile on.
                let cached = cache.read(&path, self.log).ok().flatten().and_then(|e| e.token).map(Token::from);
                return cached.filter(|t| is_usable(t, self.clock.now())).ok_or_else(|| {
                    Error::failed(format!(
                        "another docker-credential-icr has been exchanging this credential at IAM for {} s: try again",
                        waited.elapsed().as_secs()
                    ))
                });
            }
            Err(e) => return self.without(cache, &format!("cannot lock it: {e}"), endpoint, grant),
        };
        // Another process may have done the exchange while this one waited.
        let entry = match cache.read(&path, self.log) {
            Ok(entry) => entry,
            Err(why) => return self.without(cache, &why, endpoint, grant),
        };
        let cached = entry.as_ref().and_then(|e| e.token.clone()).map(Token::from);
        if let Some(token) = cached.clone().filter(|t| is_fresh(t, self.clock.now())) {
            self.log.debug(format_args!(
                "using token cached by another process while waiting {} ms",
                waited.elapsed().as_millis()
            ));
            return Ok(token);
        }
        // A failure stands for the processes that waited for the exchange that failed, and only
        // for them: a process that starts after it (a retry, with the proxy or CA fixed) asks
        // again.
        if let Some((at, message)) = entry.as_ref().and_then(|e| e.failure.clone()) {
            if lock.waited && at >= started && at <= self.clock.now() {
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
        match self.exchange_now(endpoint, grant) {
            Ok(token) => {
                entry.token = Some(CachedToken::from(&token));
                if let Err(why) = cache.write(&path, &entry) {
                    self.unusable(cache, &why);
                }
                Ok(token)
            }
            Err(error) => {
                entry.failure = Some((self.clock.now(), error.to_string()));
                if let Err(why) = cache.write(&path, &entry) {
                    self.unusable(cache, &why);
                }
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

    /// The inner exchange, refusing a token whose expiry has passed by this clock. The HTTP
    /// exchange measures a token's life against the time its answer took to the millisecond; in
    /// whole seconds, a token whose expiry is this very second may still have most of it left
    /// (the kill storm's tokens live one second), so only an expiry already past is dead here.
    fn exchange_now(&self, endpoint: &Endpoint, grant: &Grant) -> Result<Token> {
        let token = self.inner.exchange(endpoint, grant)?;
        if token.expires_at < self.clock.now() {
            return Err(request::dead_on_arrival(Service::of(grant), endpoint));
        }
        Ok(token)
    }

    /// An exchange without the cache, after the one warning that says why.
    fn without(&self, cache: &TokenCache, why: &str, endpoint: &Endpoint, grant: &Grant) -> Result<Token> {
        self.unusable(cache, why);
        self.exchange_now(endpoint, grant)
    }

    fn unusable(&self, cache: &TokenCache, why: &str) {
        if !self.warned.replace(true) {
            self.log.warn(format_args!(
                "not using the token cache {} ({why}): every exchange goes to IAM",
                cache.dir().display()
            ));
        }
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
        let cache = TokenCache::new(Place { path: tmp.path().to_owned(), dir: Dir::Chosen });
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let cached = CachedExchange::new(&inner, Ok(Some(cache)), &clock, &log, deadline);
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
        let answers = vec![Ok(1000), Err("IAM is down"), Err("IAM is down"), Err("IAM is down")];
        run(answers, |cached, clock, inner, _| {
            let endpoint = Endpoint::default();
            let first = cached.exchange(&endpoint, &grant()).unwrap();
            clock.advance(900);
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap(), first, "stale fallback");
            assert_eq!(inner.calls.get(), 2);
            // The recorded failure stands only for those who waited for it: a later get asks again.
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap(), first);
            assert_eq!(inner.calls.get(), 3);
            clock.advance(91); // 991 s: 9 s left, too little to hand out.
            assert_eq!(cached.exchange(&endpoint, &grant()).unwrap_err(), Error::failed("IAM is down"));
            assert_eq!(inner.calls.get(), 4);
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
