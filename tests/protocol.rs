//! The docker-credential protocol of SPEC section 2, byte for byte: the actions, the arguments,
//! the three error strings docker matches on, and input no client should send.

mod common;

use std::os::unix::ffi::OsStrExt;

use common::{get_answer, store_json, Scenario, NOT_FOUND, NO_SERVER_URL, NO_USERNAME};

const KEY: &str = "env-api-key-0123456789";

const VERSION: &str = concat!(
    "docker-credential-icr (github.com/docker-credential-icr/docker-credential-icr) ",
    env!("CARGO_PKG_VERSION"),
    "\n"
);

/// The usage text is the library's; here it is checked to be what all three spellings print.
use docker_credential_icr::cli::USAGE;

const UNKNOWN_TAIL: &str = "expected get, store, erase, list or version (see --help)";

#[test]
fn version_prints_the_name_repository_and_version_whatever_the_input() {
    let s = Scenario::new();
    for arg in ["version", "--version", "-v"] {
        s.run(&[arg], "").ok(VERSION);
        s.run(&[arg], "unused\n").ok(VERSION);
        s.run(&[arg], [0xff, 0x00, 0xfe]).ok(VERSION);
    }
}

#[test]
fn help_prints_the_usage_on_stdout() {
    let s = Scenario::new();
    for arg in ["help", "--help", "-h"] {
        s.run(&[arg], "").ok(USAGE);
    }
    assert!(USAGE.starts_with("Usage: docker-credential-icr "), "{USAGE}");
    for word in ["get", "store", "erase", "list", "version", "configure", "explain", "exec", "--help"] {
        assert!(USAGE.contains(word), "the usage names {word}");
    }
}

#[test]
fn no_argument_is_an_error_on_stdout() {
    let s = Scenario::new();
    s.run(&[], "").fails(&format!("no action given: {UNKNOWN_TAIL}"));
}

#[test]
fn an_unknown_action_is_named_printable_and_short() {
    let s = Scenario::new();
    s.run(&["fetch"], "us.icr.io\n").fails(&format!("unknown action `fetch`: {UNKNOWN_TAIL}"));
    s.run(&["GET"], "us.icr.io\n").fails(&format!("unknown action `GET`: {UNKNOWN_TAIL}"));
    s.run(&[""], "").fails(&format!("unknown action ``: {UNKNOWN_TAIL}"));
    s.run(&["bad\u{1}\nact\rion"], "").fails(&format!("unknown action `badaction`: {UNKNOWN_TAIL}"));
    let long = "a".repeat(70);
    s.run(&[long.as_str()], "").fails(&format!("unknown action `{}…`: {UNKNOWN_TAIL}", "a".repeat(64)));
    // Not UTF-8 on the command line: replaced, never a panic.
    let arg = std::ffi::OsStr::from_bytes(b"x\xffy");
    s.cmd(&[arg]).run().fails(&format!("unknown action `x\u{fffd}y`: {UNKNOWN_TAIL}"));
}

#[test]
fn extra_arguments_are_refused_without_echoing_them() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    s.run(&["get", "us.icr.io"], "us.icr.io\n").fails("`get` takes no arguments after the action (see --help)");
    s.run(&["list", "a", "b"], "").fails("`list` takes no arguments after the action (see --help)");
    s.run(&["store", "secret-on-the-command-line"], store_json("us.icr.io", "iamapikey", "x"))
        .fails("`store` takes no arguments after the action (see --help)")
        .never_shows("secret-on-the-command-line");
    s.run(&["version", "--verbose"], "").fails("`version` takes no arguments after the action (see --help)");
    assert!(!s.credentials_path().exists());
}

#[test]
fn get_echoes_the_server_url_as_given_but_trimmed() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    s.run(&["get"], "us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", KEY));
    s.run(&["get"], "us.icr.io\n").ok(&get_answer("us.icr.io", "iamapikey", KEY));
    s.run(&["get"], " \t https://US.icr.io/v2/ \r\n").ok(&get_answer("https://US.icr.io/v2/", "iamapikey", KEY));
    s.run(&["get"], "de.icr.io/ns/image:tag\n").ok(&get_answer("de.icr.io/ns/image:tag", "iamapikey", KEY));
}

#[test]
fn get_escapes_json_in_the_answer() {
    let mut s = Scenario::new();
    let key = "k\"ey\\with\u{7}odd\u{e9}chars";
    s.set("IBMCLOUD_API_KEY", key);
    s.get("us.icr.io").ok("{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"k\\\"ey\\\\with\\u0007odd\u{e9}chars\"}\n");
}

