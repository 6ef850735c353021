//! The one harness of the integration tests. A [`Scenario`] is a fresh temporary HOME and a
//! cleared environment in which the built binary runs (with helpers to write the files the
//! helper reads); a [`Run`] is one invocation of it, bounded in time; an [`Output`] is what it
//! left, with the assertions every test uses, each printing the invocation, its exit status,
//! stdout and stderr in full when it fails. [`iam`] has what the IAM tests share (a fake IAM
//! and its tokens), [`procs`] runs crowds of helpers at once, [`kubelet`] speaks the kubelet's
//! side of the plugin API as strictly as the kubelet does.
//!
//! The end-to-end tests' real clients, registry and namespaces are another matter and live in
//! `tests/support`.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod iam;
pub mod kubelet;
pub mod namespace;
pub mod procs;
pub mod terminal;
pub mod tls;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-icr");

/// The longest any single invocation may take before the test fails: the helper's own bound
/// on a `get` (20 s) and room for a loaded machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub const NOT_FOUND: &str = "credentials not found in native keychain\n";
pub const NO_SERVER_URL: &str = "no credentials server URL\n";
pub const NO_USERNAME: &str = "no credentials username\n";

/// The directories searched for programs a test runs (`sh`, `sleep`): Debian's own.
pub const SYSTEM_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// Every host of the registry table (SPEC section 3), written out here rather than taken from
/// the library, so that a row lost from the table fails a test.
pub const ICR_HOSTS: [&str; 33] = [
    "icr.io",
    "private.icr.io",
    "registry.bluemix.net",
    "au.icr.io",
    "private.au.icr.io",
    "registry.au-syd.bluemix.net",
    "br.icr.io",
    "private.br.icr.io",
    "ca2.icr.io",
    "private.ca2.icr.io",
    "ca.icr.io",
    "private.ca.icr.io",
    "de.icr.io",
    "private.de.icr.io",
    "registry.eu-de.bluemix.net",
    "es.icr.io",
    "private.es.icr.io",
    "fr2.icr.io",
    "private.fr2.icr.io",
    "uk.icr.io",
    "private.uk.icr.io",
    "registry.eu-gb.bluemix.net",
    "in.icr.io",
    "private.in.icr.io",
    "in2.icr.io",
    "private.in2.icr.io",
    "jp2.icr.io",
    "private.jp2.icr.io",
    "jp.icr.io",
    "private.jp.icr.io",
    "us.icr.io",
    "private.us.icr.io",
    "registry.ng.bluemix.net",
];

/// One scenario: a temporary HOME with `XDG_CONFIG_HOME` and `XDG_CACHE_HOME` under it, and the
/// environment every run in the scenario gets (nothing else of the test's environment leaks in).
pub struct Scenario {
    dir: tempfile::TempDir,
    env: Vec<(OsString, OsString)>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

impl Scenario {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("icr-test-").tempdir().expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        let mut s = Scenario { dir, env: Vec::new() };
        s.set("HOME", &home)
            .set("XDG_CONFIG_HOME", home.join(".config"))
            .set("XDG_CACHE_HOME", home.join(".cache"))
            .set("PATH", SYSTEM_PATH)
            // Never the network: a test that exchanges at IAM starts a fake and sets its URL.
            .set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", "http://127.0.0.1:9");
        s
    }

    /// A scenario pointed at this IAM.
    pub fn with_iam(iam: &fake_iam::FakeIam) -> Self {
        Scenario::with_endpoint(&iam.url())
    }

    /// A scenario pointed at this IAM endpoint.
    pub fn with_endpoint(endpoint: &str) -> Self {
        let mut s = Scenario::new();
        s.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", endpoint);
        s
    }

    /// A fake IAM on loopback that accepts any API key, and this scenario pointed at it.
    pub fn fake_iam(&mut self) -> fake_iam::FakeIam {
        let iam = fake_iam::FakeIam::start(fake_iam::Config::new().any_apikey(true));
        self.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", iam.url());
        iam
    }

    /// A variable for every later run of this scenario.
    pub fn set(&mut self, name: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.unset(name);
        self.env.push((name.into(), value.as_ref().to_owned()));
        self
    }

