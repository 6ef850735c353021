//! `docker-credential-icr kubelet` driven as the kubelet drives it: the built binary, a cleared
//! environment, a temp HOME, a `CredentialProviderRequest` on stdin shaped exactly as the kubelet
//! encodes `k8s.io/kubelet/pkg/apis/credentialprovider/v1` (field names `apiVersion`, `kind`,
//! `image`, `serviceAccountToken`, `serviceAccountAnnotations`; empty ones left out), and a fake
//! IAM on 127.0.0.1.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use fake_iam::{Config as IamConfig, FakeIam, GRANT_CR_TOKEN};
use serde_json::{json, Value};

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
const V1BETA1: &str = "credentialprovider.kubelet.k8s.io/v1beta1";
const API_KEY: &str = "node-api-key-0123456789abcdef";
const PROFILE: &str = "Profile-0f1e2d3c-icr-puller";
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

struct Output {
    status: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}\n--- stdout\n{}\n--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// A temp HOME with a config file, a cache dir and (optionally) a fake IAM to point at.
struct Node {
    home: tempfile::TempDir,
    iam_url: Option<String>,
    log: Option<&'static str>,
}

impl Node {
    fn new(config: Value, iam: Option<&FakeIam>) -> Node {
        let home = tempfile::tempdir().expect("temp HOME");
        let node = Node { home, iam_url: iam.map(|i| i.url()), log: None };
        std::fs::write(node.config_path(), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        node
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join("config.json")
    }

    fn kubelet(&self, request: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_docker-credential-icr"));
        command
            .arg("kubelet")
            .env_clear()
            .env("HOME", self.home.path())
            .env("DOCKER_CREDENTIAL_ICR_CONFIG", self.config_path())
            .env("DOCKER_CREDENTIAL_ICR_CACHE_DIR", self.home.path().join("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &self.iam_url {
            command.env("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", url);
        }
        if let Some(level) = self.log {
            command.env("DOCKER_CREDENTIAL_ICR_LOG", level);
        }
        run(command, request)
    }
}

/// Runs the command with `input` on stdin; kills it and fails after [`RUN_TIMEOUT`].
fn run(mut command: Command, input: &str) -> Output {
    let mut child = command.spawn().expect("start docker-credential-icr");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        // The plugin may refuse a request before reading all of it; a broken pipe is fine.
        let _ = stdin.write_all(input.as_bytes());
    });
    fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("UTF-8 output");
            text
        })
    }
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for docker-credential-icr") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker-credential-icr kubelet did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    writer.join().unwrap();
    Output {
        status: status.code().expect("exit status"),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A request as the kubelet encodes it: `kind`, `apiVersion`, `image`, then the service account
/// fields only when set (`omitempty`).
fn request(version: &str, image: &str, token: Option<&str>, annotations: &[(&str, &str)]) -> String {
    let mut r = json!({ "kind": "CredentialProviderRequest", "apiVersion": version, "image": image });
    if let Some(token) = token {
        r["serviceAccountToken"] = json!(token);
    }
    if !annotations.is_empty() {
        r["serviceAccountAnnotations"] = annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    }
    r.to_string()
}

/// A service account token shaped as the API server issues it to the kubelet for a pod.
fn sa_token(namespace: &str, name: &str, pod: &str, exp: u64) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = json!({
        "aud": ["iam"],
        "exp": exp,
        "iat": exp.saturating_sub(3600),
        "iss": "https://kubernetes.default.svc",
        "jti": format!("jti-{pod}"),
        "kubernetes.io": {
            "namespace": namespace,
            "node": { "name": "worker-1", "uid": "node-uid-1" },
            "pod": { "name": pod, "uid": format!("pod-uid-{pod}") },
            "serviceaccount": { "name": name, "uid": format!("sa-uid-{namespace}-{name}") }
        },
        "nbf": exp.saturating_sub(3600),
        "sub": format!("system:serviceaccount:{namespace}:{name}")
    });
    format!("{}.{}.{}", b64(r#"{"alg":"RS256","kid":"k1"}"#), b64(&claims.to_string()), b64(&format!("sig-{pod}")))
}

/// Seconds in a duration as Go's `time.Duration.String` prints whole seconds (`0s`, `45s`,
/// `25m0s`, `1h0m0s`); `None` for anything else, including what Go would parse but never print.
fn go_duration(text: &str) -> Option<u64> {
    fn number(s: &str) -> Option<u64> {
        let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        canonical.then(|| s.parse().ok())?
    }
    let body = text.strip_suffix('s')?;
    let (hours, rest) = body.split_once('h').map_or((None, body), |(h, r)| (Some(h), r));
    let (minutes, seconds) = rest.split_once('m').map_or((None, rest), |(m, s)| (Some(m), s));
    let h = hours.map_or(Some(0), number)?;
    let m = minutes.map_or(Some(0), number)?;
    let s = number(seconds)?;
    // Go leaves out leading zero units and prints every unit after the first.
    let leading_zero = (hours.is_some() && h == 0) || (hours.is_none() && minutes.is_some() && m == 0);
    let gap = hours.is_some() && minutes.is_none();
    (!leading_zero && !gap && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

#[test]
fn the_go_duration_checker_accepts_what_go_prints_and_nothing_else() {
    for (text, seconds) in [("0s", 0), ("45s", 45), ("25m0s", 1500), ("1h0m0s", 3600), ("72h3m4s", 259_384)] {
        assert_eq!(go_duration(text), Some(seconds), "{text}");
    }
    for text in ["", "0", "1h", "30m", "60s", "1h0s", "0h1m0s", "0m5s", "1m60s", "1h60m0s", "01s", "1.5s", "-1s", "1s "]
    {
        assert_eq!(go_duration(text), None, "{text}");
    }
}

/// The response's fields checked against the published `CredentialProviderResponse` schema:
/// exact names and casing, nothing else, `auth` values with exactly `username` and `password`.
/// Returns the parsed response and its `cacheDuration` in seconds.
fn check_schema(out: &Output, version: &str, with_token_cache_type: bool) -> (Value, u64) {
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.ends_with('\n') && out.stdout.lines().count() == 1, "{out:?}");
    let response: Value = serde_json::from_str(&out.stdout).expect("the response is JSON");
    let object = response.as_object().expect("the response is an object");
    let mut expected: BTreeSet<&str> = ["apiVersion", "kind", "cacheKeyType", "cacheDuration"].into();
    if object.contains_key("auth") {
        expected.insert("auth");
    }
    if with_token_cache_type {
        expected.insert("serviceAccountTokenCacheType");
        assert_eq!(response["serviceAccountTokenCacheType"], "ServiceAccount");
    }
    assert_eq!(object.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected, "{out:?}");
    assert_eq!(response["apiVersion"], version);
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["cacheKeyType"], "Registry");
    if let Some(auth) = object.get("auth") {
        let auth = auth.as_object().expect("auth is a map");
        assert!(!auth.is_empty(), "an empty auth is left out, not sent");
        for value in auth.values() {
            let entry = value.as_object().expect("an auth entry is an object");
            assert_eq!(entry.keys().map(String::as_str).collect::<BTreeSet<_>>(), ["password", "username"].into());
            assert!(entry["username"].is_string() && entry["password"].is_string());
        }
    }
    let duration = response["cacheDuration"].as_str().expect("cacheDuration is a string");
    let seconds = go_duration(duration).unwrap_or_else(|| panic!("`{duration}` is not in Go duration syntax"));
    (response, seconds)
}

fn api_key_node(extra: Value) -> Node {
    let mut config = json!({ "apiKey": API_KEY });
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    Node::new(config, None)
}

#[test]
fn an_icr_image_gets_the_node_api_key_for_its_registry_with_the_default_cache_duration() {
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1.0", None, &[]));
    assert_eq!(
        out.stdout,
        format!(
            "{{\"apiVersion\":\"{V1}\",\"kind\":\"CredentialProviderResponse\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"1h0m0s\",\"auth\":{{\"us.icr.io\":{{\"username\":\"iamapikey\",\"password\":\"{API_KEY}\"}}}}}}\n"
        ),
        "{out:?}"
    );
    assert_eq!((out.status, out.stderr.as_str()), (0, ""), "{out:?}");
    check_schema(&out, V1, false);
}

#[test]
fn the_api_key_cache_duration_comes_from_kubelet_cache_duration() {
    let node = api_key_node(json!({ "kubeletCacheDuration": "45m" }));
    let out = node.kubelet(&request(V1, "de.icr.io/team/app@sha256:0123456789abcdef", None, &[]));
    let (response, seconds) = check_schema(&out, V1, false);
    assert_eq!((response["cacheDuration"].as_str(), seconds), (Some("45m0s"), 2700));
    assert_eq!(response["auth"]["de.icr.io"]["username"], "iamapikey");
}

#[test]
fn a_v1beta1_request_is_answered_in_v1beta1() {
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1BETA1, "private.jp.icr.io/team/app:2", None, &[]));
    let (response, _) = check_schema(&out, V1BETA1, false);
    assert_eq!(response["auth"]["private.jp.icr.io"]["password"], API_KEY);
}

