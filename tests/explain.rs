//! `explain`: the report for each credential source, each refusal, and the token cache with a
//! local fake IAM; secrets appear as their last four characters only.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use fake_iam::{Config, FakeIam};
use std::io::Write;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-icr");
const KEY: &str = "explain-test-api-key-000000000000wxyz";

struct Home {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap(), env: Vec::new() }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn p(&self, relative: &str) -> String {
        self.path(relative).display().to_string()
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let run = Run {
            status: output.status.code().unwrap(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY), "the key was printed: {run:?}");
        run
    }

    fn explain(&self, args: &[&str]) -> Run {
        let mut all = vec!["explain"];
        all.extend(args);
        self.run(&all, "")
    }

    fn stored_line(&self) -> String {
        format!(
            "  1. stored login: no login stored for us.icr.io in {}\n",
            self.p(".config/docker-credential-icr/credentials.json")
        )
    }
}

const HEAD: &str = "registry:    us.icr.io\nICR:         yes, public domain of region us-south\n";
const NOT_FOUND: &str = "get answers: credentials not found in native keychain (docker then pulls anonymously)\n";
const NO_ENV: &str = "none of IBMCLOUD_API_KEY, IC_API_KEY, BLUEMIX_API_KEY, IBMCLOUD_IAM_TOKEN, IC_IAM_TOKEN or IBMCLOUD_CR_PROFILE is set";

