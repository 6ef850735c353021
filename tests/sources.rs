//! The credential sources of SPEC section 4, in their order — stored login, config entry,
//! environment, config default, ibmcloud CLI session, nothing — with a test for each pair of
//! neighbours, and each source's own forms and failures. Then the modes.

mod common;

use common::{get_answer, jwt_expiring_in, Scenario};

const STORED: &str = "stored-key-0001";
const ENTRY: &str = "entry-key-0002";
const ENV: &str = "env-key-0003";
const DEFAULT: &str = "default-key-0004";
const REFRESH: &str = "session-refresh-token-0005";

fn config_with_entry_and_default() -> String {
    format!(r#"{{ "apiKey": "{DEFAULT}", "registries": {{ "us.icr.io": {{ "apiKey": "{ENTRY}" }} }} }}"#)
}

// ---- Order: one test per pair of neighbouring sources ----

#[test]
fn a_stored_login_beats_the_config_entry() {
    let s = Scenario::new();
    s.write_config(&config_with_entry_and_default());
    s.store("us.icr.io", "iamapikey", STORED).ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", STORED));
    s.erase("us.icr.io").ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENTRY));
}

#[test]
fn the_config_entry_beats_the_environment() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.write_config(&config_with_entry_and_default());
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENTRY));
    // A registry without an entry falls through to the environment.
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamapikey", ENV));
}

