//! A real container registry on loopback for end-to-end tests: a CNCF distribution registry
//! process ([`Registry`]), with a certificate from a throwaway CA (`common::tls::Tls`), serving
//! HTTPS on 127.0.0.1 with an OS-chosen port, and filesystem storage in a temp dir. It
//! authenticates as ICR does, through a token service (`support::token_service`: the client
//! takes the helper's username and secret to the realm, which checks them against the fake
//! IAM), or with htpasswd (bcrypt) for the harness's own tests, or not at all. The process is
//! killed when the [`Registry`] is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use crate::common::tls::Tls;

use super::{require_tool, run_bounded, COMMAND_TIMEOUT};

/// How long a freshly started registry may take to answer `/v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports to try when another process grabs ours between probe and bind.
const PORT_ATTEMPTS: usize = 5;

/// How a [`Registry`] authenticates clients.
enum Auth {
    /// Anyone may pull and push.
    Anonymous,
    /// htpasswd (bcrypt) with these users.
    Htpasswd(Vec<(String, String)>),
    /// Bearer tokens from a token service at `realm`, for `service`, signed by the certificate
    /// in `bundle` and issued by `issuer`.
    Token { realm: String, service: String, issuer: String, bundle: PathBuf },
}

/// Where a [`Registry`] listens and which certificate it serves.
pub struct Listen {
    /// A loopback address (`127.0.0.1`, another of 127/8, or `::1`).
    pub ip: String,
    /// A fixed port (`443` under the real ICR names); `None` picks a free one.
    pub port: Option<u16>,
    /// The certificate to serve; `None` generates one for the address alone.
    pub tls: Option<Tls>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen { ip: "127.0.0.1".to_owned(), port: None, tls: None }
    }
}

/// A running distribution registry (`/usr/bin/docker-registry serve`) on `IP:PORT`.
pub struct Registry {
    child: Child,
    ip: String,
    port: u16,
    dir: TempDir,
    tls: Tls,
    cert_dir: PathBuf,
}

impl Registry {
    /// A registry that requires basic auth; `users` are (name, password) pairs.
    pub fn with_users(users: &[(&str, &str)]) -> Registry {
        Self::with_users_on(users, Listen::default())
    }

    /// A registry without authentication, for anonymous pulls.
    pub fn anonymous() -> Registry {
        Self::anonymous_on(Listen::default())
    }

    /// [`Registry::with_users`] at a chosen address, port and certificate.
    pub fn with_users_on(users: &[(&str, &str)], listen: Listen) -> Registry {
        let users = users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect();
        Self::start(Auth::Htpasswd(users), &listen)
    }

    /// [`Registry::anonymous`] at a chosen address, port and certificate.
    pub fn anonymous_on(listen: Listen) -> Registry {
        Self::start(Auth::Anonymous, &listen)
    }

    /// A registry that takes bearer tokens of `tokens` only, as ICR does; `service` is the
    /// audience the tokens must name.
    pub fn with_token_service_on(
        tokens: &super::token_service::TokenService,
        service: &str,
        listen: Listen,
    ) -> Registry {
        let auth = Auth::Token {
            realm: tokens.realm(),
            service: service.to_owned(),
            issuer: super::token_service::ISSUER.to_owned(),
            bundle: tokens.root_bundle().to_owned(),
        };
        Self::start(auth, &listen)
    }