#[test]
fn images_outside_icr_get_a_valid_response_without_auth() {
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY));
    let node = Node::new(json!({ "apiKey": API_KEY, "mode": "iambearer" }), Some(&iam));
    for image in [
        "nginx",
        "nginx:1.25",
        "library/nginx",
        "docker.io/library/nginx:latest",
        "quay.io/team/app:1",
        "us.icr.io.evil.example/team/app:1",
        "evil-icr.io/team/app",
        "cp.icr.io/cp/app:1",
        "us.icr.io:5000/team/app",
    ] {
        let out = node.kubelet(&request(V1, image, None, &[]));
        assert_eq!(
            out.stdout,
            format!("{{\"apiVersion\":\"{V1}\",\"kind\":\"CredentialProviderResponse\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"0s\"}}\n"),
            "{image}: {out:?}"
        );
        assert_eq!((out.status, out.stderr.as_str()), (0, ""), "{image}: {out:?}");
        check_schema(&out, V1, false);
    }
    assert_eq!(iam.request_count(), 0, "no IAM request for an image that is not ICR");
}

#[test]
fn a_bearer_token_is_cached_for_at_most_half_of_its_remaining_life() {
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY).lifetime(3000));
    let node = Node::new(json!({ "apiKey": API_KEY, "mode": "iambearer" }), Some(&iam));
    let before = now();
    let out = node.kubelet(&request(V1, "uk.icr.io/team/app:1", None, &[]));
    let after = now();
    let (response, seconds) = check_schema(&out, V1, false);
    assert_eq!(response["auth"]["uk.icr.io"]["username"], "iambearer");
    let token = response["auth"]["uk.icr.io"]["password"].as_str().unwrap();
    let claims: Value = serde_json::from_str(&fake_iam::jwt_claims(token).expect("a JWT")).unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(seconds <= exp.saturating_sub(before) / 2, "{seconds} s is more than half of the token's life");
    assert!(seconds >= exp.saturating_sub(after) / 2, "{seconds} s is less than half of the token's life");
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn a_service_account_token_is_exchanged_for_the_configured_trusted_profile() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let iam = FakeIam::start(IamConfig::new().profile(PROFILE, token.clone()).lifetime(3600));
    let node = Node::new(json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let before = now();
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
    let after = now();
    let (response, seconds) = check_schema(&out, V1, true);
    assert_eq!(response["auth"]["us.icr.io"]["username"], "iambearer");
    let bearer = response["auth"]["us.icr.io"]["password"].as_str().unwrap();
    let claims: Value = serde_json::from_str(&fake_iam::jwt_claims(bearer).unwrap()).unwrap();
    assert_eq!(claims["sub"], format!("profile:{PROFILE}"));
    let exp = claims["exp"].as_u64().unwrap();
    assert!(seconds <= exp.saturating_sub(before) / 2 && seconds >= exp.saturating_sub(after) / 2, "{seconds}");
    let requests = iam.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field("grant_type"), Some(GRANT_CR_TOKEN));
    assert_eq!(requests[0].field("cr_token"), Some(token.as_str()));
    assert_eq!(requests[0].field("profile_id"), Some(PROFILE));
    assert_eq!(requests[0].field("profile_name"), None);
    assert_eq!(out.stderr, "");
}

