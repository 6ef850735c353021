//! Enterprise networks, with real parts: Debian's tinyproxy on loopback, with and without Basic
//! authentication, in front of an HTTPS IAM (the fake IAM behind a TLS front whose certificate
//! comes from a throwaway CA) under a name that is not loopback, `iam.corp.test`. Each test runs
//! in private namespaces (`common::namespace`) where `/etc/hosts` gives that name an address
//! that only the proxy is told to use: tinyproxy makes its connections from 127.0.0.3, so the
//! TLS front can tell a request that came through the proxy from one that came directly. A third
//! front, `proxy.corp.test`, is an HTTPS proxy: a TLS tunnel to the first tinyproxy.
//! The CA is trusted in each of the four ways: the system's store (its bundle replaced by a bind
//! mount), SSL_CERT_FILE, SSL_CERT_DIR, and the config file's iamCaFile.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::iam::{cr_token, fake_iam, API_KEY, PROFILE_ID};
use common::namespace::{bind, isolated, run};
use common::tls::{Tls, TlsFront};
use common::{tool, Output, Scenario};
use fake_iam::FakeIam;

const HOST: &str = "iam.corp.test";
const ENDPOINT: &str = "https://iam.corp.test:8443";
/// Where IAM answers, as `/etc/hosts` says, and an address outside loopback for CIDR rules.
const IAM_IP: &str = "10.20.30.40";
/// Where tinyproxy listens, and the address its own connections come from.
const PROXY_PORT: u16 = 3128;
const AUTH_PROXY_PORT: u16 = 3129;
const PROXY_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// The HTTPS proxy: tinyproxy behind a TLS front, under a name of its own.
const TLS_PROXY_HOST: &str = "proxy.corp.test";
const TLS_PROXY_IP: &str = "10.20.30.41";
const TLS_PROXY_PORT: u16 = 3443;
const PROXY_USER: &str = "builder";
const PROXY_PASSWORD: &str = "proxy-pass-w0rd-never-shown";

/// The corporate network inside the namespaces: IAM behind TLS under a name, two proxies.
struct Corp {
    dir: tempfile::TempDir,
    tls: Tls,
    iam: FakeIam,
    front: TlsFront,
    _tls_proxy: TlsFront,
    _proxies: Vec<Tinyproxy>,
}

impl Corp {
    fn new() -> Corp {
        let dir = tempfile::tempdir().unwrap();
        for ip in [IAM_IP, TLS_PROXY_IP] {
            run(&tool("ip"), &["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
        }
        let hosts = dir.path().join("hosts");
        fs::write(&hosts, format!("127.0.0.1 localhost\n{IAM_IP} {HOST}\n{TLS_PROXY_IP} {TLS_PROXY_HOST}\n")).unwrap();
        bind(&hosts, Path::new("/etc/hosts"));
        let tls = Tls::generate(dir.path(), &[HOST, IAM_IP, TLS_PROXY_HOST]);
        let iam = fake_iam(|c| c);
        let front = TlsFront::start(&tls, SocketAddr::new(IAM_IP.parse().unwrap(), 8443), iam.addr());
        let proxies = vec![
            Tinyproxy::start(dir.path(), PROXY_PORT, None),
            Tinyproxy::start(dir.path(), AUTH_PROXY_PORT, Some((PROXY_USER, PROXY_PASSWORD))),
        ];
        let tls_proxy = TlsFront::tunnel(
            &tls,
            SocketAddr::new(TLS_PROXY_IP.parse().unwrap(), TLS_PROXY_PORT),
            SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)),
        );
        Corp { dir, tls, iam, front, _tls_proxy: tls_proxy, _proxies: proxies }
    }

    /// A scenario whose `get` exchanges the API key at `endpoint` in bearer mode.
    fn scenario(&self, endpoint: &str) -> Scenario {
        let mut s = Scenario::with_endpoint(endpoint);
        s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
        s
    }

    /// Whether every connection IAM saw came through the proxy, and how many there were.
    fn through_the_proxy(&self) -> (bool, usize) {
        let peers = self.front.peers();
        (peers.iter().all(|p| *p == PROXY_SOURCE), peers.len())
    }

    fn ca(&self) -> &Path {
        &self.tls.ca_pem
    }
}

/// Debian's tinyproxy in the foreground, killed when dropped.
struct Tinyproxy(Child);

