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

use super::endpoint::Endpoint;
use super::exchange::{Exchange, Grant, Token};
use super::proxy::{Proxies, Proxy};
use super::request::{self, Call, Method, Payload, Service};
use super::trust::Trust;
use crate::error::{Error, Result};

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
        // One bound for the whole exchange, both calls of an instance identity's included.
        let started = Instant::now();
        let deadline = (started + self.limits.total).min(self.deadline);
        let token = match grant {
            Grant::Instance { profile } => {
                let reply = self.send(endpoint, &request::identity_token(endpoint), deadline)?;
                let identity = request::parse_metadata_token(endpoint, &reply.body, reply.sent)?.access;
                let call = request::instance_iam_token(endpoint, &identity, profile.as_ref());
                let reply = self.send(endpoint, &call, deadline)?;
                request::parse_metadata_token(endpoint, &reply.body, reply.sent)?
            }
            grant => {
                let reply = self.send(endpoint, &request::token(endpoint, grant), deadline)?;
                request::parse_token(endpoint, &reply.body, reply.sent, grant)?
            }
        };
        // A service that took longer to answer than its token lives has sent a dead token. The
        // time since the request was sent is measured as it passed, not in whole seconds of the
        // clock, which could turn a token of a second's life dead on the tick between them.
        let lifetime = Duration::from_secs(token.expires_at.saturating_sub(token.issued_at));
        if started.elapsed() >= lifetime {
            return Err(request::dead_on_arrival(Service::of(grant), endpoint));
        }
        Ok(token)
    }
}

/// A successful answer: its body, and when the request was sent (Unix seconds).
struct Reply {
    body: String,
    sent: u64,
}

enum Outcome {
    Done(Result<Reply>),
    Retry { error: Error, retry_after: Option<Duration> },
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl HttpExchange {
    /// Makes `call`, with retries, until `deadline`.
    fn send(&self, endpoint: &Endpoint, call: &Call, deadline: Instant) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = self.attempt(endpoint, call, remaining.min(self.limits.attempt));
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

    fn attempt(&self, endpoint: &Endpoint, call: &Call, timeout: Duration) -> Outcome {
        let service = call.service.name();
        if timeout.is_zero() {
            return Outcome::Done(Err(Error::failed(format!(
                "{service} at {endpoint} did not answer in time: check the network or proxy, or try again"
            ))));
        }
        let url = url::Url::parse(&call.url).expect("an endpoint is a URL");
        let proxies = match &self.network.proxies {
            Ok(proxies) => proxies,
            Err(e) => return Outcome::Done(Err(e.clone())),
        };
        // The metadata service answers on the instance itself: no proxy elsewhere can reach it.
        let proxy = match call.service {
            Service::Metadata => None,
            Service::Iam => match proxies.for_url(&url) {
                Ok(proxy) => proxy,
                Err(e) => return Outcome::Done(Err(e)),
            },
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
        let started = SystemTime::now();
        let mut request = match call.method {
            Method::Post => agent.post(&call.url),
            Method::Put => agent.put(&call.url),
        };
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        let sent = match &call.payload {
            Payload::Form(form) => request.send_form(form.iter().map(|(k, v)| (*k, v.as_str()))),
            Payload::Json(json) => request.header("Content-Type", "application/json").send(json.as_str()),
            Payload::None => request.header("Content-Type", "application/json").send_empty(),
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return transport_error(call.service, endpoint, proxy.as_ref(), e),
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
                    "{service} at {endpoint} answered {status}, but its body was cut short: {}",
                    describe(&e)
                ));
                return if retryable(status) {
                    Outcome::Retry { error, retry_after }
                } else {
                    Outcome::Done(Err(error))
                };
            }
        };
        if (200..300).contains(&status) {
            return Outcome::Done(Ok(Reply { body, sent: unix(started) }));
        }
        let error = request::refusal(call, endpoint, status, &body);
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

/// What went wrong on the way to IAM, in a line that says where (the proxy, without its
/// password, when there is one) and what to do.
fn transport_error(service: Service, endpoint: &Endpoint, proxy: Option<&Proxy>, e: ureq::Error) -> Outcome {
    let name = service.name();
    let done = |m: String| Outcome::Done(Err(Error::failed(m)));
    let retry = |m: String| Outcome::Retry { error: Error::failed(m), retry_after: None };
    let via = proxy.map(|p| format!(" through the proxy {} (from {})", p.shown, p.from)).unwrap_or_default();
    let untrusted = || {
        let host = endpoint.host();
        format!(
            "TLS with {name} at {endpoint}{via} failed: the certificate of {host} is issued by a certificate authority this machine does not trust; trust it by adding it to the system's trust store, by pointing SSL_CERT_FILE or SSL_CERT_DIR at it, or with \"iamCaFile\" in the config file"
        )
    };
    let hint = match service {
        Service::Iam => Hints {
            unreachable: "check the network or proxy, or try again",
            unconnected: "check the network, proxy or DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT",
            variable: "DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT",
        },
        Service::Metadata => Hints {
            unreachable: "is the metadata service enabled for this instance? (it is off by default)",
            unconnected: "is this a VPC instance with the metadata service enabled? (it is off by default)",
            variable: "DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL",
        },
    };
    let unresolved = || format!("cannot resolve the host of {name} at {endpoint}: check DNS, or set {}", hint.variable);
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
                return retry(format!(
                    "the proxy {proxy_shown} (from {from}) failed to connect to IAM at {endpoint}: {why}"
                ));
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
            None => done(unresolved()),
        },
        _ if text.contains("UnknownIssuer") || text.contains("unknown issuer") => done(untrusted()),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
            done(format!("TLS with {name} at {endpoint}{via} failed: {text}"))
        }
        // rustls hands a failed handshake (an untrusted certificate, no common protocol) to ureq
        // as an `io::Error` of kind `InvalidData`: that is TLS, not connectivity, and another
        // attempt would fail the same way.
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            done(format!("TLS with {name} at {endpoint}{via} failed: {text}"))
        }
        ureq::Error::Timeout(_) => {
            retry(format!("{name} at {endpoint}{via} did not answer in time: {}", hint.unreachable))
        }
        // std's resolver reports a failed lookup as an uncategorised I/O error; only its text
        // tells it apart from a refused connection, and it is not worth retrying.
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => match proxy {
            Some(p) => done(format!("cannot resolve the proxy {} (from {}): check {}", p.shown, p.from, p.from)),
            None => done(unresolved()),
        },
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => match proxy {
            Some(p) => retry(format!(
                "cannot connect to the proxy {} (from {}) for IAM at {endpoint}: {text}",
                p.shown, p.from
            )),
            None => retry(format!("cannot connect to {name} at {endpoint} ({text}): {}", hint.unconnected)),
        },
        _ => done(format!("request to {name} at {endpoint}{via} failed: {text}")),
    }
}

/// What to do, per service, when it cannot be reached.
struct Hints {
    unreachable: &'static str,
    unconnected: &'static str,
    variable: &'static str,
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
}
