//! Files (SPEC section 5): the config file parsed strictly, with errors that name the file, the
//! key and the line; `credentials.json` written 0600 in a 0700 directory, atomically under a
//! lock, so that many parallel `store` and `erase` processes lose nothing and tear nothing.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{get_answer, mode_of, store_json, Scenario};

// ---- The config file ----

/// `get` with this config file fails with `config file <path>: <message>`.
#[track_caller]
fn config_error(text: &str, message: &str) {
    let s = Scenario::new();
    let path = s.write_config(text);
    s.get("us.icr.io").fails(&format!("config file {}: {message}", path.display()));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    config_error(
        "{\n  \"apikeyFile\": \"/x\"\n}\n",
        "unknown key apikeyFile: expected one of `mode`, `apiKey`, `apiKeyFile`, `apiKeyEnv`, `trustedProfile`, `vpcInstance`, `iamEndpoint`, `iamCaFile`, `kubeletCacheDuration`, `registries` at line 2 column 14",
    );
    config_error(
        "{\n \"registries\": {\n  \"de.icr.io\": {\"apiKey\": \"k\", \"mdoe\": \"x\"}\n }\n}",
        "registries.de.icr.io: unknown key mdoe: expected one of `mode`, `region`, `apiKey`, `apiKeyFile`, `apiKeyEnv`, `trustedProfile`, `vpcInstance` at line 3 column 37",
    );
    config_error(
        "{\n \"registries\": {\n  \"jp.icr.io\": {\"trustedProfile\": {\"profileID\": \"p\"}}\n }\n}",
        "registries.jp.icr.io.trustedProfile: unknown key profileID: expected one of `profileId`, `profileName`, `profileCrn`, `crTokenFile` at line 3 column 46",
    );
}

#[test]
fn a_wrong_type_is_named_with_its_key_and_line() {
    config_error(
        "{\n \"registries\": {\n  \"de.icr.io\": {\"apiKey\": 5}\n }\n}",
        "registries.de.icr.io.apiKey: expected a string, found a number at line 3 column 27",
    );
    config_error("{\n \"registries\": [\n ]\n}", "registries: expected a map, found an array at line 2 column 15");
}

#[test]
fn an_invalid_value_is_named_with_its_key_and_line() {
    config_error(
        "{\n \"mode\": \"bearer\"\n}",
        "mode: not a value this key takes: expected one of `iamapikey`, `iambearer`, `iamrefresh` at line 2 column 17",
    );
    config_error(
        "{\n \"registries\": {\n  \"x.example\": {\"region\": \"mars\"}\n }\n}",
        "registries.x.example.region: not a region id of the registry table (such as `us-south`) at line 3 column 17",
    );
    config_error(
        "{\n \"iamEndpoint\": \"http://iam.cloud.ibm.com\"\n}",
        "iamEndpoint: the IAM endpoint (host iam.cloud.ibm.com) must use https:// (http:// is allowed for a loopback address only) at line 2 column 2",
    );
    config_error(
        "{\n \"registries\": {\n  \"https://de.icr.io/v2\": {}\n }\n}",
        "registries.https://de.icr.io/v2: neither a region id (such as `eu-de`) nor a host[:port] (such as `mirror.example.com:5000`) at line 3 column 3",
    );
    config_error(
        "{\n \"registries\": {\n  \"de.icr.io\": {\"trustedProfile\": {}}\n }\n}",
        "registries.de.icr.io.trustedProfile: needs exactly one of `profileId`, `profileName` and `profileCrn` at line 3 column 17",
    );
    config_error("{\n  \"apiKey\": \"  \"\n}", "apiKey: is empty at line 2 column 3");
}

#[test]
fn two_credentials_in_one_entry_are_refused_without_showing_the_key() {
    let s = Scenario::new();
    let path = s.write_config(
        "{\n \"registries\": {\n  \"de.icr.io\": {\"apiKey\": \"inline-secret-key\", \"apiKeyFile\": \"/x\"}\n }\n}",
    );
    s.get("de.icr.io")
        .fails(&format!(
            "config file {}: registries.de.icr.io.apiKeyFile: an entry takes one credential, but this one has apiKey and apiKeyFile at line 3 column 48",
            path.display()
        ))
        .never_shows("inline-secret-key");
}

#[test]
fn a_registry_named_twice_is_refused() {
    config_error(
        "{\n \"registries\": {\n  \"eu-de\": {},\n  \"eu-central\": {}\n }\n}",
        "registries.eu-de: region eu-de is named twice at line 3 column 3",
    );
    config_error(
        "{\n \"registries\": {\n  \"de.icr.io\": {},\n  \"DE.icr.io.\": {}\n }\n}",
        "registries.de.icr.io: this host is named twice at line 3 column 3",
    );
}

