//! `explain`: the report for each credential source, each refusal, and the token cache with a
//! local fake IAM; secrets appear as their last four characters only.

mod common;

use common::{Output, Scenario};
use fake_iam::{Config, FakeIam};

const KEY: &str = "explain-test-api-key-000000000000wxyz";

/// `explain` with these arguments; whatever it says, never the key.
#[track_caller]
fn explain(s: &Scenario, args: &[&str]) -> Output {
    let mut all = vec!["explain"];
    all.extend(args);
    let out = s.run(&all, "");
    out.never_shows(KEY);
    out
}

fn stored_line(s: &Scenario) -> String {
    format!("  1. stored login: no login stored for us.icr.io in {}\n", s.credentials_path().display())
}

const HEAD: &str = "registry:    us.icr.io\nICR:         yes, public domain of region us-south\n";
const NOT_FOUND: &str = "get answers: credentials not found in native keychain (docker then pulls anonymously)\n";
const NO_ENV: &str = "none of IBMCLOUD_API_KEY, IC_API_KEY, BLUEMIX_API_KEY, IBMCLOUD_IAM_TOKEN, IC_IAM_TOKEN, IBMCLOUD_IAM_REFRESH_TOKEN, IC_IAM_REFRESH_TOKEN, DOCKER_CREDENTIAL_ICR_VPC_INSTANCE or IBMCLOUD_CR_PROFILE is set";

#[test]
fn explain_environment_key_in_apikey_mode() {
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    let run = explain(&home, &["https://US.icr.io/v2/"]);
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: found API key …wxyz in IBMCLOUD_API_KEY\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            stored_line(&home)
        )
    );
    run.quiet();
}

#[test]
fn explain_stored_login() {
    let home = Scenario::new();
    let store = home.run(&["store"], format!(r#"{{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"{KEY}"}}"#));
    store.status(0);
    let run = explain(&home, &["us.icr.io"]);
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n  1. stored login: found API key …wxyz in stored login for us.icr.io\nanswer:      username iamapikey, the API key as it is; no IAM call\n"
        )
    );
}

#[test]
fn explain_config_entry_and_config_default() {
    let home = Scenario::new();
    home.write_in_home("key", KEY);
    let config = home.config_path().display().to_string();
    home.write_in_home(
        ".config/docker-credential-icr/config.json",
        &format!(
            r#"{{"apiKey":"{KEY}","registries":{{"eu-de":{{"apiKeyFile":"{}"}}}}}}"#,
            home.in_home("key").display()
        ),
    );
    let run = explain(&home, &["de.icr.io"]);
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "registry:    de.icr.io\nICR:         yes, public domain of region eu-de\nmode:        iamapikey\nsources:     in the order get consults them\n  1. stored login: no login stored for de.icr.io in {}\n  2. config entry: found API key …wxyz in config file {config}, registries.eu-de\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            home.in_home(".config/docker-credential-icr/credentials.json").display()
        )
    );
    let run = explain(&home, &["us.icr.io"]);
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: config file {config} has no credential for us.icr.io or its region\n  3. environment: {NO_ENV}\n  4. config default: found API key …wxyz in config file {config}, default\nanswer:      username iamapikey, the API key as it is; no IAM call\n",
            stored_line(&home)
        )
    );
}

#[test]
fn explain_cli_session_refresh_token() {
    let home = Scenario::new();
    home.write_in_home(".bluemix/config.json", &format!(r#"{{"IAMRefreshToken":"{KEY}"}}"#));
    let run = explain(&home, &["us.icr.io"]);
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: {NO_ENV}\n  4. config default: no config file\n  5. ibmcloud CLI session: found IAM refresh token …wxyz in ibmcloud CLI session {}\nanswer:      username iamrefresh, the IAM refresh token as it is; no IAM call\n",
            stored_line(&home),
            home.in_home(".bluemix/config.json").display()
        )
    );
}

#[test]
fn explain_no_source_exits_1_with_every_reason() {
    let home = Scenario::new();
    let run = explain(&home, &["us.icr.io"]);
    run.status(1);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: {NO_ENV}\n  4. config default: no config file\n  5. ibmcloud CLI session: {} does not exist\n{NOT_FOUND}",
            stored_line(&home),
            home.in_home(".bluemix/config.json").display()
        )
    );
    run.quiet();
}

#[test]
fn explain_refuses_spoofed_unknown_and_invalid_hosts() {
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    let config = home.config_path().display().to_string();
    for host in ["us.icr.io.evil.example", "evil-icr.io", "cp.icr.io"] {
        let run = explain(&home, &[host]);
        run.status(1);
        assert_eq!(
            run.stdout(),
            format!("registry:    {host}\nICR:         no: {host} is not an IBM Cloud Container Registry host and is not named in {config}\n{NOT_FOUND}")
        );
    }
    let run = explain(&home, &["https://us.icr.io@evil.example"]);
    run.status(1);
    assert_eq!(
        run.stdout(),
        format!("registry:    none: `https://us.icr.io@evil.example`: the server URL is not a valid registry address\n{NOT_FOUND}")
    );
}

