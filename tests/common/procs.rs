//! Many helper processes at once, for the concurrency and kill-storm tests.
//!
//! A [`Proc`] is spawned blocked on its stdin, so that a test can start a crowd and then let each
//! one go at a moment of its choosing ([`Proc::release`] records that moment and writes the
//! request). stdout and stderr go to files rather than pipes: two hundred children then hold one
//! descriptor each in this process (their stdin), well under any `ulimit -n`. A waiter thread per
//! child records when its exit was seen; that instant is never earlier than the real exit.
//! Every child is a [`Scenario::command`]: the same cleared environment and fresh HOME as any
//! other run.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Scenario, BIN};

pub struct Proc {
    pub index: usize,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// When the request was written: the process could not act on it earlier.
    pub released: Option<Instant>,
}

impl Proc {
    /// Spawns `command` with stdin piped (so it waits for [`Proc::release`]) and its output in
    /// `dir/<index>.out` and `dir/<index>.err`.
    pub fn spawn(mut command: Command, dir: &Path, index: usize) -> Proc {
        let stdout_path = dir.join(format!("{index}.out"));
        let stderr_path = dir.join(format!("{index}.err"));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(File::create(&stdout_path).expect("create stdout file"))
            .stderr(File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        let stdin = child.stdin.take();
        Proc { index, child: Some(child), stdin, stdout_path, stderr_path, released: None }
    }

    /// Writes the request and closes stdin. A child that is already dead (killed) makes the
    /// write fail; that is not an error here.
    pub fn release(&mut self, input: &str) {
        self.released = Some(Instant::now());
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not yet handed to a waiter").id()
    }

    /// Moves the child to a thread that reports `(index, status, when the exit was seen)`.
    pub fn watch(&mut self, exits: &mpsc::Sender<(usize, ExitStatus, Instant)>) {
        let mut child = self.child.take().expect("watched once");
        let (index, exits) = (self.index, exits.clone());
        thread::spawn(move || {
            let status = child.wait().expect("wait for a child");
            let _ = exits.send((index, status, Instant::now()));
        });
    }

    /// SIGKILL (std's `Child::kill`), then the exit status: a signal if the kill landed first,
    /// the exit code if the process had already finished. A killed process cannot linger.
    pub fn kill_and_wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("not handed to a waiter");
        let _ = child.kill();
        child.wait().expect("wait for a killed child")
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).expect("read stdout file")
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).expect("read stderr file")
    }
}

/// Collects `n` exits within `timeout`; on a timeout, kills the stragglers and fails.
pub fn collect_exits(
    exits: &mpsc::Receiver<(usize, ExitStatus, Instant)>,
    n: usize,
    timeout: Duration,
    pids: &[u32],
) -> Vec<Option<(ExitStatus, Instant)>> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<Option<(ExitStatus, Instant)>> = vec![None; pids.len()];
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        match exits.recv_timeout(left) {
            Ok((index, status, at)) => seen[index] = Some((status, at)),
            Err(_) => {
                let stuck: Vec<u32> = (0..pids.len()).filter(|&i| seen[i].is_none()).map(|i| pids[i]).collect();
                for pid in &stuck {
                    kill(*pid);
                }
                panic!("{} helper processes did not exit within {timeout:?}: pids {stuck:?}", stuck.len());
            }
        }
    }
    seen
}

/// SIGKILL by pid, for stragglers whose `Child` a waiter thread owns (std kills only through a
/// `Child`; a test need not link libc for this). Goes through `sh`, which Debian always has.
pub fn kill(pid: u32) {
    let _ = Command::new("sh").args(["-c", &format!("kill -KILL {pid}")]).stderr(Stdio::null()).status();
}

/// A small deterministic PRNG (xorshift64*): reproducible storms without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Writes the helper's config file naming `hosts` (so that `store` accepts them).
pub fn write_config(s: &Scenario, hosts: impl IntoIterator<Item = String>, extra: &[(&str, serde_json::Value)]) {
    let registries: serde_json::Map<String, serde_json::Value> =
        hosts.into_iter().map(|h| (h, serde_json::json!({}))).collect();
    let mut top = serde_json::Map::new();
    top.insert("registries".into(), registries.into());
    for (k, v) in extra {
        top.insert((*k).into(), v.clone());
    }
    s.write_config_json(&top.into());
}

/// `credentials.json` as it is on disk: registry → (username, secret). Panics, naming the
/// problem, when the file does not parse: a torn or half-written file is what these tests hunt.
pub fn stored_logins(s: &Scenario) -> std::collections::BTreeMap<String, (String, String)> {
    let path = s.credentials_path();
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Default::default(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse ({e}):\n{text}", path.display()));
    assert_eq!(value["version"], 1, "{text}");
    let logins = value["logins"].as_object().unwrap_or_else(|| panic!("no logins object:\n{text}"));
    logins
        .iter()
        .map(|(k, v)| {
            let field =
                |name: &str| v[name].as_str().unwrap_or_else(|| panic!("{k}.{name} missing:\n{text}")).to_owned();
            (k.clone(), (field("username"), field("secret")))
        })
        .collect()
}