#[test]
fn malformed_json_is_named_with_its_line() {
    config_error("", "EOF while parsing a value at line 1 column 0");
    config_error("{\n  \"mode\": \"iamapikey\",\n", "EOF while parsing a value at line 3 column 0");
    config_error("{}\n{}", "trailing characters at line 2 column 1");
    config_error("{\n  \"mode\": \"iamapikey\"\n  \"apiKey\": \"k\"\n}", "expected `,` or `}` at line 3 column 3");
}

#[test]
fn only_an_object_is_a_config_file() {
    config_error("[]", "expected an object, found an array at line 1 column 0");
    config_error("\"iamapikey\"", "expected an object, found a string at line 1 column 11");
    // A derived struct would also take its fields as an array, in declaration order.
    config_error(
        "[null, \"array-key\", null, null, null, null, {}]",
        "expected an object, found an array at line 1 column 0",
    );
    config_error(
        "{\n \"registries\": {\n  \"de.icr.io\": [null, null, \"entry-key\", null, null, null]\n }\n}",
        "registries.de.icr.io: expected an object, found an array at line 3 column 15",
    );
}

#[test]
fn a_broken_config_file_fails_every_action_that_reads_it() {
    let s = Scenario::new();
    let path = s.write_config("{\n  \"mdoe\": \"iamapikey\"\n}");
    let line = format!(
        "config file {}: unknown key mdoe: expected one of `mode`, `apiKey`, `apiKeyFile`, `apiKeyEnv`, `trustedProfile`, `vpcInstance`, `iamEndpoint`, `iamCaFile`, `kubeletCacheDuration`, `registries` at line 2 column 8",
        path.display()
    );
    s.get("us.icr.io").fails(&line);
    s.get("mirror.example.com").fails(&line);
    s.list().fails(&line);
    s.store("mirror.example.com", "robot", "pw").fails(&line);
    s.erase("mirror.example.com").fails(&line);
}

#[test]
fn the_specs_example_config_is_accepted() {
    let mut s = Scenario::new();
    let de_key = s.write("etc/de-key", "unused");
    let mirror_key = s.write("etc/mirror-key", "mirror-file-key\n");
    s.set("DE_ICR_KEY", "de-env-key");
    s.write_config(&format!(
        r#"{{
  "mode": "iamapikey",
  "apiKeyFile": "{}",
  "iamEndpoint": "https://private.iam.cloud.ibm.com",
  "registries": {{
    "de.icr.io": {{ "mode": "iambearer", "apiKeyEnv": "DE_ICR_KEY" }},
    "mirror.example.com:5000": {{ "region": "us-south", "apiKeyFile": "{}" }},
    "jp.icr.io": {{ "trustedProfile": {{ "profileId": "Profile-1", "crTokenFile": "/var/run/secrets/tokens/sa-token" }} }}
  }}
}}"#,
        de_key.display(),
        mirror_key.display()
    ));
    s.get("mirror.example.com:5000").ok(&get_answer("mirror.example.com:5000", "iamapikey", "mirror-file-key"));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "unused"));
    s.list()
        .ok("{\"de.icr.io\":\"iambearer\",\"jp.icr.io\":\"iamapikey\",\"mirror.example.com:5000\":\"iamapikey\"}\n");
}

// ---- credentials.json ----

#[test]
fn credentials_are_written_0600_in_a_0700_directory() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "stored-key").ok("");
    assert_eq!(mode_of(&s.credentials_path()), 0o600);
    assert_eq!(mode_of(&s.app_dir()), 0o700);
    s.store("de.icr.io", "iamapikey", "stored-key").ok("");
    s.erase("us.icr.io").ok("");
    assert_eq!(mode_of(&s.credentials_path()), 0o600);
    assert_eq!(names_in(&s), ["credentials.json", "credentials.json.lock"], "no temporary file is left behind");
}

#[test]
fn credentials_are_versioned_json() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "stored-key").ok("");
    let file: serde_json::Value = serde_json::from_slice(&fs::read(s.credentials_path()).unwrap()).unwrap();
    assert_eq!(
        file,
        serde_json::json!({"version": 1, "logins": {"us.icr.io": {"username": "iamapikey", "secret": "stored-key"}}})
    );
}

#[test]
fn a_corrupt_credentials_file_is_reported_without_its_contents_and_never_overwritten() {
    let s = Scenario::new();
    let corrupt = r#"{"version":1,"logins":{"us.icr.io":{"username":"iamapikey","secret":"hunter2-secret"#;
    common::write_file(&s.credentials_path(), corrupt);
    let path = s.credentials_path().display().to_string();
    let line = format!(
        "stored logins file {path} is not valid (truncated JSON at line 1 column {}): fix it, or remove it and log in again",
        corrupt.len()
    );
    s.get("us.icr.io").fails(&line).never_shows("hunter2");
    s.store("de.icr.io", "iamapikey", "new").fails(&line).never_shows("hunter2");
    s.erase("us.icr.io").fails(&line).never_shows("hunter2");
    s.list().fails(&line).never_shows("hunter2");
    assert_eq!(fs::read_to_string(s.credentials_path()).unwrap(), corrupt);
}

