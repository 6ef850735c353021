//! `exec`: the child gets the three variables (it reports whether they match, never their
//! values), its exit status comes back (128 + N for a signal), a SIGTERM sent to the helper
//! reaches it, and with no credentials nothing runs.

mod common;

use common::Scenario;

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

/// A scenario with an API key in the environment.
fn with_key() -> Scenario {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    s
}

#[test]
fn exec_passes_the_credentials_in_the_environment_and_the_exit_status_back() {
    let s = with_key();
    s.cmd(&["exec", "us.icr.io", "--", "sh", "-c", REPORTER, "reporter", "7"]).env("EXPECTED", KEY).run().expect(
        7,
        "ICR_USERNAME ok\nICR_PASSWORD ok\nCF_DOCKER_PASSWORD ok\n",
        "",
    );
    s.run(&["exec", "us.icr.io", "--", "sh", "-c", "exit 0"], "").ok("");
}

#[test]
fn exec_without_credentials_does_not_run_the_command() {
    let s = Scenario::new();
    let marker = s.root().join("ran");
    let script = format!("touch {}", marker.display());
    s.run(&["exec", "us.icr.io", "--", "sh", "-c", &script], "").expect(
        1,
        "",
        "docker-credential-icr: error: no credentials for us.icr.io: get would answer not-found; `docker-credential-icr explain us.icr.io` shows why; sh was not run\n",
    );
    assert!(!marker.exists(), "the command ran without credentials");

    let s = with_key();
    s.run(&["exec", "evil-icr.io", "--", "sh", "-c", &script], "").status(1).never_shows(KEY);
    assert!(!marker.exists(), "the command ran for a host that is not ICR");
}

#[test]
fn a_child_killed_by_a_signal_gives_128_plus_the_signal() {
    with_key().run(&["exec", "us.icr.io", "--", "sh", "-c", "kill -KILL $$"], "").status(128 + 9);
}

#[test]
fn a_command_that_is_not_there_gives_127() {
    with_key().run(&["exec", "us.icr.io", "--", "/nonexistent/tool"], "").expect(
        127,
        "",
        "docker-credential-icr: error: cannot run /nonexistent/tool: No such file or directory (os error 2)\n",
    );
}

#[test]
fn sigterm_sent_to_the_helper_reaches_the_child() {
    let s = with_key();
    // The child says it is ready once its trap is set, then waits (at most a minute) for TERM.
    let script = r#"trap 'echo got TERM; exit 42' TERM; echo ready; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 3"#;
    let mut helper = s.cmd(&["exec", "us.icr.io", "--", "sh", "-c", script]).start();
    helper.wait_for_line("ready");
    helper.signal(libc::SIGTERM);
    // The helper passes the child's status through.
    helper.finish().expect(42, "ready\ngot TERM\n", "");
}

#[test]
fn exec_usage_errors_exit_2() {
    let s = Scenario::new();
    for (args, message) in [
        (vec!["exec"], "no server URL given"),
        (vec!["exec", "us.icr.io", "--"], "no command given after the server URL and `--`"),
        (vec!["exec", "--now", "us.icr.io", "--", "true"], "unknown argument `--now`"),
    ] {
        s.run(&args, "").expect(
            2,
            "",
            &format!("docker-credential-icr: error: exec: {message} (see `docker-credential-icr exec --help`)\n"),
        );
    }
}