#[test]
fn a_service_account_annotation_picks_the_trusted_profile() {
    let token = sa_token("team-b", "builder", "ci-1", now() + 3600);
    let iam = FakeIam::start(IamConfig::new().profile_named("Profile-other", "ci-puller", token.clone()));
    let node = Node::new(json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let out = node.kubelet(&request(
        V1,
        "icr.io/team/tool:3",
        Some(&token),
        &[("icr.ibm.com/trusted-profile-name", "ci-puller")],
    ));
    let (response, _) = check_schema(&out, V1, true);
    assert_eq!(response["auth"]["icr.io"]["username"], "iambearer");
    let sent = iam.last_request().unwrap();
    assert_eq!((sent.field("profile_name"), sent.field("profile_id")), (Some("ci-puller"), None));

    let out = node.kubelet(&request(
        V1,
        "icr.io/team/tool:3",
        Some(&token),
        &[("icr.ibm.com/trusted-profile-id", PROFILE), ("icr.ibm.com/trusted-profile-name", "ci-puller")],
    ));
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (
            1,
            "",
            "docker-credential-icr: error: kubelet: the service account has both icr.ibm.com/trusted-profile-id and icr.ibm.com/trusted-profile-name: keep one\n"
        ),
        "{out:?}"
    );
}

#[test]
fn without_a_trusted_profile_a_service_account_token_falls_back_to_the_node_credentials() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
    let (response, seconds) = check_schema(&out, V1, true);
    assert_eq!(response["auth"]["us.icr.io"]["password"], API_KEY);
    assert_eq!(seconds, 3600);
}

