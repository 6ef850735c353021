//! Real ICR host names on this machine, without touching it: each end-to-end test re-executes
//! itself under `unshare` in private mount, network and PID namespaces, where
//!
//! - `/etc/hosts` is a bind mount of a temp file that maps the ICR names to loopback
//!   (`::1`, see [`AUTH_IP`]; an open registry's name to `127.0.0.2`),
//! - `/etc/docker` and `/etc/containers` are bind mounts of temp copies with a `certs.d` that
//!   trusts the test CA (dockerd reads `/etc/docker/certs.d/<host>/ca.crt`; skopeo, podman and
//!   buildah read `/etc/containers/certs.d/<host>/ca.crt`),
//! - the loopback interface is private, so the registry can listen on port 443 in
//!   several tests at once, and the fake IAM (in-process) is reachable only from inside,
//! - every process left when the test ends is killed with the PID namespace.
//!
//! Clients therefore reach `https://us.icr.io` exactly as on a user's machine, and the helper
//! recognises it through its built-in region table. Nothing outside the namespaces changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::registry::Tls;
use super::{require_tool, run_bounded, COMMAND_TIMEOUT};

/// The ICR names served by the authenticating registry on `[::1]:443`.
pub const ICR_HOSTS: &[&str] = &["us.icr.io", "de.icr.io", "private.jp.icr.io", "icr.io", "registry.ng.bluemix.net"];

/// A host that looks like ICR but is not; it resolves to the same registry, so a helper that
/// answered it would be caught handing the key to a stranger.
pub const SPOOFED_HOST: &str = "us.icr.io.evil.example";

/// An ICR name served by a second, open registry on `127.0.0.2:443`.
pub const OPEN_HOST: &str = "au.icr.io";

/// Where the authenticating registry listens: the IPv6 loopback, because dockerd treats every
/// registry that resolves into 127.0.0.0/8 as insecure (a built-in `--insecure-registry`
/// that cannot be turned off) and, once HTTPS answers 401, retries over plain HTTP and reports
/// that failure instead of the registry's refusal. On `::1` it speaks HTTPS only, as to ICR.
pub const AUTH_IP: &str = "::1";
/// Where the open registry listens.
pub const OPEN_IP: &str = "127.0.0.2";

/// The name of the registry's token service (the realm), on [`AUTH_IP`].
pub const TOKEN_HOST: &str = "token.icr-e2e.test";

/// Runs the test `name` (the function calling this, by its path in the test binary) inside
/// fresh namespaces (`common::namespace::isolated`), with the files and network below set up,
/// and `body` there.
pub fn in_namespace(name: &str, body: impl FnOnce(&Namespace)) {
    crate::common::namespace::isolated(name, || body(&Namespace::enter()));
}

/// The inside of the namespaces: the temp files behind the bind mounts, and the test CA that
/// the clients there trust for every name.
pub struct Namespace {
    dir: TempDir,
    tls: Tls,
}

impl Namespace {
    fn enter() -> Namespace {
        let dir = tempfile::Builder::new().prefix("icr-e2e-ns-").tempdir().expect("create namespace temp dir");
        let mut names: Vec<&str> = ICR_HOSTS.to_vec();
        names.extend([SPOOFED_HOST, OPEN_HOST, TOKEN_HOST, AUTH_IP, OPEN_IP]);
        let tls_dir = dir.path().join("tls");
        fs::create_dir_all(&tls_dir).expect("create tls dir");
        let tls = Tls::generate(&tls_dir, &names);
        let namespace = Namespace { dir, tls };

        let hosts = namespace.dir.path().join("hosts");
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
        text.push_str(&format!("{AUTH_IP} {} {SPOOFED_HOST} {TOKEN_HOST}\n", ICR_HOSTS.join(" ")));
        text.push_str(&format!("{OPEN_IP} {OPEN_HOST}\n"));
        fs::write(&hosts, text).expect("write hosts");
        bind(&hosts, Path::new("/etc/hosts"));

        for (etc, package) in [("/etc/docker", "docker-registry"), ("/etc/containers", "containers-common")] {
            let etc = Path::new(etc);
            assert!(etc.is_dir(), "{} is missing: install the Debian package `{package}`", etc.display());
            let copy = namespace.dir.path().join(etc.file_name().expect("a name"));
            let cp = require_tool("cp", "coreutils");
            run_ok(cp, &["-a", etc.to_str().expect("UTF-8"), copy.to_str().expect("UTF-8")]);
            let certs_d = copy.join("certs.d");
            let _ = fs::remove_dir_all(&certs_d);
            for host in names.iter().filter(|n| !n.starts_with("127.")) {
                namespace.tls.write_certs_d(&certs_d, host);
            }
            bind(&copy, etc);
        }
        namespace
    }

    /// The certificate every registry in the namespace serves: valid for all the names above.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// A scratch directory that lives as long as the namespace.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("scratch").join(name);
        fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }
}

fn bind(source: &Path, target: &Path) {
    let mount = require_tool("mount", "mount");
    run_ok(mount, &["--bind", source.to_str().expect("UTF-8"), target.to_str().expect("UTF-8")]);
}

fn run_ok(program: PathBuf, args: &[&str]) {
    let mut command = Command::new(program);
    command.args(args);
    run_bounded(command, None, COMMAND_TIMEOUT).assert_success();
}