impl Tinyproxy {
    fn start(dir: &Path, port: u16, auth: Option<(&str, &str)>) -> Tinyproxy {
        let conf = dir.join(format!("tinyproxy-{port}.conf"));
        let mut text = format!(
            "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nBind {PROXY_SOURCE}\nTimeout 20\nMaxClients 20\nAllow 127.0.0.1\nConnectPort 8443\nConnectPort 9443\nDisableViaHeader Yes\nLogLevel Info\n"
        );
        if let Some((user, password)) = auth {
            text.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        fs::write(&conf, text).unwrap();
        let child = Command::new(tool("tinyproxy"))
            .args(["-d", "-c", conf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Tinyproxy(child)
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The four exchanges with IAM, each as a scenario at `endpoint` with `setup` applied: an API
/// key for a bearer token, an API key for a refresh token (client `bx`), that refresh token for
/// a bearer token (grant `refresh_token`), and a trusted profile. Runs each and checks its
/// answer; returns how many IAM requests they made.
fn every_exchange(corp: &Corp, endpoint: &str, setup: impl Fn(&mut Scenario)) -> u64 {
    let before = corp.iam.request_count();
    let mut bearer = corp.scenario(endpoint);
    setup(&mut bearer);
    bearer_answer(&bearer.get("us.icr.io"));
    let mut refresh = corp.scenario(endpoint);
    refresh.set("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    setup(&mut refresh);
    let (username, refresh_token) = refresh.get("us.icr.io").answer("us.icr.io");
    assert_eq!(username, "iamrefresh");
    let mut refreshed = Scenario::with_endpoint(endpoint);
    refreshed.set("IBMCLOUD_IAM_REFRESH_TOKEN", &refresh_token).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    setup(&mut refreshed);
    bearer_answer(&refreshed.get("us.icr.io"));
    let mut profile = Scenario::with_endpoint(endpoint);
    profile.set("IBMCLOUD_CR_PROFILE", PROFILE_ID).set("IBMCLOUD_CR_TOKEN", cr_token());
    setup(&mut profile);
    bearer_answer(&profile.get("us.icr.io"));
    corp.iam.request_count() - before
}

/// Both proxies: `(variable, value)` for the one without and the one with Basic authentication.
fn both_proxies() -> [String; 2] {
    [proxy_url(PROXY_PORT), format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{AUTH_PROXY_PORT}")]
}

#[track_caller]
fn bearer_answer(out: &Output) {
    let (username, _) = out.answer("us.icr.io");
    assert_eq!(username, "iambearer", "{out}");
}

#[test]
fn every_exchange_goes_through_the_proxy_each_variable_names_and_only_through_it() {
    isolated("every_exchange_goes_through_the_proxy_each_variable_names_and_only_through_it", || {
        let corp = Corp::new();
        let bare = format!("127.0.0.1:{PROXY_PORT}");
        let [plain, authenticated] = both_proxies();
        let mut requests = 0;
        for (variable, value) in [
            ("HTTPS_PROXY", &plain),
            ("https_proxy", &authenticated),
            ("ALL_PROXY", &authenticated),
            ("all_proxy", &bare),
        ] {
            requests += every_exchange(&corp, ENDPOINT, |s| {
                s.set("SSL_CERT_FILE", corp.ca()).set(variable, value);
            });
        }
        // A proxy reached over TLS, its certificate trusted as IAM's is.
        requests += every_exchange(&corp, ENDPOINT, |s| {
            s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", format!("https://{TLS_PROXY_HOST}:{TLS_PROXY_PORT}"));
        });
        let (through, connections) = corp.through_the_proxy();
        assert!(through && connections >= 20, "IAM saw connections not from the proxy: {:?}", corp.front.peers());
        assert_eq!(requests, 20);
        // HTTP_PROXY is for http:// URLs, as for curl and Go: an https IAM is reached directly.
        every_exchange(&corp, ENDPOINT, |s| {
            s.set("SSL_CERT_FILE", corp.ca()).set("HTTP_PROXY", &plain).set("http_proxy", &plain);
        });
        let peers = corp.front.peers();
        assert!(peers[connections..].iter().all(|p| *p != PROXY_SOURCE), "{peers:?}");
    });
}

#[test]
fn a_proxy_with_basic_authentication_gets_the_credentials_of_its_url_and_a_refusal_says_407() {
    isolated("a_proxy_with_basic_authentication_gets_the_credentials_of_its_url_and_a_refusal_says_407", || {
        let corp = Corp::new();
        let with = |userinfo: &str| format!("http://{userinfo}@127.0.0.1:{AUTH_PROXY_PORT}");
        let mut s = corp.scenario(ENDPOINT);
        s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", with(&format!("{PROXY_USER}:{PROXY_PASSWORD}")));
        bearer_answer(s.get("us.icr.io").never_shows(PROXY_PASSWORD));
        assert!(corp.through_the_proxy().0);

        let refused = |proxy: &str, shown: &str, answer: &str| {
            let mut s = corp.scenario(ENDPOINT);
            s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", proxy);
            let line = s.get("us.icr.io").never_shows(PROXY_PASSWORD).never_shows("wrong-password-x").error_line();
            assert_eq!(
                line,
                format!(
                    "the proxy {shown} (from HTTPS_PROXY) refused to connect to IAM at {ENDPOINT}: it answered {answer}: check the user and password in the proxy URL"
                )
            );
        };
        // No credentials: 407. Wrong ones: tinyproxy answers 401 (squid would say 407 again).
        refused(&proxy_url(AUTH_PROXY_PORT), &proxy_url(AUTH_PROXY_PORT), "407 Proxy Authentication Required");
        refused(&with(&format!("{PROXY_USER}:wrong-password-x")), &with(PROXY_USER), "401 Unauthorized");
        assert_eq!(corp.iam.request_count(), 1);
    });
}

#[test]
fn a_proxy_that_refuses_or_fails_is_named_with_its_answer() {
    isolated("a_proxy_that_refuses_or_fails_is_named_with_its_answer", || {
        let corp = Corp::new();
        // Nothing listens there.
        let dead = proxy_url(unused_port());
        let mut s = corp.scenario(ENDPOINT);
        s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", &dead);
        let line = s.get("us.icr.io").error_line();
        assert!(
            line.starts_with(&format!("cannot connect to the proxy {dead} (from HTTPS_PROXY) for IAM at {ENDPOINT}: "))
                && line.contains("refused"),
            "{line}"
        );
        // The proxy may not go there (a port it does not allow): its own refusal comes back.
        let refused = |endpoint: &str| {
            let mut s = corp.scenario(endpoint);
            s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", proxy_url(PROXY_PORT));
            s.get("us.icr.io").error_line()
        };
        let line = refused(&format!("https://{HOST}:8444"));
        let expected = format!(
            "the proxy {} (from HTTPS_PROXY) refused to connect to IAM at https://{HOST}:8444: it answered 403 Forbidden",
            proxy_url(PROXY_PORT)
        );
        assert_eq!(line, expected);
        // The proxy cannot reach the target (nothing listens there): its gateway error comes back.
        let line = refused(&format!("https://{HOST}:9443"));
        let expected = format!(
            "the proxy {} (from HTTPS_PROXY) could not connect to IAM at https://{HOST}:9443: it answered 500 Internal Server Error",
            proxy_url(PROXY_PORT)
        );
        assert_eq!(line, expected, "tinyproxy's answer when it cannot connect");
        assert_eq!(corp.front.peers(), Vec::<IpAddr>::new());
    });
}

#[test]
fn a_socks_proxy_is_refused_and_never_bypassed_and_https_proxy_wins_over_it() {
    isolated("a_socks_proxy_is_refused_and_never_bypassed_and_https_proxy_wins_over_it", || {
        let corp = Corp::new();
        for socks in
            ["socks5://127.0.0.1:1080", "socks5h://someone:secret-socks@127.0.0.1:1080", "socks4://127.0.0.1:1080"]
        {
            let mut s = corp.scenario(ENDPOINT);
            s.set("SSL_CERT_FILE", corp.ca()).set("ALL_PROXY", socks);
            let line = s.get("us.icr.io").never_shows("secret-socks").error_line();
            assert!(line.starts_with("ALL_PROXY names a SOCKS proxy"), "{line}");
        }
        assert_eq!(corp.front.peers(), Vec::<IpAddr>::new(), "no connection was made around the proxy");
        let mut s = corp.scenario(ENDPOINT);
        s.set("SSL_CERT_FILE", corp.ca())
            .set("ALL_PROXY", "socks5://127.0.0.1:1080")
            .set("HTTPS_PROXY", proxy_url(PROXY_PORT));
        bearer_answer(&s.get("us.icr.io"));
        assert_eq!(corp.through_the_proxy(), (true, 1));
    });
}

#[test]
fn no_proxy_sends_a_name_or_an_address_range_directly() {
    isolated("no_proxy_sends_a_name_or_an_address_range_directly", || {
        let corp = Corp::new();
        let direct = |endpoint: &str, no_proxy: &str| {
            let before = corp.front.peers().len();
            let mut s = corp.scenario(endpoint);
            s.set("SSL_CERT_FILE", corp.ca()).set("HTTPS_PROXY", proxy_url(PROXY_PORT)).set("NO_PROXY", no_proxy);
            bearer_answer(&s.get("us.icr.io"));
            corp.front.peers()[before..].iter().all(|p| *p != PROXY_SOURCE)
        };
        assert!(direct(ENDPOINT, "corp.test"), "a name covers the hosts under it");
        assert!(direct(ENDPOINT, "example.com, .corp.test"));
        assert!(direct(ENDPOINT, "iam.corp.test:8443"));
        assert!(!direct(ENDPOINT, "iam.corp.test:443"), "another port is proxied");
        assert!(!direct(ENDPOINT, "notcorp.test"));
        let by_address = format!("https://{IAM_IP}:8443");
        assert!(direct(&by_address, "10.0.0.0/8"));
        assert!(direct(&by_address, IAM_IP));
        assert!(!direct(&by_address, "10.20.31.0/24"));
        assert!(direct(ENDPOINT, "*"));
    });
}

#[test]
fn the_ca_is_trusted_through_the_system_store_ssl_cert_file_ssl_cert_dir_and_iam_ca_file() {
    isolated("the_ca_is_trusted_through_the_system_store_ssl_cert_file_ssl_cert_dir_and_iam_ca_file", || {
        let corp = Corp::new();
        // Not trusted at all: the line says which host, and the three ways.
        let mut s = corp.scenario(ENDPOINT);
        s.set("HTTPS_PROXY", proxy_url(PROXY_PORT));
        let line = s.get("us.icr.io").error_line();
        assert_eq!(
            line,
            format!(
                "TLS with IAM at {ENDPOINT} through the proxy {} (from HTTPS_PROXY) failed: the certificate of {HOST} is issued by a certificate authority this machine does not trust; trust it by adding it to the system's trust store, by pointing SSL_CERT_FILE or SSL_CERT_DIR at it, or with \"iamCaFile\" in the config file",
                proxy_url(PROXY_PORT)
            )
        );
        let dir = corp.dir.path().join("certs");
        fs::create_dir(&dir).unwrap();
        fs::copy(corp.ca(), dir.join("corp-ca.pem")).unwrap();
        let ssl_cert_dir = format!("{}:{}", corp.dir.path().join("missing").display(), dir.display());
        let through_both = |trust: &dyn Fn(&mut Scenario)| {
            for proxy in both_proxies() {
                let requests = every_exchange(&corp, ENDPOINT, |s| {
                    trust(s);
                    s.set("HTTPS_PROXY", &proxy);
                });
                assert_eq!(requests, 4);
            }
        };
        // SSL_CERT_FILE; SSL_CERT_DIR (a directory of PEM files, among other directories); the
        // config file's iamCaFile, beside the system's store.
        through_both(&|s| {
            s.set("SSL_CERT_FILE", corp.ca());
        });
        through_both(&|s| {
            s.set("SSL_CERT_DIR", &ssl_cert_dir);
        });
        through_both(&|s| {
            s.write_config_json(&serde_json::json!({ "iamCaFile": corp.ca() }));
        });
        // The system's store: its bundle, with the CA added, bind-mounted over the real one.
        let bundle = corp.dir.path().join("ca-certificates.crt");
        let system = fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").expect("Debian's ca-certificates bundle");
        fs::write(&bundle, system + &fs::read_to_string(corp.ca()).unwrap()).unwrap();
        bind(&bundle, Path::new("/etc/ssl/certs/ca-certificates.crt"));
        through_both(&|_| {});
        assert!(corp.through_the_proxy().0, "{:?}", corp.front.peers());
        assert_eq!(corp.front.peers().len(), 1 + 32, "the refused handshake, then 32 exchanges");
    });
}

#[test]
fn without_any_system_store_the_bundled_roots_and_iam_ca_file_are_trusted() {
    isolated("without_any_system_store_the_bundled_roots_and_iam_ca_file_are_trusted", || {
        let corp = Corp::new();
        // A distroless-like system: no bundle and no certificate directory anywhere OpenSSL looks.
        let empty = corp.dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        for dir in ["/etc/ssl", "/usr/lib/ssl"] {
            if Path::new(dir).exists() {
                bind(&empty, Path::new(dir));
            }
        }
        let mut s = corp.scenario(ENDPOINT);
        s.set("HTTPS_PROXY", proxy_url(PROXY_PORT));
        assert!(s.get("us.icr.io").error_line().contains("does not trust"));
        s.write_config_json(&serde_json::json!({ "iamCaFile": copy_to(corp.ca(), &corp.dir.path().join("private")) }));
        bearer_answer(&s.get("us.icr.io"));
    });
}

#[test]
fn a_loopback_iam_is_never_reached_through_a_proxy_whatever_the_environment_says() {
    // Finding 4: with proxy variables set, a plain-http loopback IAM got the API key through the
    // proxy, in clear text. A listener stands where the proxy would be and must see nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let iam = fake_iam(|c| c);
    for endpoint in [iam.url(), iam.url().replace("127.0.0.1", "localhost")] {
        let mut s = Scenario::with_endpoint(&endpoint);
        s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
        for variable in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            s.set(variable, &proxy);
        }
        for no_proxy in ["", "example.com", "10.0.0.0/8"] {
            s.set("NO_PROXY", no_proxy).set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
            bearer_answer(&s.get("us.icr.io"));
        }
    }
    assert!(listener.accept().is_err(), "the loopback IAM was reached through the proxy");
    assert_eq!(iam.request_count(), 6);
}

fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn copy_to(file: &Path, dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let to = dir.join("ca.pem");
    fs::copy(file, &to).unwrap();
    to
}