#[test]
fn an_empty_server_url_is_dockers_missing_url_error() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    for action in ["get", "erase"] {
        for input in ["", "\n", "   \t\r\n  "] {
            s.run(&[action], input).expect(1, NO_SERVER_URL, "");
        }
    }
    s.run(&["store"], store_json("", "iamapikey", "x")).expect(1, NO_SERVER_URL, "");
    s.run(&["store"], store_json("  ", "iamapikey", "x")).expect(1, NO_SERVER_URL, "");
    s.run(&["store"], r#"{"Username":"iamapikey","Secret":"x"}"#).expect(1, NO_SERVER_URL, "");
}

#[test]
fn store_with_an_empty_username_is_dockers_missing_username_error() {
    let s = Scenario::new();
    s.run(&["store"], store_json("us.icr.io", "", "x")).expect(1, NO_USERNAME, "");
    s.run(&["store"], r#"{"ServerURL":"us.icr.io","Username":null,"Secret":"the-secret"}"#)
        .expect(1, NO_USERNAME, "")
        .never_shows("the-secret");
    s.run(&["store"], r#"{"ServerURL":"us.icr.io","Secret":"the-secret"}"#).expect(1, NO_USERNAME, "");
    assert!(!s.credentials_path().exists());
}

#[test]
fn store_with_an_empty_secret_is_refused() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "").fails("no credentials secret: refusing to store an empty secret");
    assert!(!s.credentials_path().exists());
}

#[test]
fn list_is_an_empty_object_not_null_when_nothing_is_stored_or_configured() {
    let mut s = Scenario::new();
    s.list().ok("{}\n");
    // An API key in the environment is not a login: list never shows every domain of the table.
    s.set("IBMCLOUD_API_KEY", KEY);
    s.list().ok("{}\n").never_shows(KEY);
    // And the empty config file names nothing.
    s.write_config("{}");
    s.list().ok("{}\n");
}

#[test]
fn list_ignores_its_input() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "stored-key").ok("");
    for input in [&b""[..], b"unused\n", b"\xff\xfe\x00", &[b'x'; 2 << 20]] {
        s.run(&["list"], input).ok("{\"us.icr.io\":\"iamapikey\"}\n");
    }
}

#[test]
fn store_get_list_erase_round_trip() {
    let s = Scenario::new();
    s.store("https://US.icr.io/v2/", "iamapikey", "stored-key-1").ok("");
    s.store("de.icr.io", "iambearer", "bearer-token-2").ok("");
    s.list().ok("{\"de.icr.io\":\"iambearer\",\"us.icr.io\":\"iamapikey\"}\n");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "stored-key-1"));
    s.get("https://de.icr.io:443/v2/").ok(&get_answer("https://de.icr.io:443/v2/", "iambearer", "bearer-token-2"));
    // A second store replaces the first.
    s.store("us.icr.io", "iamapikey", "stored-key-3").ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "stored-key-3"));
    s.erase("us.icr.io/namespace/image").ok("");
    s.get("us.icr.io").not_found();
    s.erase("us.icr.io").ok("");
    s.list().ok("{\"de.icr.io\":\"iambearer\"}\n");
    s.erase("de.icr.io").ok("");
    s.list().ok("{}\n");
}

#[test]
fn store_field_names_are_matched_case_insensitively() {
    let s = Scenario::new();
    s.run(&["store"], r#"{"serverurl":"us.icr.io","USERNAME":"iamapikey","sEcReT":"mixed-case-key","Extra":[1]}"#)
        .ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "mixed-case-key"));
    s.run(&["store"], r#"{"ServerURL":"de.icr.io","Username":"iamapikey","Secret":"a","SECRET":"b"}"#)
        .fails("malformed JSON credentials: Secret is given twice");
}

#[test]
fn an_identity_token_login_is_refused_and_never_returned() {
    let s = Scenario::new();
    s.store("us.icr.io", "<token>", "identity-token")
        .fails("us.icr.io returned an identity token; docker-credential-icr stores API keys and IAM tokens only")
        .never_shows("identity-token");
    assert!(!s.credentials_path().exists());
    s.get("us.icr.io").not_found();
}

#[test]
fn oversized_input_is_refused_for_every_action_that_reads_it() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    let line = "input is larger than 1 MiB: expected a server URL or a JSON credentials object";
    let mut big = b"us.icr.io".to_vec();
    big.resize((1 << 20) + 1, b' ');
    for action in ["get", "store", "erase"] {
        s.run(&[action], &big).fails(line);
        s.run(&[action], vec![b'a'; 8 << 20]).fails(line);
    }
    // Exactly 1 MiB is still read: a server URL padded with whitespace.
    big.truncate(1 << 20);
    s.run(&["get"], &big).ok(&get_answer("us.icr.io", "iamapikey", KEY));
}