#[test]
fn two_service_accounts_never_share_a_cached_token_while_one_account_reuses_its_own() {
    let exp = now() + 3600;
    let a1 = sa_token("team-a", "puller", "app-1", exp);
    let a2 = sa_token("team-a", "puller", "app-2", exp + 60);
    let b1 = sa_token("team-b", "puller", "web-1", exp);
    let iam = FakeIam::start(
        IamConfig::new().profile(PROFILE, a1.clone()).profile(PROFILE, a2.clone()).profile(PROFILE, b1.clone()),
    );
    let node = Node::new(json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let bearer = |token: &str| {
        let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(token), &[]));
        let (response, _) = check_schema(&out, V1, true);
        response["auth"]["us.icr.io"]["password"].as_str().unwrap().to_owned()
    };
    let first = bearer(&a1);
    assert_eq!(iam.request_count(), 1);
    assert_eq!(bearer(&a2), first, "another pod of the same service account reuses the cached token");
    assert_eq!(iam.request_count(), 1);
    let other = bearer(&b1);
    assert_ne!(other, first, "another service account gets its own token");
    assert_eq!(iam.request_count(), 2);
    assert_eq!(iam.last_request().unwrap().field("cr_token"), Some(b1.as_str()));
}

#[test]
fn an_expired_token_claiming_a_cached_account_is_not_given_its_cached_token() {
    let a1 = sa_token("team-a", "puller", "app-1", now() + 3600);
    let forged = sa_token("team-a", "puller", "app-9", now().saturating_sub(60));
    let iam = FakeIam::start(IamConfig::new().profile(PROFILE, a1.clone()));
    let node = Node::new(json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    check_schema(&node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&a1), &[])), V1, true);
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&forged), &[]));
    assert_eq!(iam.request_count(), 2, "the expired token went to IAM instead of reading the cache");
    assert_eq!((out.status, out.stdout.as_str()), (1, ""), "{out:?}");
    assert!(
        out.stderr.starts_with("docker-credential-icr: error: kubelet: ") && out.stderr.contains("BXNIM0487E"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(&forged) && !out.stderr.contains(&a1), "{out:?}");
}

