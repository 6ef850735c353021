//! The IAM token exchange over HTTPS (SPEC section 6): the only file that imports `ureq`.
//!
//! Bounded in every dimension a dead or overloaded IAM could stretch: connect and per-attempt
//! timeouts, a few retries with exponential backoff and jitter for 429 and 5xx (except 501),
//! `Retry-After` honoured up to a cap, and one deadline for the whole exchange. Error lines
//! name IAM's error code and request id (`problem`), and never what was sent.
//!
//! The request goes through the proxy `proxy` picks (ureq speaks CONNECT and sends the
//! credentials), trusting the roots `trust` gathers; ureq's own reading of the proxy variables
//! is never used, since it does not follow curl's rules (and would proxy a loopback endpoint).

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::endpoint::Endpoint;
use super::exchange::{Exchange, Grant, Profile, Token, MAX_TOKEN_LIFETIME};
use super::problem;
use super::proxy::{Proxies, Proxy};
use super::trust::Trust;
use crate::error::{Error, Result};
use crate::jwt;
use crate::secret::Secret;

pub const GRANT_APIKEY: &str = "urn:ibm:params:oauth:grant-type:apikey";
pub const GRANT_CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
/// `bx:bx`, the client id the `ibmcloud` CLI uses; IAM issues refresh tokens to it.
const BX_CLIENT: &str = "Basic Yng6Yng=";

/// How long each piece may take.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connect: Duration,
    /// One attempt, from sending the request to the last byte of the answer.
    pub attempt: Duration,
    /// All attempts and the pauses between them.
    pub total: Duration,
    pub max_attempts: u32,
    /// The first pause; each further one doubles, plus up to 50 % jitter.
    pub backoff: Duration,
    /// The longest `Retry-After` that is honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(8),
            total: Duration::from_secs(15),
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

/// What the network around IAM looks like: the proxies and the trusted roots, as the
/// environment says (an unreadable proxy variable is reported when an exchange needs it).
pub struct Network {
    pub proxies: Result<Proxies>,
    pub trust: Trust,
}

impl Network {
    pub fn from_env(env: &crate::env::Env) -> Network {
        Network { proxies: Proxies::from_env(env), trust: Trust::from_env(env) }
    }
}

/// Trusted roots as ureq takes them.
type Roots = Arc<Vec<ureq::tls::Certificate<'static>>>;

pub struct HttpExchange {
    limits: Limits,
    /// The invocation's deadline, which every exchange ends by too.
    deadline: Instant,
    network: Network,
    /// The roots for a CA file, read at the first exchange over TLS and kept for the next.
    roots: RefCell<Option<(Option<PathBuf>, Roots)>>,
}

impl HttpExchange {
    pub fn new(limits: Limits, deadline: Instant, network: Network) -> Self {
        HttpExchange { limits, deadline, network, roots: RefCell::new(None) }
    }

    /// The roots to verify IAM's certificate with, for this endpoint's CA file.
    fn roots(&self, endpoint: &Endpoint) -> Result<Roots> {
        let ca_file = endpoint.ca_file().map(PathBuf::from);
        if let Some((file, roots)) = &*self.roots.borrow() {
            if *file == ca_file {
                return Ok(Arc::clone(roots));
            }
        }
        let roots = self.network.trust.roots(ca_file.as_deref())?;
        let certs: Vec<ureq::tls::Certificate<'static>> =
            roots.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
        let certs = Arc::new(certs);
        *self.roots.borrow_mut() = Some((ca_file, Arc::clone(&certs)));
        Ok(certs)
    }
}

impl Exchange for HttpExchange {
    fn exchange(&self, endpoint: &Endpoint, grant: &Grant) -> Result<Token> {
        let deadline = (Instant::now() + self.limits.total).min(self.deadline);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = self.attempt(endpoint, grant, remaining.min(self.limits.attempt));
            let pause = match outcome {
                Outcome::Done(result) => return result,
                Outcome::Retry { error, retry_after } => {
                    let pause = match retry_after {
                        Some(after) if after > self.limits.max_retry_after => return Err(error),
                        Some(after) => after,
                        None => backoff(self.limits.backoff, attempt),
                    };
                    if attempt >= self.limits.max_attempts || Instant::now() + pause >= deadline {
                        return Err(error);
                    }
                    pause
                }
            };
            std::thread::sleep(pause);
        }
    }
}

enum Outcome {
    Done(Result<Token>),
    Retry { error: Error, retry_after: Option<Duration> },
}