    fn start(auth: Auth, listen: &Listen) -> Registry {
        let binary = require_tool("docker-registry", "docker-registry");
        let mut failures = Vec::new();
        let attempts = if listen.port.is_some() { 1 } else { PORT_ATTEMPTS };
        for _ in 0..attempts {
            match Self::try_start(&binary, &auth, listen) {
                Ok(registry) => return registry,
                Err((failure, port_taken)) => {
                    failures.push(failure);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the test registry did not come up:\n{}", failures.join("\n---\n"));
    }

    /// One attempt on a fresh port and a fresh dir; the error says whether another process
    /// took the port (worth another attempt) or something else went wrong.
    fn try_start(binary: &Path, auth: &Auth, listen: &Listen) -> Result<Registry, (String, bool)> {
        let dir = tempfile::Builder::new().prefix("icr-e2e-registry-").tempdir().expect("create registry temp dir");
        let tls = match &listen.tls {
            Some(tls) => tls.clone(),
            None => Tls::generate(dir.path(), &[listen.ip.as_str()]),
        };
        if let Auth::Htpasswd(users) = auth {
            let htpasswd = dir.path().join("htpasswd");
            File::create(&htpasswd).expect("create htpasswd");
            for (user, password) in users {
                append_htpasswd(&htpasswd, user, password);
            }
        }
        fs::create_dir_all(dir.path().join("storage")).expect("create storage dir");
        let ip = listen.ip.clone();
        let port = listen.port.unwrap_or_else(|| free_port(&ip));
        let host = socket_host(&ip, port);
        let cert_dir = tls.write_certs_d(&dir.path().join("certs.d"), &host);
        let config = dir.path().join("config.yml");
        fs::write(&config, config_yaml(dir.path(), &tls, &host, auth)).expect("config.yml");
        let log = File::create(dir.path().join("registry.log")).expect("create log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut registry = Registry { child, ip, port, dir, tls, cert_dir };
        match registry.wait_ready(!matches!(auth, Auth::Anonymous)) {
            Ok(()) => Ok(registry),
            Err(failure) => {
                // Drop kills whatever is left of the process.
                let log = registry.log();
                let port_taken = log.contains("address already in use");
                Err((format!("{host}: {failure}\n{log}"), port_taken))
            }
        }
    }

    /// `IP:PORT` (`127.0.0.1:PORT` by default), the registry's name as clients and credential
    /// helpers see it when no host name maps to it.
    pub fn host(&self) -> String {
        socket_host(&self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The per-host certificate directory (`…/certs.d/127.0.0.1:PORT`, holding `ca.crt`) for
    /// skopeo's `--cert-dir`, `--src-cert-dir` and `--dest-cert-dir`.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    /// The `certs.d` root above [`Registry::cert_dir`], laid out as containers-certs.d(5).
    pub fn certs_d(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// The bcrypt htpasswd file the registry checks (absent for an anonymous registry).
    pub fn htpasswd_path(&self) -> PathBuf {
        self.dir.path().join("htpasswd")
    }

    /// Adds a user to the htpasswd file; the registry notices the changed file on the next
    /// request.
    pub fn add_user(&self, user: &str, password: &str) {
        append_htpasswd(&self.htpasswd_path(), user, password);
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Everything the registry has logged so far (level debug, text format).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The users the registry has authenticated so far, in order, from its
    /// `auth.user.name=<user>` log fields.
    pub fn authenticated_users(&self) -> Vec<String> {
        self.authenticated_users_since(0)
    }

    /// A mark in the log, for [`Registry::authenticated_users_since`].
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// The users the registry has authenticated after `mark` (from [`Registry::log_mark`]).
    pub fn authenticated_users_since(&self, mark: usize) -> Vec<String> {
        let log = self.log();
        let mut users: Vec<String> = log
            .get(mark..)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("auth.user.name="))
            .map(|user| user.trim_matches('"').to_string())
            .collect();
        users.dedup();
        users
    }

    /// Polls `GET https://HOST/v2/` until it answers as this registry should (401 with auth,
    /// 200 without), the process exits, or [`READY_TIMEOUT`] passes.
    fn wait_ready(&mut self, with_auth: bool) -> Result<(), String> {
        let expected = if with_auth { 401 } else { 200 };
        let agent = self.https_agent();
        let url = format!("https://{}/v2/", self.host());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll registry") {
                return Err(format!("registry exited with {status}"));
            }
            let last = match agent.get(&url).call() {
                Ok(response) if response.status().as_u16() == expected => return Ok(()),
                Ok(response) => format!("GET {url} answered {}", response.status()),
                Err(e) => format!("GET {url}: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready after {READY_TIMEOUT:?} (wanted {expected}): {last}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// An HTTPS client that trusts only this registry's CA and reports every status as a value.
    pub fn https_agent(&self) -> ureq::Agent {
        let ca = ureq::tls::Certificate::from_pem(self.tls.ca_text().as_bytes()).expect("parse test CA").to_owned();
        let tls =
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca]))).build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `IP:PORT`, with an IPv6 address in brackets.
fn socket_host(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A port the OS considers free right now. The listener is closed before the registry binds,
/// so another process may take the port in between; [`Registry::start`] retries then.
fn free_port(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    listener.local_addr().expect("local addr").port()
}

/// The most of a password that bcrypt reads.
const BCRYPT_MAX_BYTES: usize = 72;

/// Appends `user:bcrypt(password)` as `htpasswd -Bbn` prints it.
fn append_htpasswd(path: &Path, user: &str, password: &str) {
    let htpasswd = require_tool("htpasswd", "apache2-utils");
    // bcrypt reads only the first 72 bytes of a password (and htpasswd refuses more than
    // 256), so a longer one, such as an IAM token, is hashed by those 72 bytes: the registry
    // then checks that much of it, as it would with any bcrypt htpasswd.
    let password = password.get(..BCRYPT_MAX_BYTES).unwrap_or(password);
    let mut command = Command::new(htpasswd);
    command.env_clear().args(["-Bbn", user, password]);
    let output = run_bounded(command, None, COMMAND_TIMEOUT);
    output.assert_success();
    let line = output.stdout.trim();
    assert!(line.starts_with(&format!("{user}:$2")), "unexpected htpasswd output:\n{output}");
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    writeln!(file, "{line}").expect("append to htpasswd");
}

/// The registry's config. Log level debug, because at info the registry names the
/// authenticated user (`auth.user.name`) only on failed requests, and tests assert on it.
fn config_yaml(dir: &Path, tls: &Tls, addr: &str, auth: &Auth) -> String {
    let auth_section = match auth {
        Auth::Anonymous => String::new(),
        Auth::Htpasswd(_) => {
            format!("auth:\n  htpasswd:\n    realm: icr-e2e\n    path: {}\n", dir.join("htpasswd").display())
        }
        Auth::Token { realm, service, issuer, bundle } => format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            bundle.display()
        ),
    };
    format!(
        "version: 0.1\n\
         log:\n  level: debug\n  formatter: text\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: \"{addr}\"\n  secret: icr-e2e-not-a-secret\n\
         \x20 tls:\n    certificate: {cert}\n    key: {key}\n\
         {auth_section}",
        storage = dir.join("storage").display(),
        cert = tls.cert_pem.display(),
        key = tls.key_pem.display(),
    )
}