#[test]
fn the_environment_beats_the_config_default() {
    let mut s = Scenario::new();
    s.write_config(&format!(r#"{{ "apiKey": "{DEFAULT}" }}"#));
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamapikey", DEFAULT));
    s.set("IBMCLOUD_API_KEY", ENV);
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamapikey", ENV));
}

#[test]
fn the_config_default_beats_the_cli_session() {
    let s = Scenario::new();
    s.write_session(&format!(r#"{{ "IAMRefreshToken": "{REFRESH}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", REFRESH));
    s.write_config(&format!(r#"{{ "apiKey": "{DEFAULT}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", DEFAULT));
}

#[test]
fn the_cli_session_beats_nothing() {
    let s = Scenario::new();
    s.get("us.icr.io").not_found();
    s.write_session(&format!(r#"{{ "IAMRefreshToken": "{REFRESH}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", REFRESH));
}

#[test]
fn all_sources_at_once_are_peeled_off_in_order() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.write_session(&format!(r#"{{ "IAMRefreshToken": "{REFRESH}" }}"#));
    s.write_config(&config_with_entry_and_default());
    s.store("us.icr.io", "iamapikey", STORED).ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", STORED));
    s.erase("us.icr.io").ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENTRY));
    s.write_config(&format!(r#"{{ "apiKey": "{DEFAULT}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
    s.set("IBMCLOUD_API_KEY", "");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", DEFAULT));
    s.write_config("{}");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", REFRESH));
    std::fs::remove_file(s.home().join(".bluemix/config.json")).unwrap();
    s.get("us.icr.io").not_found();
}

// ---- Stored logins ----

#[test]
fn a_stored_login_is_for_exactly_that_registry() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", STORED).ok("");
    s.get("private.us.icr.io").not_found();
    s.get("registry.ng.bluemix.net").not_found();
    s.get("icr.io").not_found();
}

#[test]
fn a_stored_login_keeps_its_username() {
    let s = Scenario::new();
    s.write_config(r#"{ "registries": { "mirror.example.com:5000": {} } }"#);
    s.store("mirror.example.com:5000", "robot$ci", "mirror-password").ok("");
    s.get("mirror.example.com:5000").ok(&get_answer("mirror.example.com:5000", "robot$ci", "mirror-password"));
    s.store("us.icr.io", "iambearer", "stored-bearer").ok("");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", "stored-bearer"));
    s.store("de.icr.io", "iamrefresh", "stored-refresh").ok("");
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamrefresh", "stored-refresh"));
}

#[test]
fn store_accepts_icr_hosts_and_hosts_named_in_the_config_only() {
    let s = Scenario::new();
    let config = s.write_config(r#"{ "registries": { "mirror.example.com:5000": {}, "eu-de": {} } }"#);
    s.store("https://Mirror.Example.com:5000/v2/", "robot", "pw").ok("");
    s.store("private.de.icr.io", "iamapikey", STORED).ok("");
    s.store("mirror.example.com", "robot", "pw").fails(&format!(
        "mirror.example.com is not an IBM Cloud Container Registry host and is not named in {}: docker-credential-icr stores logins for ICR only (add the host under \"registries\" there to use it for a mirror)",
        config.display()
    ));
    s.list().ok(
        "{\"de.icr.io\":\"iamapikey\",\"mirror.example.com:5000\":\"robot\",\"private.de.icr.io\":\"iamapikey\"}\n",
    );
}

#[test]
fn list_shows_stored_logins_and_configured_registries_with_their_usernames() {
    let s = Scenario::new();
    s.write_config(
        r#"{
  "mode": "iamapikey",
  "registries": {
    "mirror.example.com:5000": { "apiKey": "m" },
    "us.icr.io": { "mode": "iambearer" },
    "eu-gb": { "apiKey": "uk" },
    "global": {}
  }
}"#,
    );
    s.list().ok(
        "{\"icr.io\":\"iamapikey\",\"mirror.example.com:5000\":\"iamapikey\",\"uk.icr.io\":\"iamapikey\",\"us.icr.io\":\"iambearer\"}\n",
    );
    s.store("jp.icr.io", "iamapikey", STORED).ok("");
    s.store("mirror.example.com:5000", "robot", "pw").ok("");
    s.list().ok(
        "{\"icr.io\":\"iamapikey\",\"jp.icr.io\":\"iamapikey\",\"mirror.example.com:5000\":\"robot\",\"uk.icr.io\":\"iamapikey\",\"us.icr.io\":\"iambearer\"}\n",
    )
    .never_shows(STORED);
}

// ---- Config entries ----

#[test]
fn a_config_entry_takes_an_inline_key_a_key_file_or_a_variable() {
    let mut s = Scenario::new();
    let file = s.write("keys/de", "  file-key-0006 \n\n");
    s.set("MY_JP_KEY", " var-key-0007\n");
    s.write_config(&format!(
        r#"{{ "registries": {{
  "us.icr.io": {{ "apiKey": "inline-key-0005" }},
  "de.icr.io": {{ "apiKeyFile": "{}" }},
  "jp.icr.io": {{ "apiKeyEnv": "MY_JP_KEY" }}
}} }}"#,
        file.display()
    ));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "inline-key-0005"));
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamapikey", "file-key-0006"));
    s.get("jp.icr.io").ok(&get_answer("jp.icr.io", "iamapikey", "var-key-0007"));
}

#[test]
fn an_unset_api_key_env_is_an_error_not_a_fall_through() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    let config = s.write_config(r#"{ "registries": { "de.icr.io": { "apiKeyEnv": "DE_ICR_KEY" } } }"#);
    let line = format!(
        "config file {}, registries.de.icr.io.apiKeyEnv names DE_ICR_KEY, which is not set or empty",
        config.display()
    );
    s.get("de.icr.io").fails(&line).never_shows(ENV);
    s.set("DE_ICR_KEY", "");
    s.get("de.icr.io").fails(&line).never_shows(ENV);
    // Other registries are not affected.
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
}

#[test]
fn an_unset_api_key_env_in_the_default_is_an_error_once_the_default_is_reached() {
    let mut s = Scenario::new();
    let config = s.write_config(r#"{ "apiKeyEnv": "ICR_DEFAULT_KEY" }"#);
    s.get("us.icr.io").fails(&format!(
        "config file {}, default.apiKeyEnv names ICR_DEFAULT_KEY, which is not set or empty",
        config.display()
    ));
    s.set("IBMCLOUD_API_KEY", ENV);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
}

#[test]
fn a_missing_or_empty_api_key_file_is_an_error_that_names_the_entry_and_the_path() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    let missing = s.root().join("no-such-key");
    let empty = s.write("empty-key", " \n");
    let config = s.write_config(&format!(
        r#"{{ "registries": {{ "us.icr.io": {{ "apiKeyFile": "{}" }}, "eu-de": {{ "apiKeyFile": "{}" }} }} }}"#,
        missing.display(),
        empty.display()
    ));
    s.get("us.icr.io")
        .fails(&format!(
            "config file {}, registries.us.icr.io.apiKeyFile: {} does not exist",
            config.display(),
            missing.display()
        ))
        .never_shows(ENV);
    s.get("private.de.icr.io").fails(&format!(
        "config file {}, registries.eu-de.apiKeyFile: {} is empty",
        config.display(),
        empty.display()
    ));
}

#[test]
fn a_region_entry_covers_the_public_private_and_legacy_domains_of_its_region() {
    let s = Scenario::new();
    s.write_config(r#"{ "registries": { "eu-de": { "apiKey": "de-key" }, "global": { "apiKey": "global-key" } } }"#);
    for host in ["de.icr.io", "private.de.icr.io", "registry.eu-de.bluemix.net", "https://DE.icr.io/v2/"] {
        s.get(host).ok(&get_answer(host, "iamapikey", "de-key"));
    }
    for host in ["icr.io", "private.icr.io", "registry.bluemix.net"] {
        s.get(host).ok(&get_answer(host, "iamapikey", "global-key"));
    }
    for host in ["us.icr.io", "uk.icr.io", "registry.eu-gb.bluemix.net", "private.us.icr.io"] {
        s.get(host).not_found();
    }
}

#[test]
fn a_region_entry_may_use_the_former_region_name() {
    let s = Scenario::new();
    s.write_config(r#"{ "registries": { "eu-central": { "apiKey": "de-key" }, "uk-south": { "apiKey": "uk-key" } } }"#);
    s.get("private.de.icr.io").ok(&get_answer("private.de.icr.io", "iamapikey", "de-key"));
    s.get("registry.eu-gb.bluemix.net").ok(&get_answer("registry.eu-gb.bluemix.net", "iamapikey", "uk-key"));
}

#[test]
fn a_host_entry_beats_its_region_entry() {
    let s = Scenario::new();
    s.write_config(
        r#"{ "registries": { "eu-de": { "apiKey": "region-key" }, "private.de.icr.io": { "apiKey": "host-key" } } }"#,
    );
    s.get("private.de.icr.io").ok(&get_answer("private.de.icr.io", "iamapikey", "host-key"));
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iamapikey", "region-key"));
    s.get("registry.eu-de.bluemix.net").ok(&get_answer("registry.eu-de.bluemix.net", "iamapikey", "region-key"));
}

#[test]
fn a_region_entry_beats_the_environment_and_the_default() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.write_config(&format!(r#"{{ "apiKey": "{DEFAULT}", "registries": {{ "eu-de": {{ "apiKey": "de-key" }} }} }}"#));
    s.get("registry.eu-de.bluemix.net").ok(&get_answer("registry.eu-de.bluemix.net", "iamapikey", "de-key"));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
}

#[test]
fn the_config_file_can_be_moved_and_the_stored_logins_move_with_it() {
    let mut s = Scenario::new();
    let elsewhere = s.write("etc/icr/config.json", r#"{ "registries": { "mirror.example.com": {} } }"#);
    s.set("DOCKER_CREDENTIAL_ICR_CONFIG", elsewhere.to_str().unwrap());
    s.store("mirror.example.com", "robot", "pw").ok("");
    assert!(s.root().join("etc/icr/credentials.json").is_file());
    assert!(!s.credentials_path().exists());
    s.get("mirror.example.com").ok(&get_answer("mirror.example.com", "robot", "pw"));
}

// ---- Environment ----

#[test]
fn api_key_variables_are_read_in_order_and_an_empty_one_counts_as_unset() {
    let mut s = Scenario::new();
    s.set("BLUEMIX_API_KEY", "bluemix-key");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "bluemix-key"));
    s.set("IC_API_KEY", "ic-key");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "ic-key"));
    s.set("IBMCLOUD_API_KEY", "ibmcloud-key");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "ibmcloud-key"));
    s.set("IBMCLOUD_API_KEY", "");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "ic-key"));
}

