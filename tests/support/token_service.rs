//! A registry token service, as ICR has one in front of its registries: the registry answers
//! `401` with `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`, the client sends the
//! username and secret its credential helper gave it to the realm (Basic authentication, as
//! docker's token protocol has it), and the realm answers with a registry token (a JWT the
//! registry verifies against the certificate in its `rootcertbundle`).
//!
//! What the service accepts is decided by a check the test passes in: against the fake IAM
//! (`FakeIam::validate`), so that a pull through it proves that what the helper handed out is
//! what IAM issued and is still good — an API key IAM knows, an access token it issued that has
//! not expired, a refresh token it issued that is still good — and not merely a string a test
//! wrote into a password file. Each decision is recorded, refusals with IAM's reason.
//!
//! The token: ES256 under a P-256 key with a self-signed certificate (rcgen, ring), carried in
//! the `x5c` header, with `iss`, `sub` (the username), `aud` (the service), `exp`, `nbf`,
//! `iat`, `jti` and the granted `access` (every action asked for, as to the repository owner).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rcgen::{CertificateParams, DnType, KeyPair, SigningKey, PKCS_ECDSA_P256_SHA256};

use crate::common::tls::Tls;

/// Who the tokens say issued them; the registry is configured to trust this issuer only.
pub const ISSUER: &str = "icr-e2e-token-service";
/// How long a registry token lives.
const TOKEN_LIFETIME: u64 = 300;

/// Whether a username and secret are good, and whom they speak for (`Err`: why not).
pub type Check = dyn Fn(&str, &str) -> Result<String, String> + Send + Sync;

/// What the service decided for one request.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The Basic username, when there was one.
    pub username: Option<String>,
    /// Whom the secret speaks for, or why it was refused.
    pub outcome: Result<String, String>,
    pub scopes: Vec<String>,
}

pub struct TokenService {
    addr: SocketAddr,
    host: String,
    bundle: PathBuf,
    decisions: Arc<Mutex<Vec<Decision>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Signer {
    key: KeyPair,
    cert_der: Vec<u8>,
}

impl TokenService {
    /// Serves HTTPS under `tls` (whose certificate names `host`) on `listen`; writes the
    /// signing certificate into `dir` for the registry's `rootcertbundle`.
    pub fn start(tls: &Tls, host: &str, listen: SocketAddr, dir: &Path, check: Arc<Check>) -> TokenService {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, ISSUER);
        let cert = params.self_signed(&key).expect("self-signed signing certificate");
        let bundle = dir.join("token-signing.pem");
        fs::write(&bundle, cert.pem()).expect("write the signing certificate");
        let signer = Arc::new(Signer { key, cert_der: cert.der().to_vec() });

        let config = tls.server_config();
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let decisions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (decisions, stop) = (decisions.clone(), stop.clone());
            thread::spawn(move || {
                let seq = Arc::new(AtomicU64::new(0));
                while !stop.load(Ordering::SeqCst) {
                    let Ok((stream, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let (config, check, signer, decisions, seq) =
                        (config.clone(), check.clone(), signer.clone(), decisions.clone(), seq.clone());
                    thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(conn, stream), &*check, &signer, &decisions, &seq);
                    });
                }
            })
        };
        TokenService { addr, host: host.to_owned(), bundle, decisions, stop, thread: Some(thread) }
    }

    /// The realm URL the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("https://{}:{}/token", self.host, self.addr.port())
    }

    /// The signing certificate, for the registry's `rootcertbundle`.
    pub fn root_bundle(&self) -> &Path {
        &self.bundle
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().unwrap().clone()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn serve(stream: Stream, check: &Check, signer: &Signer, decisions: &Mutex<Vec<Decision>>, seq: &AtomicU64) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let param = |name: &str| params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let service = param("service").into_iter().next().unwrap_or_default();
    let scopes = param("scope");
    let basic = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    let outcome = match (&basic, path) {
        (_, p) if p != "/token" => Err(format!("no such path {p}")),
        (None, _) => Err("no credentials".to_owned()),
        (Some((user, secret)), _) => check(user, secret),
    };
    decisions.lock().unwrap().push(Decision {
        username: basic.as_ref().map(|(u, _)| u.clone()),
        outcome: outcome.clone(),
        scopes: scopes.clone(),
    });
    let response = match outcome {
        Ok(_) => {
            let user = basic.map(|(u, _)| u).unwrap_or_default();
            let token = sign(signer, &user, &service, &scopes, seq.fetch_add(1, Ordering::SeqCst));
            let body =
                format!("{{\"token\":\"{token}\",\"access_token\":\"{token}\",\"expires_in\":{TOKEN_LIFETIME}}}");
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        }
        Err(_) => {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Basic realm=\"icr-e2e\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let stream = reader.get_mut();
    let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.flush());
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let mut rest = [0u8; 64];
    let _ = stream.read(&mut rest);
}

/// The registry token for `user`, granting every action of every scope asked for.
fn sign(signer: &Signer, user: &str, service: &str, scopes: &[String], jti: u64) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
        })
        .collect();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&signer.cert_der)],
    });
    let now = now();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user,
        "aud": service,
        "exp": now + TOKEN_LIFETIME,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("icr-e2e-{jti}"),
        "access": access,
    });
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let der = signer.key.sign(input.as_bytes()).expect("ECDSA signature");
    format!("{input}.{}", b64(&ecdsa_raw(&der)))
}

/// An ASN.1 ECDSA signature (SEQUENCE of two INTEGERs) as JWS wants it: `r || s`, 32 bytes each.
fn ecdsa_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "an ECDSA signature is a SEQUENCE");
    let mut at = 2;
    let mut out = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "an INTEGER");
        let len = der[at + 1] as usize;
        let value = &der[at + 2..at + 2 + len];
        let value = &value[value.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - value.len()));
        out.extend_from_slice(value);
        at += 2 + len;
    }
    out
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}
