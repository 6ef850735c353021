//! Registry resolution (SPEC section 3) as `get` shows it: every form a client sends for an ICR
//! host is answered, every host that merely looks like one gets exactly the not-found line —
//! even with an API key in the environment — and hosts named in the config file are matched the
//! same way.

mod common;

use common::{get_answer, Scenario, ICR_HOSTS};

const KEY: &str = "env-api-key-0123456789";
const MIRROR_KEY: &str = "mirror-key-9876543210";

fn with_key() -> Scenario {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", KEY);
    s
}

#[test]
fn every_form_of_an_icr_server_url_is_answered() {
    let s = with_key();
    for url in [
        "us.icr.io",
        "us.icr.io:443",
        "https://us.icr.io",
        "https://us.icr.io/",
        "https://us.icr.io/v2/",
        "https://us.icr.io:443/v2/",
        "us.icr.io/namespace/image",
        "us.icr.io/namespace/image:tag",
        "US.ICR.IO",
        "HTTPS://Us.Icr.Io/V2/",
        "us.icr.io.",
        "https://us.icr.io.:443/",
    ] {
        s.get(url).ok(&get_answer(url, "iamapikey", KEY));
    }
}

#[test]
fn every_domain_of_the_table_is_answered() {
    let s = with_key();
    for host in ICR_HOSTS {
        s.get(host).ok(&get_answer(host, "iamapikey", KEY));
    }
}

const SPOOFED: &[&str] = &[
    "us.icr.io.evil.example",
    "https://us.icr.io@evil.example",
    "https://us.icr.io@evil.example/v2/",
    "us.icr.io@evil.example",
    "https://iamapikey:x@us.icr.io",
    "evil-icr.io",
    "evilicr.io",
    "xus.icr.io",
    "us.icr.ioo",
    "us.icr.io-evil.example",
    "icr.io.evil.example",
    "https://evil.example/us.icr.io",
    "https://evil.example?host=us.icr.io",
    "https://evil.example#us.icr.io",
    "evil.example/us.icr.io/v2/",
    "us.icr.io:5000",
    "https://us.icr.io:8443/v2/",
    "http://us.icr.io",
    "ftp://us.icr.io",
    "file:///us.icr.io",
    "us.icr.io..",
    ".us.icr.io",
    "us..icr.io",
    "us.icr.io\\@evil.example",
    "us.іcr.io",
    "registry.bluemix.net.evil.example",
    "docker.io",
    "https://index.docker.io/v1/",
    "localhost",
    "127.0.0.1:5000",
];

#[test]
fn spoofed_hosts_get_exactly_the_not_found_line_even_with_a_key_in_the_environment() {
    let s = with_key();
    for url in SPOOFED {
        s.get(url).not_found().never_shows(KEY);
    }
}

#[test]
fn spoofed_hosts_get_no_config_default_and_no_cli_session_either() {
    let s = with_key();
    s.write_config(r#"{ "apiKey": "default-key-0123456789" }"#);
    s.write_session(r#"{ "IAMRefreshToken": "session-refresh-token" }"#);
    for url in SPOOFED {
        s.get(url).not_found().never_shows(KEY).never_shows("default-key").never_shows("session-refresh");
    }
}

#[test]
fn entitled_cdn_and_staging_hosts_are_not_answered_with_iam_credentials() {
    let s = with_key();
    for host in
        ["cp.icr.io", "foo.cp.icr.io", "dd0.icr.io", "dd2.icr.io", "dd6.de.icr.io", "dd0.us.icr.io", "stg.icr.io"]
    {
        s.get(host).not_found().never_shows(KEY);
    }
}

#[test]
fn spoofed_hosts_cannot_be_stored_and_erase_says_not_found() {
    let s = Scenario::new();
    let config = s.config_path().display().to_string();
    for (url, registry) in [
        ("us.icr.io.evil.example", "us.icr.io.evil.example"),
        ("evil-icr.io", "evil-icr.io"),
        ("cp.icr.io", "cp.icr.io"),
        ("us.icr.io:5000", "us.icr.io:5000"),
    ] {
        s.store(url, "iamapikey", "not-for-you").fails(&format!(
            "{registry} is not an IBM Cloud Container Registry host and is not named in {config}: docker-credential-icr stores logins for ICR only (add the host under \"registries\" there to use it for a mirror)"
        )).never_shows("not-for-you");
        s.erase(url).not_found();
    }
    s.store("https://us.icr.io@evil.example", "iamapikey", "not-for-you")
        .fails("cannot store a login: the server URL is not a valid registry address")
        .never_shows("not-for-you");
    assert!(!s.credentials_path().exists());
}

#[test]
fn a_host_named_in_the_config_is_matched_exactly_like_an_icr_host() {
    let s = Scenario::new();
    s.write_config(&format!(
        r#"{{ "registries": {{ "mirror.example.com:5000": {{ "apiKey": "{MIRROR_KEY}" }}, "plain.example.com": {{ "apiKey": "{MIRROR_KEY}" }} }} }}"#
    ));
    for url in [
        "mirror.example.com:5000",
        "https://mirror.example.com:5000/v2/",
        "MIRROR.Example.COM.:5000",
        "mirror.example.com:5000/ns/image:tag",
        "plain.example.com",
        "plain.example.com:443",
        "https://plain.example.com/v2/",
        "Plain.Example.Com.",
    ] {
        s.get(url).ok(&get_answer(url, "iamapikey", MIRROR_KEY));
    }
    for url in [
        "mirror.example.com",
        "mirror.example.com:5001",
        "mirror.example.com:5000.evil.example",
        "https://mirror.example.com:5000@evil.example",
        "evil.example/mirror.example.com:5000",
        "xmirror.example.com:5000",
        "plain.example.com.evil.example",
        "plain.example.com:8443",
        "sub.plain.example.com",
    ] {
        s.get(url).not_found().never_shows(MIRROR_KEY);
    }
}