#[test]
fn an_api_key_value_is_trimmed() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", "  spaced-key\n");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "spaced-key"));
}

#[test]
fn an_iam_token_in_the_environment_is_handed_out_as_a_bearer_token() {
    let mut s = Scenario::new();
    s.set("IC_IAM_TOKEN", "ic-token");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", "ic-token"));
    s.set("IBMCLOUD_IAM_TOKEN", "Bearer ibmcloud-token");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", "ibmcloud-token"));
    s.set("IBMCLOUD_IAM_TOKEN", "bearer  lower-token ");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", "lower-token"));
    // API keys come first.
    s.set("BLUEMIX_API_KEY", "bluemix-key");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "bluemix-key"));
}

#[test]
fn an_at_path_value_is_read_from_the_file_trimmed() {
    let mut s = Scenario::new();
    let file = s.write("secrets/apikey", "\n  file-key-0008  \n");
    s.set("IC_API_KEY", format!("@{}", file.display()));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", "file-key-0008"));
}

#[test]
fn an_at_path_value_whose_file_is_missing_is_a_one_line_error_naming_the_variable_and_path() {
    let mut s = Scenario::new();
    let missing = s.root().join("secrets/none");
    s.set("IBMCLOUD_API_KEY", format!("@{}", missing.display()));
    // Not a fall-through to the next variable: that would be another account's key.
    s.set("IC_API_KEY", "ic-key-never-shown");
    s.get("us.icr.io")
        .fails(&format!("IBMCLOUD_API_KEY: {} does not exist", missing.display()))
        .never_shows("ic-key-never-shown");
}

