//! Diagnostics on stderr at the level `DOCKER_CREDENTIAL_ICR_LOG` sets — warnings only by
//! default, so that a successful `get` prints nothing there — and never a secret at any level.

mod common;

use common::{get_answer, jwt_expiring_in, store_json, Scenario};

const P: &str = "docker-credential-icr";
const KEY: &str = "env-secret-key-0001";
const NONE_SET: &str = "none of IBMCLOUD_API_KEY, IC_API_KEY, BLUEMIX_API_KEY, IBMCLOUD_IAM_TOKEN, IC_IAM_TOKEN, IBMCLOUD_IAM_REFRESH_TOKEN, IC_IAM_REFRESH_TOKEN, DOCKER_CREDENTIAL_ICR_VPC_INSTANCE or IBMCLOUD_CR_PROFILE is set";

fn debug() -> Scenario {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_LOG", "debug");
    s
}

#[test]
fn a_successful_get_prints_nothing_on_stderr_by_default() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    s.get("us.icr.io").expect(0, &get_answer("us.icr.io", "iamapikey", KEY), "");
    s.set("IBMCLOUD_API_KEY", "");
    s.write_session(r#"{ "IAMRefreshToken": "refresh-secret" }"#);
    s.get("us.icr.io").expect(0, &get_answer("us.icr.io", "iamrefresh", "refresh-secret"), "");
    s.store("de.icr.io", "iamapikey", "stored-secret").expect(0, "", "");
    s.get("de.icr.io").expect(0, &get_answer("de.icr.io", "iamapikey", "stored-secret"), "");
    s.erase("de.icr.io").expect(0, "", "");
    s.list().expect(0, "{}\n", "");
}

#[test]
fn warn_is_the_default_and_error_hides_warnings() {
    let mut s = Scenario::new();
    let session = s.write_session("not json");
    let warning =
        format!("{P}: warning: ignoring ibmcloud CLI session {}: not JSON (line 1 column 2)\n", session.display());
    s.get("us.icr.io").expect(1, common::NOT_FOUND, &warning);
    for level in ["warn", "WARNING"] {
        s.set("DOCKER_CREDENTIAL_ICR_LOG", level);
        s.get("us.icr.io").expect(1, common::NOT_FOUND, &warning);
    }
    s.set("DOCKER_CREDENTIAL_ICR_LOG", "error");
    s.get("us.icr.io").expect(1, common::NOT_FOUND, "");
}

#[test]
fn info_shows_what_changed_but_not_the_debug_trail() {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_LOG", "info");
    s.store("us.icr.io", "iamapikey", "stored-secret").expect(
        0,
        "",
        &format!("{P}: info: stored login for us.icr.io\n"),
    );
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "stored-secret"));
    s.erase("us.icr.io").expect(0, "", &format!("{P}: info: erased login for us.icr.io\n"));
    s.get("us.icr.io").expect(1, common::NOT_FOUND, &format!("{P}: info: us.icr.io: no credentials in any source\n"));
}

#[test]
fn an_unknown_level_is_warned_about_and_warn_is_used() {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_LOG", "loud");
    s.set("IBMCLOUD_API_KEY", KEY);
    s.get("us.icr.io").expect(
        0,
        &get_answer("us.icr.io", "iamapikey", KEY),
        &format!("{P}: warning: DOCKER_CREDENTIAL_ICR_LOG is not a level (error, warn, info, debug); using warn\n"),
    );
}