#[test]
fn explain_reports_a_broken_source_as_the_failure_get_would_give() {
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", format!("@{}", home.in_home("missing-key").display()));
    let run = explain(&home, &["us.icr.io"]);
    run.status(1);
    assert_eq!(
        run.stdout(),
        format!(
            "{HEAD}mode:        iamapikey\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: error\nget fails:   IBMCLOUD_API_KEY: {} does not exist\n",
            stored_line(&home),
            home.in_home("missing-key").display()
        )
    );
}

#[test]
fn explain_bearer_mode_shows_the_cache_and_check_exchanges_at_iam() {
    let iam = FakeIam::start(Config::new().apikey(KEY).lifetime(3600));
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    home.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    home.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", iam.url());
    let prefix = format!(
        "{HEAD}mode:        iambearer\nsources:     in the order get consults them\n{}  2. config entry: no config file\n  3. environment: found API key …wxyz in IBMCLOUD_API_KEY\nanswer:      username iambearer, an IAM access token from {}/identity/token\n",
        stored_line(&home),
        iam.url()
    );

    let cold = explain(&home, &["us.icr.io"]);
    cold.status(0);
    assert_eq!(
        cold.stdout(),
        format!(
            "{prefix}token cache: empty: get asks IAM (cache in {})\n",
            home.in_home(".cache/docker-credential-icr").display()
        )
    );
    assert_eq!(iam.request_count(), 0, "explain without --check makes no IAM call");

    let checked = explain(&home, &["us.icr.io", "--check"]);
    checked.status(0);
    assert_eq!(iam.request_count(), 1);
    // The token get now answers with, from the cache the check filled.
    let get = home.run(&["get"], "us.icr.io");
    assert_eq!(iam.request_count(), 1, "get reuses the token the check cached");
    let token: serde_json::Value = serde_json::from_str(&get.stdout()).unwrap();
    let token = token["Secret"].as_str().unwrap();
    let tail = format!("…{}", &token[token.len() - 4..]);
    let checked_stdout = checked.stdout();
    let check_line = checked_stdout.strip_prefix(&prefix).unwrap_or_else(|| panic!("{checked}"));
    let expires: u64 = check_line
        .strip_prefix(&format!(
            "token cache: empty: get asks IAM (cache in {})\ncheck:       IAM issued access token {tail}, expires in ",
            home.in_home(".cache/docker-credential-icr").display()
        ))
        .and_then(|rest| rest.strip_suffix(" s\n"))
        .unwrap_or_else(|| panic!("{checked}"))
        .parse()
        .unwrap();
    assert!(expires <= 3600 && expires > 3000, "{checked}");

    let warm = explain(&home, &["us.icr.io"]);
    warm.status(0);
    let warm_stdout = warm.stdout();
    let cache_line = warm_stdout.strip_prefix(&prefix).unwrap_or_else(|| panic!("{warm}"));
    let rest = cache_line
        .strip_prefix(&format!("token cache: access token {tail}, issued "))
        .and_then(|r| r.strip_suffix(" s; fresh, get reuses it\n"))
        .unwrap_or_else(|| panic!("{warm}"));
    let (age, remaining) = rest.split_once(" s ago, expires in ").unwrap_or_else(|| panic!("{warm}"));
    let (age, remaining): (u64, u64) = (age.parse().unwrap(), remaining.parse().unwrap());
    assert_eq!(age + remaining, 3600, "{warm}");
    assert!(!warm.stdout().contains(token), "the token itself is never printed");
}

#[test]
fn check_reports_iams_refusal_and_exits_1() {
    let iam = FakeIam::start(Config::new().apikey("another-key"));
    let mut home = Scenario::new();
    home.set("IBMCLOUD_API_KEY", KEY);
    home.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", iam.url());
    let run = explain(&home, &["us.icr.io", "--check"]);
    run.status(1);
    let run_stdout = run.stdout();
    let last = run_stdout.lines().last().unwrap();
    assert!(last.starts_with("check:       the IAM exchange failed: "), "{run}");
    assert!(last.contains("BXNIM0415E"), "IAM's error code is reported: {run}");
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn explain_usage_errors_exit_2() {
    let home = Scenario::new();
    for (args, message) in [
        (vec![], "no server URL given"),
        (vec!["a", "b"], "one server URL only, not also `b`"),
        (vec!["--verbose"], "unknown argument `--verbose`"),
    ] {
        let run = explain(&home, &args);
        run.status(2);
        assert_eq!(
            run.stderr(),
            format!("docker-credential-icr: error: explain: {message} (see `docker-credential-icr explain --help`)\n")
        );
    }
}