impl HttpExchange {
    fn attempt(&self, endpoint: &Endpoint, grant: &Grant, timeout: Duration) -> Outcome {
        if timeout.is_zero() {
            return Outcome::Done(Err(Error::failed(format!(
                "IAM at {endpoint} did not answer in time: check the network or proxy, or try again"
            ))));
        }
        let url = url::Url::parse(&endpoint.token_url()).expect("an endpoint is a URL");
        let proxies = match &self.network.proxies {
            Ok(proxies) => proxies,
            Err(e) => return Outcome::Done(Err(e.clone())),
        };
        let proxy = match proxies.for_url(&url) {
            Ok(proxy) => proxy,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(self.limits.connect.min(timeout)))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("docker-credential-icr/", env!("CARGO_PKG_VERSION")))
            .proxy(match &proxy {
                Some(p) => match ureq::Proxy::new(&p.url) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        return Outcome::Done(Err(Error::failed(format!(
                            "{} is not a proxy URL that can be used: {}",
                            p.from, p.shown
                        ))))
                    }
                },
                None => None,
            });
        if url.scheme() == "https" {
            let roots = match self.roots(endpoint) {
                Ok(roots) => roots,
                Err(e) => return Outcome::Done(Err(e)),
            };
            config = config
                .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(roots)).build());
        }
        let agent: ureq::Agent = config.build().into();
        let mut request = agent.post(endpoint.token_url()).header("Accept", "application/json");
        let form: Vec<(&str, &str)> = match grant {
            Grant::ApiKey { apikey, refresh } => {
                if *refresh {
                    request = request.header("Authorization", BX_CLIENT);
                }
                vec![("grant_type", GRANT_APIKEY), ("apikey", apikey.expose())]
            }
            Grant::CrToken { cr_token, profile } => {
                let profile = match profile {
                    Profile::Id(id) => ("profile_id", id.as_str()),
                    Profile::Name(name) => ("profile_name", name.as_str()),
                };
                vec![("grant_type", GRANT_CR_TOKEN), ("cr_token", cr_token.expose()), profile]
            }
        };
        let started = SystemTime::now();
        let mut response = match request.send_form(form) {
            Ok(response) => response,
            Err(e) => return transport_error(endpoint, proxy.as_ref(), e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = match response.body_mut().with_config().limit(1 << 20).read_to_string() {
            Ok(body) => body,
            Err(e) => {
                let error = Error::failed(format!(
                    "IAM at {endpoint} answered {status}, but its body was cut short: {}",
                    describe(&e)
                ));
                return if retryable(status) {
                    Outcome::Retry { error, retry_after }
                } else {
                    Outcome::Done(Err(error))
                };
            }
        };
        if status == 200 {
            let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let token = parse_token(endpoint, &body, unix(started), grant).and_then(|token| {
                // An IAM that took longer to answer than its token lives has sent a dead token.
                if token.expires_at <= unix(SystemTime::now()) {
                    return Err(Error::failed(format!(
                        "IAM at {endpoint} answered with a token that had already expired when it arrived: check the network and this machine's clock"
                    )));
                }
                Ok(token)
            });
            return Outcome::Done(token);
        }
        let error = iam_error(endpoint, status, &body, grant);
        if retryable(status) {
            Outcome::Retry { error, retry_after }
        } else {
            Outcome::Done(Err(error))
        }
    }
}

/// 429 and 5xx are worth another try, except 501 (IAM does not implement what was asked).
fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status) && status != 501
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base * 2u32.saturating_pow(attempt.saturating_sub(1)).min(64);
    // Jitter from the clock and the pid: enough to spread parallel processes apart.
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) ^ std::process::id();
    let jitter = exp.mul_f64(f64::from(seed % 1000) / 2000.0);
    exp + jitter
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    expiration: Option<u64>,
}