#[test]
fn malformed_requests_fail_on_stderr_with_nothing_on_stdout() {
    let node = api_key_node(json!({}));
    let image_request = |version: &str, kind: &str| {
        json!({ "kind": kind, "apiVersion": version, "image": "us.icr.io/team/app:1" }).to_string()
    };
    let cases = [
        (String::new(), "the request is not valid JSON (line 1, column 0): expected a CredentialProviderRequest".to_owned()),
        (" ".repeat((1 << 20) + 1), "the request is larger than 1 MiB: expected a CredentialProviderRequest".to_owned()),
        ("us.icr.io/team/app:1".to_owned(), "the request is not valid JSON (line 1, column 1): expected a CredentialProviderRequest".to_owned()),
        ("[]".to_owned(), "the request is not a JSON object: expected a CredentialProviderRequest".to_owned()),
        (
            format!("{} {{}}", image_request(V1, "CredentialProviderRequest")),
            // The second object starts one past the space after the first.
            format!(
                "the request is not valid JSON (line 1, column {}): expected a CredentialProviderRequest",
                image_request(V1, "CredentialProviderRequest").len() + 2
            ),
        ),
        (
            image_request("credentialprovider.kubelet.k8s.io/v2", "CredentialProviderRequest"),
            "apiVersion `credentialprovider.kubelet.k8s.io/v2` is not one this plugin speaks: expected credentialprovider.kubelet.k8s.io/v1 or credentialprovider.kubelet.k8s.io/v1beta1".to_owned(),
        ),
        (
            image_request("credentialprovider.kubelet.k8s.io/v1alpha1", "CredentialProviderRequest"),
            "apiVersion `credentialprovider.kubelet.k8s.io/v1alpha1` is not one this plugin speaks: expected credentialprovider.kubelet.k8s.io/v1 or credentialprovider.kubelet.k8s.io/v1beta1".to_owned(),
        ),
        (image_request(V1, "CredentialProviderResponse"), "kind `CredentialProviderResponse` is not CredentialProviderRequest".to_owned()),
        (json!({ "kind": "CredentialProviderRequest", "apiVersion": V1 }).to_string(), "the request names no image".to_owned()),
        (
            json!({ "kind": "CredentialProviderRequest", "apiVersion": V1, "image": 7 }).to_string(),
            "the request's `image` has the wrong type".to_owned(),
        ),
        (
            json!({ "kind": "CredentialProviderRequest", "apiVersion": V1, "image": "x/y", "serviceAccountToken": ["secret-token"] }).to_string(),
            "the request's `serviceAccountToken` has the wrong type".to_owned(),
        ),
        (request(V1, "us.icr.io@evil.example/team/app", None, &[]), "image `us.icr.io@evil.example/team/app`: the server URL is not a valid registry address".to_owned()),
    ];
    for (input, message) in cases {
        let out = node.kubelet(&input);
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (1, "", format!("docker-credential-icr: error: kubelet: {message}\n").as_str()),
            "{input}"
        );
    }
}

#[test]
fn no_secret_reaches_stderr_even_at_debug_level() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY).profile(PROFILE, token.clone()));
    let mut node = Node::new(
        json!({ "apiKey": API_KEY, "mode": "iambearer", "registries": { "de.icr.io": { "trustedProfile": { "profileId": PROFILE } } } }),
        Some(&iam),
    );
    node.log = Some("debug");
    for (image, sa) in [("us.icr.io/team/app:1", None), ("de.icr.io/team/app:1", Some(token.as_str()))] {
        let out = node.kubelet(&request(V1, image, sa, &[]));
        let (response, _) = check_schema(&out, V1, sa.is_some());
        let password =
            response["auth"].as_object().unwrap().values().next().unwrap()["password"].as_str().unwrap().to_owned();
        assert!(out.stderr.contains("docker-credential-icr: debug: kubelet: "), "debug logging is on: {out:?}");
        for secret in [API_KEY, token.as_str(), password.as_str()] {
            // Any 12-character piece of a secret is enough to count as leaking it.
            for start in (0..secret.len().saturating_sub(12)).step_by(12) {
                assert!(!out.stderr.contains(&secret[start..start + 12]), "a secret on stderr: {out:?}");
            }
        }
    }
}

#[test]
fn the_packaged_config_matches_every_icr_domain_as_the_kubelet_matches_images() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/kubernetes/credential-provider-config.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let patterns: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "matchImages:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- \"").and_then(|l| l.strip_suffix('"')))
        .collect();
    assert_eq!(patterns.len(), 5, "{patterns:?}");
    // The kubelet's URLsMatch: the same number of labels, each matched by a glob that spans
    // exactly one label; no port in either.
    let matches = |pattern: &str, host: &str| {
        let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
        p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
    };
    for region in docker_credential_icr::registry::REGIONS {
        for host in region.domains() {
            assert!(patterns.iter().any(|p| matches(p, host)), "{host} is matched by none of {patterns:?}");
        }
    }
    for line in
        ["serviceAccountTokenAudience: iam", "requireServiceAccount: false", "cacheType: ServiceAccount", "- kubelet"]
    {
        assert!(text.lines().any(|l| l.trim() == line), "{line}");
    }
}
