//! Private namespaces for the tests that change what the whole machine sees: `/etc/hosts`,
//! the system's trust store, addresses on loopback. [`isolated`] re-executes the test binary
//! under `unshare` in fresh mount, network and PID namespaces and runs the test's body there;
//! nothing outside changes, and every process the test leaves is killed with the PID namespace.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{is_root, tool};

/// Set in the environment of the re-executed test, inside the namespaces.
const INSIDE: &str = "ICR_TEST_INSIDE_NAMESPACES";

/// How long one test may run inside its namespaces, all its processes included.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Whether this process runs inside the namespaces [`isolated`] made.
pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some()
}

/// Runs the test `name` (the function calling this, by its path in the test binary) in fresh
/// namespaces, and `body` there, after bringing loopback up. Outside, this re-executes the test
/// binary under `unshare` and fails unless that run passed exactly this one test.
#[track_caller]
pub fn isolated(name: &str, body: impl FnOnce()) {
    if inside() {
        run(&tool("ip"), &["link", "set", "lo", "up"]);
        body();
        return;
    }
    assert!(is_root(), "`{name}` needs root for its private namespaces (unshare, mount): run the tests as root");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(tool("unshare"));
    command
        .args(["--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1");
    let (ok, stdout, stderr) = bounded(command, TIMEOUT);
    // What the test printed shows with `cargo test -- --nocapture`.
    eprint!("{stderr}");
    let ran = stdout.contains(&format!("test {name} ... ok")) && stdout.contains("1 passed");
    assert!(ok && ran, "`{name}` failed inside its namespaces:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
}

/// `mount --bind source target`, inside the namespaces.
pub fn bind(source: &Path, target: &Path) {
    assert!(inside(), "a bind mount outside the test's namespaces would change the machine");
    run(&tool("mount"), &["--bind", source.to_str().unwrap(), target.to_str().unwrap()]);
}

/// Runs a system program to success, or fails the test with what it printed.
#[track_caller]
pub fn run(program: &str, args: &[&str]) {
    let mut command = Command::new(program);
    command.args(args);
    let (ok, stdout, stderr) = bounded(command, Duration::from_secs(60));
    assert!(ok, "{program} {args:?} failed:\n{stdout}{stderr}");
}

/// Runs `command` to its end or `timeout`; (success, stdout, stderr).
fn bounded(mut command: Command, timeout: Duration) -> (bool, String, String) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) => (status.success(), stdout, stderr),
        None => (false, stdout, format!("{stderr}\n(killed after {timeout:?})")),
    }
}