#[test]
fn debug_get_traces_every_source_it_tries_without_a_secret() {
    let mut s = debug();
    let creds = s.credentials_path().display().to_string();
    let session = s.home().join(".bluemix/config.json").display().to_string();
    s.get("us.icr.io").expect(
        1,
        common::NOT_FOUND,
        &format!(
            "{P}: debug: us.icr.io: stored login: no login stored for us.icr.io in {creds}\n\
             {P}: debug: us.icr.io: config entry: no config file\n\
             {P}: debug: us.icr.io: environment: {NONE_SET}\n\
             {P}: debug: us.icr.io: config default: no config file\n\
             {P}: debug: us.icr.io: ibmcloud CLI session: {session} does not exist\n\
             {P}: info: us.icr.io: no credentials in any source\n"
        ),
    );
    s.set("IBMCLOUD_API_KEY", KEY);
    s.get("us.icr.io").expect(
        0,
        &get_answer("us.icr.io", "iamapikey", KEY),
        &format!(
            "{P}: debug: us.icr.io: stored login: no login stored for us.icr.io in {creds}\n\
             {P}: debug: us.icr.io: config entry: no config file\n\
             {P}: debug: us.icr.io: using API key from IBMCLOUD_API_KEY\n"
        ),
    );
    s.get("us.icr.io.evil.example").expect(
        1,
        common::NOT_FOUND,
        &format!(
            "{P}: debug: us.icr.io.evil.example is not an IBM Cloud Container Registry host and is not named in {}\n",
            s.config_path().display()
        ),
    );
    s.get("https://us.icr.io@evil.example").expect(
        1,
        common::NOT_FOUND,
        &format!("{P}: debug: the server URL is not a valid registry address\n"),
    );
}

#[test]
fn debug_store_get_list_erase_never_show_the_secret() {
    let s = debug();
    let secret = "stored-secret-0002";
    s.store("us.icr.io", "iamapikey", secret).expect(0, "", &format!("{P}: info: stored login for us.icr.io\n"));
    s.get("us.icr.io").expect(
        0,
        &get_answer("us.icr.io", "iamapikey", secret),
        &format!("{P}: debug: us.icr.io: using API key from stored login for us.icr.io\n"),
    );
    s.list().expect(0, "{\"us.icr.io\":\"iamapikey\"}\n", "").never_shows(secret);
    s.erase("us.icr.io").expect(0, "", &format!("{P}: info: erased login for us.icr.io\n"));
    s.erase("us.icr.io").expect(0, "", &format!("{P}: info: no login stored for us.icr.io: nothing to erase\n"));
    s.run(&["version"], "").expect(
        0,
        &format!("{P} (github.com/docker-credential-icr/docker-credential-icr) {}\n", env!("CARGO_PKG_VERSION")),
        "",
    );
    let help = s.run(&["--help"], "");
    assert_eq!((help.status, help.stderr.len()), (Some(0), 0), "{help}");
}

