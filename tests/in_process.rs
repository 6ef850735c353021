//! `cli::run` driven in-process, where a process would add nothing but waiting: a clock the
//! test moves, an IAM exchange that counts its calls, and buffers for the streams. The token
//! cache is the real one, in a temporary HOME.

use std::cell::Cell;
use std::time::{Duration, Instant};

use docker_credential_icr::cli;
use docker_credential_icr::clock::{Clock, FixedClock};
use docker_credential_icr::env::Env;
use docker_credential_icr::error::Result;
use docker_credential_icr::iam::{Endpoint, Exchange, Grant, Token};
use docker_credential_icr::secret::Secret;

const KEY: &str = "in-process-api-key-0123456789";
const T0: u64 = 1_900_000_000;

/// IAM as far as the helper can tell: a fresh token per call, valid for `lifetime` from the
/// clock's now.
struct CountingIam<'a> {
    clock: &'a FixedClock,
    lifetime: u64,
    calls: Cell<u32>,
}

impl Exchange for CountingIam<'_> {
    fn exchange(&self, _: &Endpoint, grant: &Grant) -> Result<Token> {
        assert!(matches!(grant, Grant::ApiKey { apikey, refresh: false } if apikey.expose() == KEY), "{grant:?}");
        self.calls.set(self.calls.get() + 1);
        let now = self.clock.now();
        Ok(Token {
            access: Secret::new(format!("access-token-of-the-fake-{}", self.calls.get())),
            refresh: None,
            issued_at: now,
            expires_at: now + self.lifetime,
        })
    }
}

struct Node {
    home: tempfile::TempDir,
    clock: FixedClock,
}

impl Node {
    fn new() -> Node {
        Node { home: tempfile::tempdir().unwrap(), clock: FixedClock::at(T0) }
    }

    fn env(&self) -> Env {
        Env::from_vars([
            ("HOME", self.home.path().to_str().unwrap()),
            ("IBMCLOUD_API_KEY", KEY),
            ("DOCKER_CREDENTIAL_ICR_MODE", "iambearer"),
        ])
    }

    /// One invocation: (status, stdout, stderr).
    fn run(&self, iam: &CountingIam, args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        let env = self.env();
        let streams = cli::Streams { stdin: &mut stdin.as_bytes(), stdout: &mut stdout, stderr: &mut stderr };
        let status = cli::run(&args, &env, &self.clock, iam, deadline, streams);
        (status, String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
    }
}

fn answer(token: &str) -> (i32, String, String) {
    (0, format!("{{\"ServerURL\":\"us.icr.io\",\"Username\":\"iambearer\",\"Secret\":\"{token}\"}}\n"), String::new())
}

#[test]
fn a_cached_token_is_reused_until_80_percent_of_its_life_and_then_replaced() {
    let node = Node::new();
    let iam = CountingIam { clock: &node.clock, lifetime: 3600, calls: Cell::new(0) };
    assert_eq!(node.run(&iam, &["get"], "us.icr.io\n"), answer("access-token-of-the-fake-1"));
    node.clock.advance(2879); // 80 % of 3600 s is 2880 s
    assert_eq!(node.run(&iam, &["get"], "us.icr.io\n"), answer("access-token-of-the-fake-1"));
    assert_eq!(iam.calls.get(), 1);
    node.clock.advance(1);
    assert_eq!(node.run(&iam, &["get"], "us.icr.io\n"), answer("access-token-of-the-fake-2"));
    assert_eq!(iam.calls.get(), 2);
}

#[test]
fn the_kubelet_caches_a_bearer_token_for_exactly_half_of_what_is_left_of_it() {
    let node = Node::new();
    let iam = CountingIam { clock: &node.clock, lifetime: 3600, calls: Cell::new(0) };
    let request = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"us.icr.io/ns/app"}"#;
    let duration = |out: &(i32, String, String)| {
        assert_eq!((out.0, out.2.as_str()), (0, ""), "{out:?}");
        let response: serde_json::Value = serde_json::from_str(&out.1).unwrap();
        response["cacheDuration"].as_str().unwrap().to_owned()
    };
    assert_eq!(duration(&node.run(&iam, &["kubelet"], request)), "30m0s");
    node.clock.advance(600);
    assert_eq!(duration(&node.run(&iam, &["kubelet"], request)), "25m0s", "the cached token, 50 minutes left");
    node.clock.advance(2279);
    assert_eq!(duration(&node.run(&iam, &["kubelet"], request)), "6m0s", "still the cached token, 721 s left");
    assert_eq!(iam.calls.get(), 1);
}

#[test]
fn explain_reports_the_cached_tokens_age_and_state_to_the_second() {
    let node = Node::new();
    let iam = CountingIam { clock: &node.clock, lifetime: 3600, calls: Cell::new(0) };
    let cache_line = |node: &Node| {
        let (status, stdout, stderr) = node.run(&iam, &["explain", "us.icr.io"], "");
        assert_eq!((status, stderr.as_str()), (0, ""), "{stdout}");
        stdout.lines().find(|l| l.starts_with("token cache:")).unwrap().to_owned()
    };
    assert!(cache_line(&node).starts_with("token cache: empty: get asks IAM"), "{}", cache_line(&node));
    node.run(&iam, &["get"], "us.icr.io\n");
    node.clock.advance(100);
    assert_eq!(
        cache_line(&node),
        "token cache: access token …ke-1, issued 100 s ago, expires in 3500 s; fresh, get reuses it"
    );
    node.clock.advance(2800);
    assert_eq!(
        cache_line(&node),
        "token cache: access token …ke-1, issued 2900 s ago, expires in 700 s; past 80 % of its lifetime: get asks IAM again and falls back to it if IAM fails"
    );
    assert_eq!(iam.calls.get(), 1, "explain never exchanges without --check");
}

#[test]
fn every_action_of_the_usage_is_in_the_dispatch_table() {
    let node = Node::new();
    let iam = CountingIam { clock: &node.clock, lifetime: 3600, calls: Cell::new(0) };
    for action in ["get", "store", "erase", "list", "version", "--version", "-v", "help", "--help", "-h", "kubelet"] {
        let (_, stdout, _) = node.run(&iam, &[action], "");
        assert!(!stdout.starts_with("unknown action"), "{action}: {stdout}");
    }
    for subcommand in ["configure", "explain", "exec"] {
        let (status, stdout, _) = node.run(&iam, &[subcommand, "--help"], "");
        assert_eq!(status, 0, "{subcommand}");
        assert!(stdout.starts_with(&format!("Usage: docker-credential-icr {subcommand}")), "{stdout}");
    }
    let (status, stdout, stderr) = node.run(&iam, &["fetch"], "");
    assert_eq!(
        (status, stdout.as_str(), stderr.as_str()),
        (1, "unknown action `fetch`: expected get, store, erase, list or version (see --help)\n", "")
    );
    let (status, stdout, stderr) = node.run(&iam, &["kubelet", "extra"], "");
    assert_eq!(
        (status, stdout.as_str(), stderr.as_str()),
        (1, "", "docker-credential-icr: error: kubelet: `kubelet` takes no arguments after the action (see --help)\n"),
        "the kubelet's convention: errors on stderr, nothing on stdout"
    );
}