fn parse_token(endpoint: &Endpoint, body: &str, now: u64, grant: &Grant) -> Result<Token> {
    let malformed = |what: &str| {
        Error::failed(format!("IAM at {endpoint} answered 200 with {what}: is the endpoint an IAM server?"))
    };
    let response: TokenResponse =
        serde_json::from_str(body).map_err(|_| malformed("a body that is not a token response"))?;
    let access = response.access_token.filter(|t| !t.trim().is_empty()).ok_or_else(|| malformed("no access_token"))?;
    // The local clock decides expiry: `expires_in` counted from when the request was sent is
    // immune to skew between this host and IAM. `expiration` and the token's own `exp` (IAM's
    // clock) can only shorten that, never lengthen it, and nothing lives longer than IAM lets a
    // token live: an answer that claims otherwise buys at most an hour.
    if response.expires_in.is_none() && response.expiration.is_none() {
        return Err(malformed("neither expires_in nor expiration"));
    }
    let expires_at =
        [response.expires_in.map(|seconds| now.saturating_add(seconds)), response.expiration, jwt::expiry(&access)]
            .into_iter()
            .flatten()
            .fold(now.saturating_add(MAX_TOKEN_LIFETIME), u64::min);
    if expires_at <= now {
        return Err(Error::failed(format!(
            "IAM at {endpoint} answered with a token that had already expired when it arrived: check this machine's clock"
        )));
    }
    let refresh = response
        .refresh_token
        .filter(|r| !r.is_empty() && r != "not_supported" && matches!(grant, Grant::ApiKey { refresh: true, .. }))
        .map(Secret::new);
    Ok(Token { access: Secret::new(access), refresh, issued_at: now, expires_at })
}

fn iam_error(endpoint: &Endpoint, status: u16, body: &str, grant: &Grant) -> Error {
    let what = match grant {
        Grant::ApiKey { .. } => "the API key",
        Grant::CrToken { .. } => "the compute-resource token",
    };
    let hint = match status {
        400 | 401 | 403 => ": check the key or profile, or create a new one",
        429 => ": IAM is rate-limiting; try again shortly",
        _ => "",
    };
    Error::failed(format!("IAM at {endpoint} refused {what} {}{hint}", problem::describe(status, body)))
}

/// What went wrong on the way to IAM, in a line that says where (the proxy, without its
/// password, when there is one) and what to do.
fn transport_error(endpoint: &Endpoint, proxy: Option<&Proxy>, e: ureq::Error) -> Outcome {
    let done = |m: String| Outcome::Done(Err(Error::failed(m)));
    let retry = |m: String| Outcome::Retry { error: Error::failed(m), retry_after: None };
    let via = proxy.map(|p| format!(" through the proxy {} (from {})", p.shown, p.from)).unwrap_or_default();
    let untrusted = || {
        let host = endpoint.host();
        format!(
            "TLS with IAM at {endpoint}{via} failed: the certificate of {host} is issued by a certificate authority this machine does not trust; trust it by adding it to the system's trust store, by pointing SSL_CERT_FILE or SSL_CERT_DIR at it, or with \"iamCaFile\" in the config file"
        )
    };
    let text = describe(&e);
    match &e {
        ureq::Error::ConnectProxyFailed(why) => {
            let (proxy_shown, from) = proxy.map(|p| (p.shown.as_str(), p.from)).unwrap_or(("?", "the environment"));
            // ureq says "proxy server responded 407/407": the code twice, without its reason.
            let status = why
                .strip_prefix("proxy server responded ")
                .and_then(|s| s.split('/').next())
                .and_then(|code| ureq::http::StatusCode::from_bytes(code.as_bytes()).ok());
            let Some(status) = status else {
                return retry(format!("the proxy {proxy_shown} (from {from}) failed to connect to IAM at {endpoint}: {why}"));
            };
            let answer = match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            };
            match status.as_u16() {
                // 407 by the standard; tinyproxy answers a wrong password with 401.
                401 | 407 => done(format!(
                    "the proxy {proxy_shown} (from {from}) refused to connect to IAM at {endpoint}: it answered {answer}: check the user and password in the proxy URL"
                )),
                400..=499 => done(format!(
                    "the proxy {proxy_shown} (from {from}) refused to connect to IAM at {endpoint}: it answered {answer}"
                )),
                // The proxy could not reach IAM (502, 503, 504; tinyproxy says 500): perhaps for now.
                _ => retry(format!(
                    "the proxy {proxy_shown} (from {from}) could not connect to IAM at {endpoint}: it answered {answer}"
                )),
            }
        }
        ureq::Error::HostNotFound => match proxy {
            Some(p) => done(format!("cannot resolve the proxy {} (from {}): check {}", p.shown, p.from, p.from)),
            None => done(format!(
                "cannot resolve the IAM host of {endpoint}: check DNS, or set DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT"
            )),
        },
        _ if text.contains("UnknownIssuer") || text.contains("unknown issuer") => done(untrusted()),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => done(format!("TLS with IAM at {endpoint}{via} failed: {text}")),
        // rustls hands a failed handshake (an untrusted certificate, no common protocol) to ureq
        // as an `io::Error` of kind `InvalidData`: that is TLS, not connectivity, and another
        // attempt would fail the same way.
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            done(format!("TLS with IAM at {endpoint}{via} failed: {text}"))
        }
        ureq::Error::Timeout(_) => {
            retry(format!("IAM at {endpoint}{via} did not answer in time: check the network or proxy, or try again"))
        }
        // std's resolver reports a failed lookup as an uncategorised I/O error; only its text
        // tells it apart from a refused connection, and it is not worth retrying.
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => match proxy {
            Some(p) => done(format!("cannot resolve the proxy {} (from {}): check {}", p.shown, p.from, p.from)),
            None => done(format!(
                "cannot resolve the IAM host of {endpoint}: check DNS, or set DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT"
            )),
        },
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => match proxy {
            Some(p) => retry(format!(
                "cannot connect to the proxy {} (from {}) for IAM at {endpoint}: {text}",
                p.shown, p.from
            )),
            None => retry(format!(
                "cannot connect to IAM at {endpoint} ({text}): check the network, proxy or DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT"
            )),
        },
        _ => done(format!("request to IAM at {endpoint}{via} failed: {text}")),
    }
}