#[test]
fn debug_failures_name_what_failed_but_not_the_secret() {
    let mut s = debug();
    let missing = s.root().join("no-key");
    s.set("IBMCLOUD_API_KEY", format!("@{}", missing.display()));
    s.set("IC_API_KEY", "ic-secret-0003");
    let creds = s.credentials_path().display().to_string();
    let line = format!("IBMCLOUD_API_KEY: {} does not exist", missing.display());
    s.get("us.icr.io")
        .expect(
            1,
            &format!("{line}\n"),
            &format!(
                "{P}: debug: us.icr.io: stored login: no login stored for us.icr.io in {creds}\n\
                 {P}: debug: us.icr.io: config entry: no config file\n\
                 {P}: debug: failing with: {line}\n"
            ),
        )
        .never_shows("ic-secret-0003");
    // A store that is refused shows neither the secret nor the request.
    s.run(&["store"], store_json("us.icr.io", "", "refused-secret-0004"))
        .expect(1, common::NO_USERNAME, &format!("{P}: debug: failing with: no credentials username\n"))
        .never_shows("refused-secret-0004");
    s.run(&["store"], r#"{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"truncated-secret-0005"#)
        .never_shows("truncated-secret-0005");
}

type Setup = Box<dyn Fn(&mut Scenario)>;

/// Every source, every action, at debug: the secret appears on stdout only as `get`'s answer,
/// and never on stderr.
#[test]
fn no_secret_is_shown_at_debug_level_whatever_the_source() {
    let bearer = jwt_expiring_in(3600);
    let setups: Vec<(&str, Setup, &str, &str)> = vec![
        (
            "IBMCLOUD_API_KEY",
            Box::new(|s| {
                s.set("IBMCLOUD_API_KEY", "secret-a-0001");
            }),
            "iamapikey",
            "secret-a-0001",
        ),
        (
            "IC_API_KEY",
            Box::new(|s| {
                s.set("IC_API_KEY", "secret-b-0002");
            }),
            "iamapikey",
            "secret-b-0002",
        ),
        (
            "BLUEMIX_API_KEY",
            Box::new(|s| {
                s.set("BLUEMIX_API_KEY", "secret-c-0003");
            }),
            "iamapikey",
            "secret-c-0003",
        ),
        (
            "@path",
            Box::new(|s| {
                let file = s.write("key", "secret-d-0004\n");
                s.set("IBMCLOUD_API_KEY", format!("@{}", file.display()));
            }),
            "iamapikey",
            "secret-d-0004",
        ),
        (
            "IBMCLOUD_IAM_TOKEN",
            Box::new(|s| {
                s.set("IBMCLOUD_IAM_TOKEN", "Bearer secret-e-0005");
            }),
            "iambearer",
            "secret-e-0005",
        ),
        (
            "config entry",
            Box::new(|s| {
                s.write_config(r#"{ "registries": { "us-south": { "apiKey": "secret-f-0006" } } }"#);
            }),
            "iamapikey",
            "secret-f-0006",
        ),
        (
            "config apiKeyEnv",
            Box::new(|s| {
                s.set("MY_KEY", "secret-g-0007");
                s.write_config(r#"{ "registries": { "us.icr.io": { "apiKeyEnv": "MY_KEY" } } }"#);
            }),
            "iamapikey",
            "secret-g-0007",
        ),
        (
            "config default file",
            Box::new(|s| {
                let file = s.write("default-key", "secret-h-0008");
                s.write_config(&format!(r#"{{ "apiKeyFile": "{}" }}"#, file.display()));
            }),
            "iamapikey",
            "secret-h-0008",
        ),
        (
            "session refresh",
            Box::new(|s| {
                s.write_session(r#"{ "IAMRefreshToken": "secret-i-0009" }"#);
            }),
            "iamrefresh",
            "secret-i-0009",
        ),
        (
            "session bearer",
            Box::new(move |s| {
                s.write_session(&format!(r#"{{ "IAMToken": "Bearer {bearer}" }}"#));
            }),
            "iambearer",
            "",
        ),
    ];
    for (name, setup, username, secret) in setups {
        let mut s = debug();
        let _iam = s.fake_iam();
        setup(&mut s);
        let out = s.get("us.icr.io");
        let secret = if secret.is_empty() { get_secret(&out) } else { secret.to_owned() };
        out.expect(0, &get_answer("us.icr.io", username, &secret), &out.stderr());
        assert!(!out.stderr().contains(&secret), "{name}: the secret is on stderr\n{out}");
        s.list().never_shows(&secret);
        s.erase("us.icr.io").never_shows(&secret);
        s.run(&["get", "extra"], "us.icr.io\n").never_shows(&secret);
        // Whatever the mode makes of it, the secret is in the answer or nowhere.
        for mode in ["iambearer", "iamrefresh", "nonsense"] {
            let out = s.cmd(&["get"]).env("DOCKER_CREDENTIAL_ICR_MODE", mode).stdin("us.icr.io\n").run();
            only_in_the_answer(&out, &secret);
        }
        s.get("us.icr.io.evil.example").never_shows(&secret);
    }
}

/// A successful `get` shows the secret in its answer on stdout, or — when the mode exchanged it
/// at IAM — the token it bought, and then not the secret; nothing else shows either.
#[track_caller]
fn only_in_the_answer(out: &common::Output, secret: &str) {
    assert!(!out.stderr().contains(secret), "the secret is on stderr\n{out}");
    if out.status == Some(0) {
        let answered = get_secret(out);
        if answered != secret {
            out.never_shows(secret);
            assert!(!out.stderr().contains(&answered), "the exchanged token is on stderr\n{out}");
        }
    } else {
        out.never_shows(secret);
    }
}

fn get_secret(out: &common::Output) -> String {
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    answer["Secret"].as_str().unwrap().to_owned()
}