#[test]
fn an_at_path_value_naming_an_empty_file_or_a_directory_is_an_error() {
    let mut s = Scenario::new();
    let empty = s.write("secrets/empty", "  \n");
    s.set("BLUEMIX_API_KEY", format!("@{}", empty.display()));
    s.get("us.icr.io").fails(&format!("BLUEMIX_API_KEY: {} is empty", empty.display()));
    let dir = s.root().join("secrets");
    s.set("BLUEMIX_API_KEY", format!("@{}", dir.display()));
    s.get("us.icr.io").fails(&format!("BLUEMIX_API_KEY: cannot read {}: it is not a regular file", dir.display()));
    let bytes = s.root().join("secrets/binary");
    std::fs::write(&bytes, b"\xff\xfekey").unwrap();
    s.set("BLUEMIX_API_KEY", format!("@{}", bytes.display()));
    s.get("us.icr.io").fails(&format!("BLUEMIX_API_KEY: {} is not UTF-8 text", bytes.display()));
}

#[test]
fn a_trusted_profile_with_a_missing_token_file_is_an_error_naming_the_variable_and_path() {
    let mut s = Scenario::new();
    let missing = s.root().join("tokens/cr");
    s.set("IBMCLOUD_CR_PROFILE", "Profile-0000");
    s.set("IBMCLOUD_CR_TOKEN", format!("@{}", missing.display()));
    s.get("us.icr.io").fails(&format!("IBMCLOUD_CR_TOKEN: {} does not exist", missing.display()));
}

// ---- The ibmcloud CLI session ----

#[test]
fn the_session_refresh_token_is_handed_out_as_iamrefresh() {
    let s = Scenario::new();
    let bearer = jwt_expiring_in(3600);
    s.write_session(&format!(
        r#"{{ "IAMToken": "Bearer {bearer}", "IAMRefreshToken": "{REFRESH}", "Region": "us-south" }}"#
    ));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", REFRESH));
}