/// A ureq error as one line. ureq's messages hold the URL at most, never the request body.
fn describe(e: &ureq::Error) -> String {
    let text = e.to_string().replace(['\n', '\r'], " ");
    text.strip_prefix("io: ").map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:02 GMT", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn only_429_and_5xx_but_501_are_retried() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(retryable(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 501] {
            assert!(!retryable(s), "{s}");
        }
    }

    #[test]
    fn backoff_doubles_with_at_most_half_again_of_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..5 {
            let exp = base * 2u32.pow(attempt - 1);
            let b = backoff(base, attempt);
            assert!(b >= exp && b <= exp + exp / 2, "{attempt}: {b:?}");
        }
    }

    #[test]
    fn iam_errors_name_code_meaning_and_request_id_but_never_the_key() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let grant = Grant::ApiKey { apikey: Secret::new("sekrit-key-123"), refresh: false };
        let body = r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found: SEKRIT-KEY-12","context":{"requestId":"req-1"}}"#;
        let line = iam_error(&endpoint, 400, body, &grant).to_string();
        assert_eq!(
            line,
            "IAM at https://iam.example refused the API key (HTTP 400, BXNIM0415E): Provided API key could not be found (request id req-1): check the key or profile, or create a new one"
        );
    }

    #[test]
    fn token_expiry_counts_from_the_local_clock() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let grant = Grant::ApiKey { apikey: Secret::new("k"), refresh: false };
        let body = r#"{"access_token":"a","refresh_token":"not_supported","token_type":"Bearer","expires_in":3600,"expiration":5000}"#;
        let token = parse_token(&endpoint, body, 1000, &grant).unwrap();
        assert_eq!((token.issued_at, token.expires_at, token.refresh), (1000, 4600, None));
        // IAM's clock ahead of this one: `expiration` a little short, and it wins.
        let body = r#"{"access_token":"a","expires_in":3600,"expiration":4500}"#;
        assert_eq!(parse_token(&endpoint, body, 1000, &grant).unwrap().expires_at, 4500);
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"access_token":""}"#,
            r#"{"access_token":"a"}"#,
            r#"{"access_token":"a","expiration":5}"#,
            r#"{"access_token":"a","expires_in":3600,"expiration":999}"#,
            r#"{"access_token":"a","expires_in":0}"#,
        ] {
            assert!(parse_token(&endpoint, bad, 1000, &grant).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_answer_makes_a_token_live_longer_than_an_hour() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let grant = Grant::ApiKey { apikey: Secret::new("k"), refresh: false };
        for body in [
            r#"{"access_token":"a","expires_in":9223372036854775808}"#.to_owned(),
            r#"{"access_token":"a","expires_in":18446744073709551615}"#.to_owned(),
            r#"{"access_token":"a","expiration":18446744073709551615}"#.to_owned(),
            format!(r#"{{"access_token":"{}","expires_in":86400}}"#, crate::jwt::make(r#"{"exp":99999999999}"#)),
        ] {
            assert_eq!(parse_token(&endpoint, &body, 1000, &grant).unwrap().expires_at, 4600, "{body}");
        }
        // The token's own `exp` shortens what IAM said.
        let body = format!(r#"{{"access_token":"{}","expires_in":3600}}"#, crate::jwt::make(r#"{"exp":2000}"#));
        assert_eq!(parse_token(&endpoint, &body, 1000, &grant).unwrap().expires_at, 2000);
    }
}