#[test]
fn a_credentials_file_of_an_unknown_version_is_refused() {
    let s = Scenario::new();
    common::write_file(&s.credentials_path(), r#"{"version":2,"logins":{}}"#);
    s.list().fails(&format!(
        "stored logins file {} has version 2, which this release does not know (it writes version 1): upgrade docker-credential-icr",
        s.credentials_path().display()
    ));
}

/// The 33 domains of the table and 17 hosts of the config file: 50 registries.
fn fifty_registries() -> (String, Vec<(String, String)>) {
    let icr = common::ICR_HOSTS;
    let mut registries: Vec<(String, String)> = icr.iter().map(|h| (h.to_string(), "iamapikey".to_owned())).collect();
    let mirrors: Vec<String> = (0..17).map(|i| format!("mirror-{i:02}.example.com:5000")).collect();
    registries.extend(mirrors.iter().enumerate().map(|(i, h)| (h.clone(), format!("robot-{i:02}"))));
    assert_eq!(registries.len(), 50);
    let entries: Vec<String> = mirrors.iter().map(|h| format!("\"{h}\": {{}}")).collect();
    (format!("{{ \"registries\": {{ {} }} }}", entries.join(", ")), registries)
}

fn secret_for(registry: &str) -> String {
    format!("secret-for-{registry}")
}

#[test]
fn fifty_parallel_stores_on_fifty_registries_lose_nothing() {
    let s = Scenario::new();
    let (config, registries) = fifty_registries();
    s.write_config(&config);
    let running: Vec<_> = registries
        .iter()
        .map(|(r, user)| s.cmd(&["store"]).stdin(store_json(r, user, &secret_for(r))).spawn())
        .collect();
    for run in running {
        run.wait().ok("");
    }
    let expected: BTreeMap<&str, &str> = registries.iter().map(|(r, u)| (r.as_str(), u.as_str())).collect();
    s.list().ok(&format!("{}\n", serde_json::to_string(&expected).unwrap()));
    let file: serde_json::Value = serde_json::from_slice(&fs::read(s.credentials_path()).unwrap()).unwrap();
    assert_eq!(file["logins"].as_object().unwrap().len(), 50);
    for (r, user) in &registries {
        s.get(r).ok(&get_answer(r, user, &secret_for(r)));
    }
    assert_eq!(mode_of(&s.credentials_path()), 0o600);
    assert_eq!(names_in(&s), ["config.json", "credentials.json", "credentials.json.lock"]);
}

#[test]
fn fifty_parallel_mixed_stores_and_erases_lose_nothing_and_tear_nothing() {
    let s = Scenario::new();
    let (config, registries) = fifty_registries();
    s.write_config(&config);
    let (erased, stored) = registries.split_at(25);
    for (r, user) in erased {
        s.store(r, user, &secret_for(r)).ok("");
    }
    // Interleave the erases and the stores so that they really race.
    let mut running = Vec::new();
    for ((e, _), (r, user)) in erased.iter().zip(stored) {
        running.push(s.cmd(&["erase"]).stdin(format!("{e}\n")).spawn());
        running.push(s.cmd(&["store"]).stdin(store_json(r, user, &secret_for(r))).spawn());
    }
    for run in running {
        run.wait().ok("");
    }
    // The config's mirrors are listed whether or not a login is stored for them.
    let mut expected: BTreeMap<&str, &str> = BTreeMap::new();
    for (r, _) in erased.iter().filter(|(r, _)| r.starts_with("mirror-")) {
        expected.insert(r, "iamapikey");
    }
    for (r, user) in stored {
        expected.insert(r, user);
    }
    s.list().ok(&format!("{}\n", serde_json::to_string(&expected).unwrap()));
    let file: serde_json::Value = serde_json::from_slice(&fs::read(s.credentials_path()).unwrap()).unwrap();
    let logins: Vec<&String> = file["logins"].as_object().unwrap().keys().collect();
    let mut want: Vec<&String> = stored.iter().map(|(r, _)| r).collect();
    want.sort();
    assert_eq!(logins, want);
    for (r, _) in erased {
        s.get(r).not_found();
    }
    assert_eq!(names_in(&s), ["config.json", "credentials.json", "credentials.json.lock"]);
}

fn names_in(s: &Scenario) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(s.app_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

// ---- No error line repeats what the config file or the environment holds ----

/// A secret-shaped value: what an API key looks like.
const PASTED: &str = "Pasted0ApiKey1Looking2Thing3xyzABCDEFGHIJKLm";

#[test]
fn no_config_error_repeats_a_value_from_the_file_wrong_type_wrong_place_or_malformed() {
    let k = PASTED;
    let configs = [
        // a secret where another type belongs
        format!(r#"{{"registries":{{"us.icr.io":"{k}"}}}}"#),
        format!(r#"{{"trustedProfile":"{k}"}}"#),
        format!(r#"{{"registries":{{"us.icr.io":{{"trustedProfile":"{k}"}}}}}}"#),
        format!(r#"{{"registries":"{k}"}}"#),
        format!(r#""{k}""#),
        format!(r#"["{k}"]"#),
        format!(r#"{{"apiKey":["{k}"]}}"#),
        // a secret in the wrong place
        format!(r#"{{"mode":"{k}"}}"#),
        format!(r#"{{"registries":{{"us.icr.io":{{"mode":"{k}"}}}}}}"#),
        format!(r#"{{"apiKeyEnv":"{k}=1"}}"#),
        format!(r#"{{"registries":{{"eu-de":{{"apiKeyEnv":"{k}="}}}}}}"#),
        format!(r#"{{"registries":{{"us.icr.io":{{"region":"{k}"}}}}}}"#),
        format!(r#"{{"kubeletCacheDuration":"{k}"}}"#),
        format!(r#"{{"iamEndpoint":"{k}"}}"#),
        format!(r#"{{"{k}":"x"}}"#),
        format!(r#"{{"trustedProfile":{{"{k}":"x"}}}}"#),
        format!(r#"{{"registries":{{"us.icr.io":{{"{k}":1}}}}}}"#),
        format!(r#"{{"registries":{{"{k}/x":{{}}}}}}"#),
        format!(r#"{{"registries":{{"https://u:{k}@us.icr.io":{{}}}}}}"#),
        // a secret in a malformed value
        format!(r#"{{"iamEndpoint":"https://user:{k}@iam.example.com"}}"#),
        format!(r#"{{"iamEndpoint":"https://iam.example.com/?apikey={k}"}}"#),
        format!(r#"{{"iamEndpoint":"http://iam.example.com/{k}"}}"#),
        format!(r#"{{"iamEndpoint":"ftp://{k}"}}"#),
        format!(r#"{{"apiKey":"{k}","apiKeyFile":"/x"}}"#),
        format!(r#"{{"trustedProfile":{{"profileId":"{k}","profileName":"{k}"}}}}"#),
        format!(r#"{{"apiKey":"{k}"}} trailing"#),
        format!(r#"{{"apiKey":"{k}","apiKey":"{k}"}}"#),
        format!(r#"{{"apiKey":"{k}""#),
        format!(r#"{{"registries":{{"us.icr.io":{{"apiKey":"{k}","region":"mars"}}}}}}"#),
        format!(r#"{{"registries":{{"us.icr.io":{{"apiKey":"{k}"}},"US.icr.io":{{"apiKey":"{k}"}}}}}}"#),
    ];
    for config in &configs {
        let s = Scenario::new();
        let path = s.write_config(config);
        for out in [
            s.get("us.icr.io"),
            s.list(),
            s.store("mirror.example.com", "u", "p"),
            s.run(&["explain", "us.icr.io"], ""),
        ] {
            out.never_shows(PASTED).never_shows(&PASTED[10..30]);
            let text = out.all_text();
            assert!(text.contains(&format!("config file {}", path.display())), "{config}\n{out}");
            assert!(text.contains(" at line ") && text.contains(" column "), "no position: {config}\n{out}");
        }
    }
}

#[test]
fn no_environment_error_repeats_the_value() {
    let k = PASTED;
    for (name, value) in [
        ("DOCKER_CREDENTIAL_ICR_MODE", k.to_owned()),
        ("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", format!("https://u:{k}@iam.example.com")),
        ("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", format!("https://iam.example.com/?k={k}")),
        ("IBMCLOUD_IAM_API_ENDPOINT", k.to_owned()),
        ("DOCKER_CREDENTIAL_ICR_LOG", k.to_owned()),
        ("DOCKER_CREDENTIAL_ICR_CONFIG", k.to_owned()),
        ("DOCKER_CREDENTIAL_ICR_CACHE_DIR", k.to_owned()),
    ] {
        let mut s = Scenario::new();
        s.set("IBMCLOUD_API_KEY", "the-real-key-0123456789abcdef").set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
        s.unset("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT");
        s.set(name, &value);
        for out in [s.get("us.icr.io"), s.run(&["explain", "us.icr.io"], "")] {
            out.never_shows(PASTED).never_shows(&PASTED[10..30]).never_shows("the-real-key-0123456789abcdef");
            assert!(out.all_text().contains(name), "the line names {name}\n{out}");
        }
    }
}