#[test]
fn invalid_utf8_is_refused() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    let line = "input is not valid UTF-8: expected a server URL or a JSON credentials object";
    for action in ["get", "store", "erase"] {
        s.run(&[action], b"us.icr.io\xff\n").fails(line);
        s.run(&[action], b"\xc3").fails(line);
    }
    s.run(&["store"], b"{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"\xfe\"}").fails(line);
}

const TRUNCATED: &[u8] = br#"{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":"hunter2"#;

#[test]
fn malformed_store_requests_get_a_clear_line_and_never_echo_the_secret() {
    let s = Scenario::new();
    let m = "malformed JSON credentials";
    let cases: &[(&[u8], String)] = &[
        (b"", format!("{m}: EOF while parsing a value at line 1 column 0")),
        (b"  \n", format!("{m}: EOF while parsing a value at line 2 column 0")),
        (b"us.icr.io\n", format!("{m}: expected value at line 1 column 1")),
        (b"null", format!("{m}: expected an object with ServerURL, Username and Secret")),
        (b"[]", format!("{m}: expected an object with ServerURL, Username and Secret")),
        (b"\"hunter2\"", format!("{m}: expected an object with ServerURL, Username and Secret")),
        // serde_json counts columns from 1 and reports the last byte it read.
        (TRUNCATED, format!("{m}: EOF while parsing a string at line 1 column {}", TRUNCATED.len())),
        (
            br#"{"ServerURL":"us.icr.io","Username":"iamapikey""#,
            format!("{m}: EOF while parsing an object at line 1 column 47"),
        ),
        (br#"{"ServerURL":1,"Username":"iamapikey","Secret":"hunter2"}"#, format!("{m}: ServerURL must be a string")),
        (
            br#"{"ServerURL":"us.icr.io","Username":["u"],"Secret":"hunter2"}"#,
            format!("{m}: Username must be a string"),
        ),
        (
            br#"{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":{"v":"hunter2"}}"#,
            format!("{m}: Secret must be a string"),
        ),
        (br#"{"ServerURL":"us.icr.io","Username":"iamapikey","Secret":7}"#, format!("{m}: Secret must be a string")),
        (
            b"{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"hunter2\0\"}",
            format!(
                "{m}: control character (\\u0000-\\u001F) found while parsing a string at line 1 column {}",
                TRUNCATED.len() + 1
            ),
        ),
        (b"\0", format!("{m}: expected value at line 1 column 1")),
        (br#"{"ServerURL":"us.icr.io"} trailing hunter2"#, format!("{m}: trailing characters at line 1 column 27")),
    ];
    for (input, line) in cases {
        s.run(&["store"], input).fails(line).never_shows("hunter2");
    }
    assert!(!s.credentials_path().exists(), "nothing was stored");
}

#[test]
fn nul_bytes_and_garbage_server_urls_are_not_found() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    for input in [
        &b"\0"[..],
        b"us.icr.io\0",
        b"us.icr.io\0.evil.example",
        b"\0us.icr.io",
        b"{\"ServerURL\":\"us.icr.io\"}",
        b"us.icr.io us.icr.io",
        b"https://",
        b"://us.icr.io",
        b"\x7f",
    ] {
        s.run(&["get"], input).not_found().never_shows(KEY);
        s.run(&["erase"], input).not_found();
    }
}

#[test]
fn erase_of_what_was_never_stored_succeeds_for_a_served_host_and_is_not_found_for_others() {
    // As docker-credential-pass does: a second logout, or Ansible's docker_login
    // state=absent, must not fail.
    let s = Scenario::new();
    for served in ["us.icr.io", "https://de.icr.io/v2/", "registry.ng.bluemix.net"] {
        s.erase(served).ok("");
    }
    assert!(!s.credentials_path().exists(), "nothing is written for nothing erased");
    assert!(!s.app_dir().exists(), "not even the directory or the lock");
    s.erase("evil.example").not_found();
    s.erase("us.icr.io.evil.example").not_found();
    s.erase("cp.icr.io").not_found();
    // With a file holding another login, erasing one that is not there leaves it as it was.
    s.store("de.icr.io", "iamapikey", "kept-key").ok("");
    let before = std::fs::read(s.credentials_path()).unwrap();
    s.erase("us.icr.io").ok("");
    s.erase("us.icr.io").ok("");
    assert_eq!(std::fs::read(s.credentials_path()).unwrap(), before);
    s.get("de.icr.io").ok(&common::get_answer("de.icr.io", "iamapikey", "kept-key"));
}

#[test]
fn errors_go_to_stdout_with_nothing_on_stderr_at_the_default_level() {
    let s = Scenario::new();
    s.get("us.icr.io").expect(1, NOT_FOUND, "");
    s.run(&["nope"], "").expect(1, &format!("unknown action `nope`: {UNKNOWN_TAIL}\n"), "");
}