    /// Removes a variable from every later run.
    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != name);
        self
    }

    /// A directory beside HOME, for files that belong to no one in particular.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Puts the binary under test on `PATH` as `docker-credential-icr` (a symlink in a bin
    /// directory beside HOME), where docker and podman look for it.
    pub fn put_helper_on_path(&mut self) -> &mut Self {
        let bin = self.root().join("bin");
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("docker-credential-icr")).unwrap();
        let path = format!("{}:{SYSTEM_PATH}", bin.display());
        self.set("PATH", path)
    }

    /// A path under HOME.
    pub fn in_home(&self, relative: &str) -> PathBuf {
        self.home().join(relative)
    }

    /// Writes `contents` at `relative` under HOME; returns the path.
    pub fn write_in_home(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.in_home(relative);
        write_file(&path, contents);
        path
    }

    /// `$XDG_CONFIG_HOME`.
    pub fn config_home(&self) -> PathBuf {
        self.home().join(".config")
    }

    /// `$XDG_CACHE_HOME`.
    pub fn cache_home(&self) -> PathBuf {
        self.home().join(".cache")
    }

    /// `$XDG_CONFIG_HOME/docker-credential-icr`.
    pub fn app_dir(&self) -> PathBuf {
        self.config_home().join("docker-credential-icr")
    }

    pub fn config_path(&self) -> PathBuf {
        self.app_dir().join("config.json")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.app_dir().join("credentials.json")
    }

    /// The default token cache directory, `$XDG_CACHE_HOME/docker-credential-icr`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_home().join("docker-credential-icr")
    }

    /// Writes the config file; returns its path.
    pub fn write_config(&self, json: &str) -> PathBuf {
        let path = self.config_path();
        write_file(&path, json);
        path
    }

    /// Writes the config file from a JSON value; returns its path.
    pub fn write_config_json(&self, config: &serde_json::Value) -> PathBuf {
        self.write_config(&serde_json::to_string_pretty(config).unwrap())
    }

    /// Writes an `ibmcloud` CLI session at `$HOME/.bluemix/config.json`; returns its path.
    pub fn write_session(&self, json: &str) -> PathBuf {
        let path = self.home().join(".bluemix/config.json");
        write_file(&path, json);
        path
    }

    /// Writes `contents` at `relative` under the scenario's root (not HOME); returns the path.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.root().join(relative);
        write_file(&path, contents);
        path
    }

    /// Writes a secret file (a key or a compute-resource token) under HOME, 0600.
    pub fn secret_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.home().join(name);
        write_file(&path, contents);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The binary as a `Command` in this scenario's environment, for tests that manage the
    /// process themselves (a crowd, a pseudo-terminal).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args).env_clear().envs(self.env.iter().map(|(k, v)| (k, v))).current_dir(self.root());
        command
    }

    /// An invocation of the binary with these arguments, to be given env and stdin and run.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Run<'_> {
        Run {
            scenario: self,
            program: None,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            unset: Vec::new(),
            stdin: Vec::new(),
            timeout: TIMEOUT,
            user: None,
        }
    }

    /// Another program, run in this scenario's environment (as `exec` runs one, say).
    pub fn program<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Run<'_> {
        Run { program: Some(program.into()), ..self.cmd(args) }
    }

    /// Runs `args` with `stdin` and the scenario's environment.
    pub fn run(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> Output {
        self.cmd(args).stdin(stdin).run()
    }

    /// `get` for `server_url` (a newline is added, as docker sends it).
    pub fn get(&self, server_url: &str) -> Output {
        self.run(&["get"], format!("{server_url}\n"))
    }

    /// `store` of a login, as `docker login` sends it.
    pub fn store(&self, server_url: &str, username: &str, secret: &str) -> Output {
        self.run(&["store"], store_json(server_url, username, secret))
    }

    pub fn erase(&self, server_url: &str) -> Output {
        self.run(&["erase"], format!("{server_url}\n"))
    }

    pub fn list(&self) -> Output {
        self.run(&["list"], "unused\n")
    }
}

/// A `store` request body.
pub fn store_json(server_url: &str, username: &str, secret: &str) -> String {
    serde_json::json!({ "ServerURL": server_url, "Username": username, "Secret": secret }).to_string()
}

/// The answer `get` gives, byte for byte: the fields in the protocol's order.
pub fn get_answer(server_url: &str, username: &str, secret: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    format!("{{\"ServerURL\":{},\"Username\":{},\"Secret\":{}}}\n", q(server_url), q(username), q(secret))
}

pub fn write_file(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The path of a system program a test runs, or a failure naming it (`.ci/run` installs them).
#[track_caller]
pub fn tool(name: &str) -> String {
    SYSTEM_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| {
            panic!("`{name}` is needed by this test and is not in {SYSTEM_PATH}: install its Debian package")
        })
}

/// Whether the tests run as root (the owner of `/proc/self` is the effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A JWT whose payload is `claims`, signed with nothing: only its `exp` matters to the helper.
pub fn jwt(claims: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{}", b64(r#"{"alg":"RS256","typ":"JWT"}"#), b64(claims), b64("not-a-signature"))
}

