//! TLS for the tests: a throwaway CA with a server certificate it signed ([`Tls`]), and a TLS
//! front ([`TlsFront`]) that serves HTTPS under such a certificate for a plain HTTP server
//! behind it (the fake IAM), recording where each connection came from, so that a test can
//! tell a request that came through a proxy from one that came directly.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A throwaway CA and a server certificate it signed, as PEM files in a directory.
#[derive(Clone)]
pub struct Tls {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    ca_text: String,
}

impl Tls {
    /// Generates the CA and a server certificate valid for `names` (DNS names or IP addresses)
    /// plus `127.0.0.1`, `::1` and `localhost`, and writes `ca.pem`, `server.pem` and
    /// `server-key.pem` into `dir`.
    pub fn generate(dir: &Path, names: &[&str]) -> Tls {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "docker-credential-icr e2e test CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut all_names: Vec<String> =
            ["127.0.0.1", "::1", "localhost"].iter().chain(names).map(|n| n.to_string()).collect();
        all_names.dedup();
        let mut params = CertificateParams::new(all_names).expect("server cert params");
        params.distinguished_name.push(DnType::CommonName, "docker-credential-icr e2e registry");
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("sign server cert");

        let tls = Tls {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("server.pem"),
            key_pem: dir.join("server-key.pem"),
            ca_text: ca_cert.pem(),
        };
        fs::write(&tls.ca_pem, &tls.ca_text).expect("write ca.pem");
        fs::write(&tls.cert_pem, cert.pem()).expect("write server.pem");
        fs::write(&tls.key_pem, key.serialize_pem()).expect("write server-key.pem");
        tls
    }

    /// A TLS server's configuration with the server certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&self.cert_pem).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(&self.key_pem).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Arc::new(config)
    }

    /// The CA certificate in PEM form.
    pub fn ca_text(&self) -> &str {
        &self.ca_text
    }

    /// Lays out `<certs_d>/<host>/ca.crt` (containers-certs.d(5), also docker's
    /// `/etc/docker/certs.d`) and returns the per-host directory, which is what skopeo's
    /// `--cert-dir`, `--src-cert-dir` and `--dest-cert-dir` expect.
    pub fn write_certs_d(&self, certs_d: &Path, host: &str) -> PathBuf {
        let dir = certs_d.join(host);
        fs::create_dir_all(&dir).expect("create certs.d/<host>");
        fs::write(dir.join("ca.crt"), &self.ca_text).expect("write ca.crt");
        dir
    }
}

/// HTTPS on `listen` for the plain HTTP server at `backend`, one request at a time per
/// connection (`Content-Length` bodies, as ureq and the fake IAM send them).
pub struct TlsFront {
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// HTTP requests and answers, one at a time per connection.
    pub fn start(tls: &Tls, listen: SocketAddr, backend: SocketAddr) -> TlsFront {
        TlsFront::with(tls, listen, backend, serve)
    }

    /// Bytes both ways, whatever they are: a TLS tunnel to `backend` (an HTTPS proxy, when
    /// `backend` is an HTTP proxy).
    pub fn tunnel(tls: &Tls, listen: SocketAddr, backend: SocketAddr) -> TlsFront {
        TlsFront::with(tls, listen, backend, pipe)
    }

    fn with(tls: &Tls, listen: SocketAddr, backend: SocketAddr, serve: fn(Stream, SocketAddr)) -> TlsFront {
        let config = tls.server_config();
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (peers, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (peers, stop) = (peers.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (stream, peer) = match listener.accept() {
                        Ok(accepted) => accepted,
                        Err(_) => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    peers.lock().unwrap().push(peer.ip());
                    let config = config.clone();
                    thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(conn, stream), backend);
                    });
                }
            })
        };
        TlsFront { addr, peers, stop, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The addresses the connections so far came from.
    pub fn peers(&self) -> Vec<IpAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP message (head and `Content-Length` body) from `from`; `None` at the end.
fn message(from: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).ok()?;
    head.extend(body);
    Some(head)
}

type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// Copies bytes between `tls` and a connection to `backend` until either ends, or 30 s.
fn pipe(mut tls: Stream, backend: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(backend) else { return };
    let slice = Some(Duration::from_millis(5));
    if tls.sock.set_read_timeout(slice).and_then(|()| upstream.set_read_timeout(slice)).is_err() {
        return;
    }
    let waiting = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0; 16 * 1024];
    while std::time::Instant::now() < deadline {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if upstream.write_all(&buf[..n]).is_err() => return,
            Ok(_) => {}
            Err(e) if waiting(&e) => {}
            Err(_) => return,
        }
        match upstream.read(&mut buf) {
            Ok(0) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
            Ok(n) if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() => return,
            Ok(_) => {}
            Err(e) if waiting(&e) => {}
            Err(_) => return,
        }
    }
}

fn serve(tls: Stream, backend: SocketAddr) {
    let mut client = BufReader::new(tls);
    while let Some(request) = message(&mut client) {
        let Ok(mut upstream) = TcpStream::connect(backend) else { return };
        if upstream.write_all(&request).is_err() {
            return;
        }
        let mut upstream = BufReader::new(upstream);
        let Some(response) = message(&mut upstream) else { return };
        if client.get_mut().write_all(&response).and_then(|()| client.get_mut().flush()).is_err() {
            return;
        }
    }
}

/// Writes `text` to `path` (for a CA file or a bundle), creating its directory.
pub fn write_pem(path: &Path, text: &str) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    path.to_owned()
}
