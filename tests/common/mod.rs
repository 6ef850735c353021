//! The harness the integration tests share: a [`Scenario`] is a fresh temporary HOME and a
//! cleared environment in which the built binary runs, with helpers to write the files the
//! helper reads. Every run is bounded in time, and a failed assertion prints the invocation,
//! its exit status, stdout and stderr in full.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

pub const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-icr");

/// The longest any single invocation may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub const NOT_FOUND: &str = "credentials not found in native keychain\n";
pub const NO_SERVER_URL: &str = "no credentials server URL\n";
pub const NO_USERNAME: &str = "no credentials username\n";

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
    env: Vec<(String, String)>,
}

impl Scenario {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("icr-test-").tempdir().expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        let s = |p: PathBuf| p.to_str().expect("temp paths are UTF-8").to_owned();
        let env = vec![
            ("HOME".to_owned(), s(home.clone())),
            ("XDG_CONFIG_HOME".to_owned(), s(home.join(".config"))),
            ("XDG_CACHE_HOME".to_owned(), s(home.join(".cache"))),
            // Never the network: a test that exchanges at IAM starts a fake and sets its URL.
            ("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT".to_owned(), "http://127.0.0.1:9".to_owned()),
        ];
        Scenario { dir, env }
    }

    /// A fake IAM on loopback that accepts any API key, and this scenario pointed at it.
    pub fn fake_iam(&mut self) -> fake_iam::FakeIam {
        let iam = fake_iam::FakeIam::start(fake_iam::Config::new().any_apikey(true));
        self.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", iam.url());
        iam
    }

    /// A variable for every later run of this scenario.
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) -> &mut Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// A directory beside HOME, for files that belong to no one in particular.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `$XDG_CONFIG_HOME/docker-credential-icr`.
    pub fn app_dir(&self) -> PathBuf {
        self.home().join(".config/docker-credential-icr")
    }

    pub fn config_path(&self) -> PathBuf {
        self.app_dir().join("config.json")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.app_dir().join("credentials.json")
    }

    /// Writes the config file; returns its path.
    pub fn write_config(&self, json: &str) -> PathBuf {
        let path = self.config_path();
        write_file(&path, json);
        path
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

    /// An invocation of the binary with these arguments, to be given env and stdin and run.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Run<'_> {
        Run {
            scenario: self,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            stdin: Vec::new(),
        }
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

/// A JWT whose payload is `claims`, signed with nothing: only its `exp` matters to the helper.
pub fn jwt(claims: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{}", b64(r#"{"alg":"RS256","typ":"JWT"}"#), b64(claims), b64("not-a-signature"))
}

/// A JWT that expires `seconds` from now (in the past when negative).
pub fn jwt_expiring_in(seconds: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    jwt(&format!(r#"{{"iam_id":"IBMid-test","exp":{}}}"#, now + seconds))
}

pub struct Run<'a> {
    scenario: &'a Scenario,
    args: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
}

impl Run<'_> {
    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.env.push((name.to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the process and returns at once, for tests that run many side by side.
    pub fn spawn(self) -> Running {
        let mut command = Command::new(BIN);
        command.args(&self.args).env_clear();
        for (k, v) in self.scenario.env.iter().chain(&self.env) {
            command.env(k, v);
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let description = self.describe();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = self.stdin;
        // The helper may stop reading early (input over 1 MiB): a broken pipe is no failure.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Running { child, description, started: Instant::now(), writer, stdout, stderr }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!("{k}={v:?} "));
        }
        s.push_str("docker-credential-icr");
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
    child: Child,
    description: String,
    started: Instant,
    writer: JoinHandle<()>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Running {
    /// Waits for the process, killing it and failing the test after [`TIMEOUT`].
    pub fn wait(mut self) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {TIMEOUT:?}", self.description);
            }
            thread::sleep(Duration::from_millis(2));
        };
        self.writer.join().unwrap();
        Output {
            description: self.description,
            status: status.code(),
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

/// What a run left: exit status (`None` when killed by a signal), stdout and stderr.
pub struct Output {
    pub description: String,
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invocation: {}", self.description)?;
        writeln!(f, "status: {:?}", self.status)?;
        writeln!(f, "----- stdout ({} bytes) -----\n{}", self.stdout.len(), String::from_utf8_lossy(&self.stdout))?;
        writeln!(f, "----- stderr ({} bytes) -----\n{}", self.stderr.len(), String::from_utf8_lossy(&self.stderr))?;
        write!(f, "-----")
    }
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap_or_else(|_| panic!("stdout is not UTF-8\n{self}"))
    }

    pub fn stderr(&self) -> String {
        String::from_utf8(self.stderr.clone()).unwrap_or_else(|_| panic!("stderr is not UTF-8\n{self}"))
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

    /// Asserts that neither stream contains `secret`.
    #[track_caller]
    pub fn never_shows(&self, secret: &str) -> &Self {
        let needle = secret.as_bytes();
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        if contains(&self.stdout) || contains(&self.stderr) {
            panic!("the secret {secret:?} was shown\n{self}");
        }
        self
    }
}