/// A JWT that expires `seconds` from now (in the past when negative).
pub fn jwt_expiring_in(seconds: i64) -> String {
    jwt(&format!(r#"{{"iam_id":"IBMid-test","exp":{}}}"#, unix_now() as i64 + seconds))
}

pub struct Run<'a> {
    scenario: &'a Scenario,
    program: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    unset: Vec<OsString>,
    stdin: Vec<u8>,
    timeout: Duration,
    user: Option<(u32, u32)>,
}

impl Run<'_> {
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((name.into(), value.as_ref().to_owned()));
        self
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Leaves out a variable the scenario sets.
    pub fn without(mut self, name: &str) -> Self {
        self.unset.push(name.into());
        self
    }

    /// Runs as this user and group (the tests run as root, and some need someone else).
    #[track_caller]
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        assert!(is_root(), "this test runs the helper as uid {uid}, which only root can do: run the tests as root");
        self.user = Some((uid, gid));
        self
    }

    /// The command this run would start, for a test that starts it itself.
    pub fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(self.program.as_deref().unwrap_or(BIN));
        command
            .args(&self.args)
            .env_clear()
            .envs(
                self.scenario.env.iter().chain(&self.env).filter(|(k, _)| !self.unset.contains(k)).map(|(k, v)| (k, v)),
            )
            .current_dir(self.scenario.root());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }

    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the process and hands back its stdout line by line as it comes, for a test that
    /// acts while the process runs (signals it once it says it is ready).
    pub fn start(self) -> Live {
        let mut command = self.command();
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let description = self.describe();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = reader(child.stderr.take().unwrap());
        Live { child, description, started: Instant::now(), timeout: self.timeout, lines, seen: Vec::new(), stderr }
    }

    /// Starts the process and returns at once, for tests that run several side by side.
    pub fn spawn(self) -> Running {
        let mut command = self.command();
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let description = self.describe();
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = self.stdin;
        // The helper may stop reading early (input over 1 MiB): a broken pipe is no failure.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        let (pid, timeout) = (child.id(), self.timeout);
        let exit = thread::spawn(move || loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        });
        Running { pid, description, exit, timeout, writer, stdout, stderr }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!("{}={:?} ", k.to_string_lossy(), v));
        }
        s.push_str(self.program.as_deref().unwrap_or("docker-credential-icr"));
        for a in &self.args {
            s.push_str(&format!(" {}", a.to_string_lossy()));
        }
        let shown = &self.stdin[..self.stdin.len().min(300)];
        s.push_str(&format!(" <<< {:?}", String::from_utf8_lossy(shown)));
        if self.stdin.len() > 300 {
            s.push_str(&format!(" … ({} bytes)", self.stdin.len()));
        }
        s
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

pub struct Running {
    pid: u32,
    description: String,
    /// A thread that watches the process from its start and reports when it ended (so that
    /// `elapsed` is right however late `wait` is called), or `None` when it was killed for
    /// taking longer than the run's timeout.
    exit: JoinHandle<Option<(std::process::ExitStatus, Duration)>>,
    timeout: Duration,
    writer: JoinHandle<()>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the process, failing the test if it outlived the run's timeout (it is killed).
    pub fn wait(self) -> Output {
        let Some((status, elapsed)) = self.exit.join().unwrap() else {
            panic!("{} did not finish within {:?}", self.description, self.timeout);
        };
        self.writer.join().unwrap();
        Output {
            description: self.description,
            status: status.code(),
            signal: status.signal(),
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
            elapsed,
        }
    }
}

/// Waits for `child`, killing it and failing the test once `timeout` has passed since `started`.
fn wait_bounded(child: &mut Child, started: Instant, timeout: Duration, description: &str) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// A process a test acts on while it runs: see [`Run::start`].
pub struct Live {
    child: Child,
    description: String,
    started: Instant,
    timeout: Duration,
    lines: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: Vec<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Live {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 30 s) until stdout has printed `line`; returns the lines before it.
    #[track_caller]
    pub fn wait_for_line(&mut self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(got) => {
                    self.seen.push(got.clone());
                    let got = String::from_utf8_lossy(&got).into_owned();
                    if got == line {
                        return before;
                    }
                    before.push(got);
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("{} never printed {line:?}; it printed {before:?}", self.description);
                }
            }
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child, which has not been reaped (we hold its `Child`).
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0, "kill {signal}");
    }

    /// Waits for the process (killing it and failing after the run's timeout) and returns
    /// everything it printed.
    pub fn finish(mut self) -> Output {
        let status = wait_bounded(&mut self.child, self.started, self.timeout, &self.description);
        let elapsed = self.started.elapsed();
        let mut stdout: Vec<u8> = self.seen.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            stdout.extend(line);
            stdout.push(b'\n');
        }
        Output {
            description: self.description,
            status: status.code(),
            signal: status.signal(),
            stdout,
            stderr: self.stderr.join().unwrap(),
            elapsed,
        }
    }
}

