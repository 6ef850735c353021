//! `exec`: the child gets the three variables (it reports whether they match, never their
//! values), its exit status comes back (128 + N for a signal), a SIGTERM sent to the helper
//! reaches it, and with no credentials nothing runs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-icr");
const KEY: &str = "exec-test-api-key-0000000000000000wxyz";

/// The child: says, for each variable, whether it holds what `get` answers; then exits `$1`.
const REPORTER: &str = r#"
for v in ICR_USERNAME ICR_PASSWORD CF_DOCKER_PASSWORD; do
  eval "value=\${$v-}"
  case $v in ICR_USERNAME) want=iamapikey ;; *) want=$EXPECTED ;; esac
  if [ -z "$value" ]; then echo "$v missing"; elif [ "$value" = "$want" ]; then echo "$v ok"; else echo "$v wrong"; fi
done
exit "$1"
"#;

fn command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().env("HOME", home).env("PATH", "/usr/bin:/bin").stdin(Stdio::null());
    command
}

fn text(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn exec_passes_the_credentials_in_the_environment_and_the_exit_status_back() {
    let home = tempfile::tempdir().unwrap();
    let output = command(home.path(), &["exec", "us.icr.io", "--", "sh", "-c", REPORTER, "reporter", "7"])
        .env("IBMCLOUD_API_KEY", KEY)
        .env("EXPECTED", KEY)
        .output()
        .unwrap();
    let (status, stdout, stderr) = text(&output);
    assert_eq!(status, 7, "{stdout}{stderr}");
    assert_eq!(stdout, "ICR_USERNAME ok\nICR_PASSWORD ok\nCF_DOCKER_PASSWORD ok\n");
    assert_eq!(stderr, "");

    let output = command(home.path(), &["exec", "us.icr.io", "--", "sh", "-c", "exit 0"])
        .env("IBMCLOUD_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(text(&output), (0, String::new(), String::new()));
}

#[test]
fn exec_without_credentials_does_not_run_the_command() {
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("ran");
    let script = format!("touch {}", marker.display());
    let output = command(home.path(), &["exec", "us.icr.io", "--", "sh", "-c", &script]).output().unwrap();
    assert_eq!(
        text(&output),
        (
            1,
            String::new(),
            "docker-credential-icr: error: no credentials for us.icr.io: get would answer not-found; `docker-credential-icr explain us.icr.io` shows why; sh was not run\n".to_owned()
        )
    );
    assert!(!marker.exists(), "the command ran without credentials");

    let output = command(home.path(), &["exec", "evil-icr.io", "--", "sh", "-c", &script])
        .env("IBMCLOUD_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(text(&output).0, 1);
    assert!(!marker.exists(), "the command ran for a host that is not ICR");
}

#[test]
fn a_child_killed_by_a_signal_gives_128_plus_the_signal() {
    let home = tempfile::tempdir().unwrap();
    let output = command(home.path(), &["exec", "us.icr.io", "--", "sh", "-c", "kill -KILL $$"])
        .env("IBMCLOUD_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(text(&output).0, 128 + 9);
}

#[test]
fn a_command_that_is_not_there_gives_127() {
    let home = tempfile::tempdir().unwrap();
    let output = command(home.path(), &["exec", "us.icr.io", "--", "/nonexistent/tool"])
        .env("IBMCLOUD_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(
        text(&output),
        (
            127,
            String::new(),
            "docker-credential-icr: error: cannot run /nonexistent/tool: No such file or directory (os error 2)\n"
                .to_owned()
        )
    );
}

#[test]
fn sigterm_sent_to_the_helper_reaches_the_child() {
    let home = tempfile::tempdir().unwrap();
    // The child says it is ready once its trap is set, then waits (at most a minute) for TERM.
    let script = r#"trap 'echo got TERM; exit 42' TERM; echo ready; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 3"#;
    let mut helper = command(home.path(), &["exec", "us.icr.io", "--", "sh", "-c", script])
        .env("IBMCLOUD_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(helper.stdout.take().unwrap());
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        ready_tx.send(line).unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        rest
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(30)).expect("the child never said it was ready");
    assert_eq!(ready, "ready\n");
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(helper.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = helper.wait().unwrap();
    let rest = reader.join().unwrap();
    let mut stderr = String::new();
    helper.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(rest, "got TERM\n", "{stderr}");
    assert_eq!(status.code(), Some(42), "the helper passes the child's status through: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn exec_usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    for (args, message) in [
        (vec!["exec"], "no server URL given"),
        (vec!["exec", "us.icr.io", "--"], "no command given after the server URL and `--`"),
        (vec!["exec", "--now", "us.icr.io", "--", "true"], "unknown argument `--now`"),
    ] {
        let output = command(home.path(), &args).output().unwrap();
        assert_eq!(
            text(&output),
            (
                2,
                String::new(),
                format!("docker-credential-icr: error: exec: {message} (see `docker-credential-icr exec --help`)\n")
            ),
            "{args:?}"
        );
    }
}
