//! The real container clients, driven the same way: `login`, `pull`, `push`, `logout`.
//!
//! - docker: Debian's `docker` CLI (which calls the helper) talking to a private `dockerd`
//!   (Debian `docker.io`) with its own data root, exec root and socket, vfs storage and no
//!   networking of its own; `DOCKER_CONFIG` holds the `credHelpers`.
//! - podman (rootful) and buildah: vfs storage under the test's HOME.
//! - skopeo: no storage; a pull is `inspect` plus `copy` to an OCI directory.
//!
//! podman, buildah and skopeo find the `credHelpers` in `REGISTRY_AUTH_FILE`.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{require_tool, write_json, Helper, Output};

/// How long dockerd may take to answer on its socket, and to shut down.
const DOCKERD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Docker,
    Podman,
    Buildah,
    Skopeo,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Docker => "docker",
            Client::Podman => "podman",
            Client::Buildah => "buildah",
            Client::Skopeo => "skopeo",
        })
    }
}

/// A client ready to run in a [`Helper`]'s isolated HOME, with the `credHelpers` of `hosts`
/// pointing at the helper, and for docker a daemon of its own.
pub struct Session {
    // Declared first so that it is dropped first: dockerd stops before its HOME goes away.
    dockerd: Option<Dockerd>,
    pub client: Client,
    pub helper: Helper,
}

impl Session {
    pub fn new(client: Client, hosts: &[&str]) -> Session {
        let mut helper = Helper::new();
        let helpers: serde_json::Map<String, serde_json::Value> =
            hosts.iter().map(|h| (h.to_string(), json!("icr"))).collect();
        let auth = json!({ "credHelpers": helpers });
        let docker_config = helper.home().join(".docker");
        write_json(&docker_config.join("config.json"), &auth);
        let auth_file = helper.home().join("auth.json");
        write_json(&auth_file, &auth);
        let dockerd = match client {
            Client::Docker => {
                helper.set_env("DOCKER_CONFIG", &docker_config);
                let dockerd = Dockerd::start(&helper.home().join("dockerd"));
                helper.set_env("DOCKER_HOST", format!("unix://{}", dockerd.socket.display()));
                Some(dockerd)
            }
            _ => {
                helper.set_env("REGISTRY_AUTH_FILE", &auth_file);
                None
            }
        };
        require_tool(&client.to_string(), super::debian_package_of(&client.to_string()));
        Session { dockerd, client, helper }
    }

    /// The files where the client keeps its auth configuration (which must never hold a key).
    pub fn auth_files(&self) -> Vec<PathBuf> {
        vec![self.helper.home().join(".docker").join("config.json"), self.helper.home().join("auth.json")]
    }

    /// `<client> [storage options] args…`
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let storage = self.helper.home().join("storage");
        let (root, runroot) = (storage.join("root"), storage.join("runroot"));
        let (root, runroot) = (root.to_str().expect("UTF-8"), runroot.to_str().expect("UTF-8"));
        let libpod_tmp = storage.join("libpod-tmp");
        let libpod_tmp = libpod_tmp.to_str().expect("UTF-8");
        let mut all: Vec<&str> = match self.client {
            Client::Podman => vec![
                "--root",
                root,
                "--runroot",
                runroot,
                "--tmpdir",
                libpod_tmp,
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ],
            Client::Buildah => vec!["--root", root, "--runroot", runroot, "--storage-driver", "vfs"],
            Client::Docker | Client::Skopeo => vec![],
        };
        all.extend(args);
        self.helper.run(&self.client.to_string(), &all, stdin)
    }

    /// `login -u USER --password-stdin HOST`: the helper's `store`.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.run(&["login", "-u", user, "--password-stdin", host], Some(&format!("{password}\n")))
    }

    /// `logout HOST`: the helper's `erase`.
    pub fn logout(&self, host: &str) -> Output {
        self.run(&["logout", host], None)
    }

    /// Fetches `reference` (`HOST/REPO:TAG`) from the registry: the helper's `get`. skopeo
    /// inspects it, then copies it to an OCI directory; the others pull it into their storage.
    pub fn pull(&self, reference: &str) -> Output {
        match self.client {
            Client::Skopeo => {
                let source = format!("docker://{reference}");
                let inspect = self.run(&["inspect", &source], None);
                if !inspect.success() {
                    return inspect;
                }
                let dir = self.helper.home().join("pulled");
                let dest = format!("oci:{}:pulled", dir.display());
                self.run(&["copy", &source, &dest], None)
            }
            // buildah would otherwise take an image it already has without asking the registry.
            Client::Buildah => self.run(&["pull", "--policy", "always", reference], None),
            _ => self.run(&["pull", reference], None),
        }
    }

    /// Pushes the image that [`Session::pull`] fetched as `source` to `dest` (both
    /// `HOST/REPO:TAG`): the helper's `get` for `dest` (and for skopeo, `source` too).
    pub fn push(&self, source: &str, dest: &str) -> Output {
        match self.client {
            Client::Skopeo => {
                let (source, dest) = (format!("docker://{source}"), format!("docker://{dest}"));
                self.run(&["copy", &source, &dest], None)
            }
            _ => {
                let tag = self.run(&["tag", source, dest], None);
                if !tag.success() {
                    return tag;
                }
                self.run(&["push", dest], None)
            }
        }
    }

    /// What dockerd logged, for failure messages (empty for the other clients).
    pub fn daemon_log(&self) -> String {
        self.dockerd.as_ref().map(Dockerd::log).unwrap_or_default()
    }
}

/// A private `dockerd`: its own data root, exec root, pid file and unix socket under `dir`;
/// vfs storage; no bridge, no iptables. It trusts registries through `/etc/docker/certs.d`.
pub struct Dockerd {
    child: Child,
    dir: PathBuf,
    pub socket: PathBuf,
}

impl Dockerd {
    pub fn start(dir: &Path) -> Dockerd {
        let binary = require_tool("dockerd", "docker.io");
        fs::create_dir_all(dir).expect("create dockerd dir");
        let socket = dir.join("docker.sock");
        let log = File::create(dir.join("dockerd.log")).expect("create dockerd log");
        let path = |name: &str| dir.join(name).to_str().expect("UTF-8").to_owned();
        let child = Command::new(binary)
            .args(["--data-root", &path("data"), "--exec-root", &path("exec"), "--pidfile", &path("dockerd.pid")])
            .args(["-H", &format!("unix://{}", socket.display())])
            .args(["--storage-driver=vfs", "--bridge=none", "--iptables=false", "--ip6tables=false"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut dockerd = Dockerd { child, dir: dir.to_path_buf(), socket };
        dockerd.wait_ready();
        dockerd
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Waits until `docker version` reaches the daemon, failing with its log when it exits or
    /// does not answer in time.
    fn wait_ready(&mut self) {
        let docker = require_tool("docker", "docker.io");
        let deadline = Instant::now() + DOCKERD_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll dockerd") {
                panic!("dockerd exited with {status}:\n{}", self.log());
            }
            let mut command = Command::new(&docker);
            command.env_clear().args(["-H", &format!("unix://{}", self.socket.display()), "version"]);
            let output = super::run_bounded(command, None, DOCKERD_TIMEOUT);
            if output.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within {DOCKERD_TIMEOUT:?}:\n{output}\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Dockerd {
    /// SIGTERM, so that dockerd stops the containerd it started; SIGKILL if it lingers. (The
    /// PID namespace ends whatever is left when the test does.)
    fn drop(&mut self) {
        let _ = Command::new("/bin/kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + DOCKERD_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