/// What a run left: exit status (`None` when killed by a signal), stdout, stderr, and how long
/// it took.
pub struct Output {
    pub description: String,
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invocation: {}", self.description)?;
        writeln!(f, "status: {:?}{}", self.status, self.signal.map(|s| format!(" (signal {s})")).unwrap_or_default())?;
        writeln!(f, "elapsed: {:?}", self.elapsed)?;
        writeln!(f, "----- stdout ({} bytes) -----\n{}", self.stdout.len(), String::from_utf8_lossy(&self.stdout))?;
        writeln!(f, "----- stderr ({} bytes) -----\n{}", self.stderr.len(), String::from_utf8_lossy(&self.stderr))?;
        write!(f, "-----")
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap_or_else(|_| panic!("stdout is not UTF-8\n{self}"))
    }

    pub fn stderr(&self) -> String {
        String::from_utf8(self.stderr.clone()).unwrap_or_else(|_| panic!("stderr is not UTF-8\n{self}"))
    }

    /// stdout and stderr together, for what must be in neither.
    pub fn all_text(&self) -> String {
        format!("{}\n{}", String::from_utf8_lossy(&self.stdout), String::from_utf8_lossy(&self.stderr))
    }

    /// The exit status; `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status
    }

    /// Asserts the exit status, stdout and stderr, each exactly.
    #[track_caller]
    pub fn expect(&self, status: i32, stdout: &str, stderr: &str) -> &Self {
        if self.status != Some(status) || self.stdout != stdout.as_bytes() || self.stderr != stderr.as_bytes() {
            panic!(
                "unexpected result\n{self}\nexpected status: {status}\n----- expected stdout -----\n{stdout}\n----- expected stderr -----\n{stderr}\n-----"
            );
        }
        self
    }

    /// Success with this stdout and nothing on stderr.
    #[track_caller]
    pub fn ok(&self, stdout: &str) -> &Self {
        self.expect(0, stdout, "")
    }

    /// Failure with this one line on stdout and nothing on stderr.
    #[track_caller]
    pub fn fails(&self, line: &str) -> &Self {
        self.expect(1, &format!("{line}\n"), "")
    }

    /// The not-found line, exit 1, nothing on stderr.
    #[track_caller]
    pub fn not_found(&self) -> &Self {
        self.expect(1, NOT_FOUND, "")
    }

    /// Asserts the exit status alone.
    #[track_caller]
    pub fn status(&self, code: i32) -> &Self {
        assert_eq!(self.status, Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Asserts stdout alone.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout(), expected, "unexpected stdout\n{self}");
        self
    }

    /// Asserts stderr alone.
    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr(), expected, "unexpected stderr\n{self}");
        self
    }

    /// Asserts that stderr is empty.
    #[track_caller]
    pub fn quiet(&self) -> &Self {
        self.stderr_is("")
    }

    /// Exit 1 with exactly one line on stdout; returns that line without its newline.
    #[track_caller]
    pub fn error_line(&self) -> String {
        self.status(1);
        let stdout = self.stdout();
        let line = stdout.strip_suffix('\n').unwrap_or_else(|| panic!("no final newline\n{self}"));
        assert!(!line.is_empty() && !line.contains('\n'), "not one line\n{self}");
        line.to_owned()
    }

    /// The answer of a successful `get`, as (username, secret), after checking that stdout is
    /// exactly what the protocol prints for them.
    #[track_caller]
    pub fn answer(&self, server: &str) -> (String, String) {
        self.status(0);
        let json: serde_json::Value =
            serde_json::from_slice(&self.stdout).unwrap_or_else(|e| panic!("get printed no JSON ({e})\n{self}"));
        let field = |name: &str| json[name].as_str().unwrap_or_else(|| panic!("no {name}\n{self}")).to_owned();
        let (username, secret) = (field("Username"), field("Secret"));
        self.stdout_is(&get_answer(server, &username, &secret));
        (username, secret)
    }

    /// Asserts that neither stream contains `secret`, nor any 12-character piece of it.
    #[track_caller]
    pub fn never_shows(&self, secret: &str) -> &Self {
        // A JWT's header and claims are base64 of JSON much like every other token's (the same
        // `{"alg":`, timestamps a second apart), so pieces of them turn up in any JWT: a JWT is
        // looked for by its signature, which is its own and goes wherever the token goes.
        let secret = match secret.split('.').collect::<Vec<_>>().as_slice() {
            [header, _, signature] if header.starts_with("eyJ") && signature.len() >= 16 => signature,
            _ => secret,
        };
        let pieces: Vec<&[u8]> = if secret.len() > 24 {
            (0..=secret.len() - 12).step_by(6).map(|i| &secret.as_bytes()[i..i + 12]).collect()
        } else {
            vec![secret.as_bytes()]
        };
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        for piece in pieces {
            if contains(&self.stdout, piece) || contains(&self.stderr, piece) {
                panic!("the secret {secret:?} was shown ({:?})\n{self}", String::from_utf8_lossy(piece));
            }
        }
        self
    }
}