#[test]
fn explain_environment_key_in_apikey_mode() {
    let mut home = Home::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    let run = home.explain(&["https://US.icr.io/v2/"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: found API key …wxyz in IBMCLOUD_API_KEY\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            home.stored_line()
        )
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn explain_stored_login() {
    let home = Home::new();
    let store =
        home.run(&["store"], &format!(r#"{{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"{KEY}"}}"#));
    assert_eq!(store.status, 0, "{store:?}");
    let run = home.explain(&["us.icr.io"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n  1. stored login: found API key …wxyz in stored login for us.icr.io\nanswer:      username iamapikey, the API key as it is; no IAM call\n"
        )
    );
}

#[test]
fn explain_config_entry_and_config_default() {
    let mut home = Home::new();
    home.write("key", KEY);
    let config = home.p(".config/docker-credential-icr/config.json");
    home.write(
        ".config/docker-credential-icr/config.json",
        &format!(r#"{{"apiKey":"{KEY}","registries":{{"eu-de":{{"apiKeyFile":"{}"}}}}}}"#, home.p("key")),
    );
    home.set("XDG_CONFIG_HOME", &home.p(".config"));
    let run = home.explain(&["de.icr.io"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "registry:    de.icr.io\nICR:         yes, public domain of region eu-de\nmode:        iamapikey\nsources:     in the order get consults them\n  1. stored login: no login stored for de.icr.io in {}\n  2. config entry: found API key …wxyz in config file {config}, registries.eu-de\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            home.p(".config/docker-credential-icr/credentials.json")
        )
    );
    let run = home.explain(&["us.icr.io"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: config file {config} has no credential for us.icr.io or its region\n  3. environment: {NO_ENV}\n  4. config default: found API key …wxyz in config file {config}, default\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            home.stored_line()
        )
    );
}

#[test]
fn explain_cli_session_refresh_token() {
    let home = Home::new();
    home.write(".bluemix/config.json", &format!(r#"{{"IAMRefreshToken":"{KEY}"}}"#));
    let run = home.explain(&["us.icr.io"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: {NO_ENV}\n  4. config default: no config file\n  5. ibmcloud CLI session: found IAM refresh token …wxyz in ibmcloud CLI session {}\nanswer:      username iamrefresh, the IAM refresh token as it is; no IAM call\n",
            home.stored_line(),
            home.p(".bluemix/config.json")
        )
    );
}

#[test]
fn explain_no_source_exits_1_with_every_reason() {
    let home = Home::new();
    let run = home.explain(&["us.icr.io"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: {NO_ENV}\n  4. config default: no config file\n  5. ibmcloud CLI session: {} does not exist\n{NOT_FOUND}",
            home.stored_line(),
            home.p(".bluemix/config.json")
        )
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn explain_refuses_spoofed_unknown_and_invalid_hosts() {
    let mut home = Home::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    let config = home.p(".config/docker-credential-icr/config.json");
    for host in ["us.icr.io.evil.example", "evil-icr.io", "cp.icr.io"] {
        let run = home.explain(&[host]);
        assert_eq!(run.status, 1, "{run:?}");
        assert_eq!(
            run.stdout,
            format!("registry:    {host}\nICR:         no: not an IBM Cloud Container Registry host, and not named in the config file {config}\n{NOT_FOUND}")
        );
    }
    let run = home.explain(&["https://us.icr.io@evil.example"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("registry:    none: `https://us.icr.io@evil.example`: the server URL is not a valid registry address\n{NOT_FOUND}")
    );
}

#[test]
fn explain_reports_a_broken_source_as_the_failure_get_would_give() {
    let mut home = Home::new();
    home.set("IBMCLOUD_API_KEY", &format!("@{}", home.p("missing-key")));
    let run = home.explain(&["us.icr.io"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: error\nget fails:   IBMCLOUD_API_KEY: {} does not exist\n",
            home.stored_line(),
            home.p("missing-key")
        )
    );
}

#[test]
fn explain_bearer_mode_shows_the_cache_and_check_exchanges_at_iam() {
    let iam = FakeIam::start(Config::new().apikey(KEY).lifetime(3600));
    let mut home = Home::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    home.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    home.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", &iam.url());
    let prefix = format!(
        "{HEAD}mode:        iambearer\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: found API key …wxyz in IBMCLOUD_API_KEY\nanswer:      username iambearer, an IAM access token from {}/identity/token\n",
        home.stored_line(),
        iam.url()
    );

    let cold = home.explain(&["us.icr.io"]);
    assert_eq!(cold.status, 0, "{cold:?}");
    assert_eq!(
        cold.stdout,
        format!("{prefix}token cache: empty: get asks IAM (cache in {})\n", home.p(".cache/docker-credential-icr"))
    );
    assert_eq!(iam.request_count(), 0, "explain without --check makes no IAM call");

    let checked = home.explain(&["us.icr.io", "--check"]);
    assert_eq!(checked.status, 0, "{checked:?}");
    assert_eq!(iam.request_count(), 1);
    // The token get now answers with, from the cache the check filled.
    let get = home.run(&["get"], "us.icr.io");
    assert_eq!(iam.request_count(), 1, "get reuses the token the check cached");
    let token: serde_json::Value = serde_json::from_str(&get.stdout).unwrap();
    let token = token["Secret"].as_str().unwrap();
    let tail = format!("…{}", &token[token.len() - 4..]);
    let check_line = checked.stdout.strip_prefix(&prefix).unwrap_or_else(|| panic!("{checked:?}"));
    let expires: u64 = check_line
        .strip_prefix(&format!(
            "token cache: empty: get asks IAM (cache in {})\ncheck:       IAM issued access token {tail}, expires in ",
            home.p(".cache/docker-credential-icr")
        ))
        .and_then(|rest| rest.strip_suffix(" s\n"))
        .unwrap_or_else(|| panic!("{checked:?}"))
        .parse()
        .unwrap();
    assert!(expires <= 3600 && expires > 3000, "{checked:?}");

    let warm = home.explain(&["us.icr.io"]);
    assert_eq!(warm.status, 0, "{warm:?}");
    let cache_line = warm.stdout.strip_prefix(&prefix).unwrap_or_else(|| panic!("{warm:?}"));
    let rest = cache_line
        .strip_prefix(&format!("token cache: access token {tail}, issued "))
        .and_then(|r| r.strip_suffix(" s; fresh, get reuses it\n"))
        .unwrap_or_else(|| panic!("{warm:?}"));
    let (age, remaining) = rest.split_once(" s ago, expires in ").unwrap_or_else(|| panic!("{warm:?}"));
    let (age, remaining): (u64, u64) = (age.parse().unwrap(), remaining.parse().unwrap());
    assert_eq!(age + remaining, 3600, "{warm:?}");
    assert!(!warm.stdout.contains(token), "the token itself is never printed");
}

#[test]
fn check_reports_iams_refusal_and_exits_1() {
    let iam = FakeIam::start(Config::new().apikey("another-key"));
    let mut home = Home::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    home.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", &iam.url());
    let run = home.explain(&["us.icr.io", "--check"]);
    assert_eq!(run.status, 1, "{run:?}");
    let last = run.stdout.lines().last().unwrap();
    assert!(last.starts_with("check:       the IAM exchange failed: "), "{run:?}");
    assert!(last.contains("BXNIM0415E"), "IAM's error code is reported: {run:?}");
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn explain_usage_errors_exit_2() {
    let home = Home::new();
    for (args, message) in [
        (vec![], "no server URL given"),
        (vec!["a", "b"], "one server URL only, not also `b`"),
        (vec!["--verbose"], "unknown argument `--verbose`"),
    ] {
        let run = home.explain(&args);
        assert_eq!(run.status, 2, "{run:?}");
        assert_eq!(
            run.stderr,
            format!("docker-credential-icr: error: explain: {message} (see `docker-credential-icr explain --help`)\n")
        );
    }
}