#[test]
fn the_session_bearer_token_is_used_while_it_has_more_than_a_minute_left() {
    let s = Scenario::new();
    let bearer = jwt_expiring_in(3600);
    s.write_session(&format!(r#"{{ "IAMToken": "Bearer {bearer}", "IAMRefreshToken": "" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", &bearer));
    let bearer = jwt_expiring_in(120);
    s.write_session(&format!(r#"{{ "IAMToken": "{bearer}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", &bearer));
}

#[test]
fn an_expired_or_nearly_expired_session_bearer_token_is_not_used() {
    let s = Scenario::new();
    for seconds in [-3600, -1, 0, 30, 59] {
        s.write_session(&format!(r#"{{ "IAMToken": "Bearer {}" }}"#, jwt_expiring_in(seconds)));
        s.get("us.icr.io").not_found();
    }
    s.write_session(r#"{ "IAMToken": "Bearer not-a-jwt" }"#);
    s.get("us.icr.io").not_found();
}

#[test]
fn mode_iambearer_prefers_a_valid_session_bearer_token_over_the_refresh_token() {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let bearer = jwt_expiring_in(3600);
    s.write_session(&format!(r#"{{ "IAMToken": "Bearer {bearer}", "IAMRefreshToken": "{REFRESH}" }}"#));
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", &bearer));
}

#[test]
fn the_ibmcloud_directory_beats_the_bluemix_directory() {
    let s = Scenario::new();
    s.write_session(r#"{ "IAMRefreshToken": "bluemix-refresh" }"#);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", "bluemix-refresh"));
    common::write_file(&s.home().join(".ibmcloud/config.json"), r#"{ "IAMRefreshToken": "ibmcloud-refresh" }"#);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", "ibmcloud-refresh"));
}

#[test]
fn ibmcloud_home_replaces_home_for_the_session() {
    let mut s = Scenario::new();
    s.write_session(r#"{ "IAMRefreshToken": "home-refresh" }"#);
    let other = s.root().join("cli-home");
    common::write_file(&other.join(".bluemix/config.json"), r#"{ "IAMRefreshToken": "ibmcloud-home-refresh" }"#);
    s.set("IBMCLOUD_HOME", other.to_str().unwrap());
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", "ibmcloud-home-refresh"));
    common::write_file(&other.join(".ibmcloud/config.json"), r#"{ "IAMRefreshToken": "ibmcloud-home-ibmcloud" }"#);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", "ibmcloud-home-ibmcloud"));
}

#[test]
fn ibmcloud_config_home_names_the_session_directory_itself() {
    let mut s = Scenario::new();
    s.write_session(r#"{ "IAMRefreshToken": "home-refresh" }"#);
    let dir = s.root().join("cli-config");
    common::write_file(&dir.join("config.json"), r#"{ "IAMRefreshToken": "config-home-refresh" }"#);
    s.set("IBMCLOUD_CONFIG_HOME", dir.to_str().unwrap());
    s.set("IBMCLOUD_HOME", s.home().to_str().unwrap());
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", "config-home-refresh"));
    // A config home without a session is not a reason to look elsewhere.
    std::fs::remove_file(dir.join("config.json")).unwrap();
    s.get("us.icr.io").not_found();
}

#[test]
fn the_session_is_only_read() {
    let s = Scenario::new();
    let text = format!(r#"{{ "IAMToken": "Bearer {}", "IAMRefreshToken": "{REFRESH}" }}"#, jwt_expiring_in(-10));
    let path = s.write_session(&text);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamrefresh", REFRESH));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["config.json"]);
}

#[test]
fn a_broken_session_file_is_skipped_with_a_warning() {
    let s = Scenario::new();
    let path = s.write_session("{ \"IAMRefreshToken\": ");
    s.get("us.icr.io").expect(
        1,
        common::NOT_FOUND,
        &format!(
            "docker-credential-icr: warning: ignoring ibmcloud CLI session {}: not JSON (line 1 column 21)\n",
            path.display()
        ),
    );
}

// ---- Modes ----

#[test]
fn mode_iamapikey_is_the_default_and_may_be_spelled_out() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iamapikey");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
    s.write_config(r#"{ "mode": "iamapikey", "registries": { "us.icr.io": { "mode": "iamapikey" } } }"#);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
}

#[test]
fn an_invalid_mode_in_the_environment_is_a_clear_error() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    for value in ["bearer", "iam", "apikey ", "iamapikey,iambearer"] {
        s.set("DOCKER_CREDENTIAL_ICR_MODE", value);
        s.get("us.icr.io")
            .fails("DOCKER_CREDENTIAL_ICR_MODE: not a mode: expected iamapikey, iambearer or iamrefresh")
            .never_shows(ENV);
    }
}

#[test]
fn an_invalid_mode_in_the_config_is_a_clear_error() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", ENV);
    let config = s.write_config("{\n  \"registries\": {\n    \"us.icr.io\": { \"mode\": \"bearer\" }\n  }\n}\n");
    s.get("us.icr.io").fails(&format!(
        "config file {}: registries.us.icr.io.mode: not a value this key takes: expected one of `iamapikey`, `iambearer`, `iamrefresh` at line 3 column 35",
        config.display()
    ));
}

/// The secret of a `get` answer with this username, which must be a token the fake IAM issued
/// for this key, never the key itself.
#[track_caller]
fn assert_exchanged(out: &common::Output, username: &str, key: &str) -> String {
    out.never_shows(key);
    assert_eq!(out.status, Some(0), "{out}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(answer["Username"], username, "{out}");
    answer["Secret"].as_str().unwrap().to_owned()
}

#[test]
fn a_mode_that_needs_an_iam_exchange_answers_with_the_exchanged_token() {
    let mut s = Scenario::new();
    let iam = s.fake_iam();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let bearer = assert_exchanged(&s.get("us.icr.io"), "iambearer", ENV);
    let claims = fake_iam::jwt_claims(&bearer).expect("a JWT from the fake");
    assert!(claims.contains(&fake_iam::apikey_subject(ENV)), "{claims}");
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "IAMRefresh");
    let refresh = assert_exchanged(&s.get("us.icr.io"), "iamrefresh", ENV);
    assert_ne!(refresh, bearer);
    let grants: Vec<_> = iam.requests().iter().map(|r| r.field("apikey").map(str::to_owned)).collect();
    assert_eq!(grants, [Some(ENV.to_owned()), Some(ENV.to_owned())]);
}

#[test]
fn a_mode_from_the_config_entry_applies_to_its_registry_only() {
    let mut s = Scenario::new();
    let iam = s.fake_iam();
    s.set("IBMCLOUD_API_KEY", ENV);
    s.write_config(r#"{ "registries": { "eu-de": { "mode": "iambearer" } } }"#);
    assert_exchanged(&s.get("registry.eu-de.bluemix.net"), "iambearer", ENV);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iamapikey", ENV));
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn tokens_that_are_already_what_the_mode_asks_for_need_no_exchange() {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    s.set("IBMCLOUD_IAM_TOKEN", "Bearer ready-token");
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", "ready-token"));
    s.store("de.icr.io", "iambearer", "stored-bearer").ok("");
    s.get("de.icr.io").ok(&get_answer("de.icr.io", "iambearer", "stored-bearer"));
}

#[test]
fn a_trusted_profile_is_exchanged_for_a_bearer_token() {
    let mut s = Scenario::new();
    let iam = s.fake_iam();
    iam.add_profile("Profile-0000", "system:serviceaccount:ci:builder");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = fake_iam::cr_token_for("system:serviceaccount:ci:builder", now + 600);
    s.set("IBMCLOUD_CR_PROFILE", "Profile-0000");
    s.set("IBMCLOUD_CR_TOKEN", &token);
    assert_exchanged(&s.get("us.icr.io"), "iambearer", &token);
    let request = iam.last_request().expect("one request");
    assert_eq!(request.field("profile_id"), Some("Profile-0000"));
    assert_eq!(request.field("cr_token"), Some(token.as_str()));
}
