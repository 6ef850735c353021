//! `docker-credential-icr kubelet` driven as the kubelet drives it: the built binary, a cleared
//! environment, a temp HOME, a `CredentialProviderRequest` on stdin shaped exactly as the kubelet
//! encodes `k8s.io/kubelet/pkg/apis/credentialprovider/v1` (field names `apiVersion`, `kind`,
//! `image`, `serviceAccountToken`, `serviceAccountAnnotations`; empty ones left out), and a fake
//! IAM on 127.0.0.1. Every response the plugin writes is decoded by [`kubelet_wire`], which is as
//! strict as the kubelet's own decoder (and refuses a little more), so a field, a casing or a
//! duration the kubelet would refuse fails the test that produced it.

mod common;

use base64::Engine;
use common::kubelet::{self as decoder, node, request, sa_token, Node, V1, V1BETA1};
use common::{unix_now as now, Output, Scenario};
use fake_iam::{Config as IamConfig, FakeIam, GRANT_CR_TOKEN};
use serde_json::{json, Value};

const API_KEY: &str = "node-api-key-0123456789abcdef";
const PROFILE: &str = "Profile-0f1e2d3c-icr-puller";

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

#[test]
fn the_strict_decoder_reads_durations_as_go_does() {
    // Go 1.27's time.ParseDuration on each input, recorded once.
    let go: &[(&str, Option<i64>)] = &[
        ("0", Some(0)),
        ("0s", Some(0)),
        ("-0", Some(0)),
        ("+0", Some(0)),
        ("", None),
        ("1", None),
        ("s", None),
        (".s", None),
        ("1.s", Some(1_000_000_000)),
        (".5s", Some(500_000_000)),
        ("1.5h", Some(5_400_000_000_000)),
        ("2h45m", Some(9_900_000_000_000)),
        ("1h0m0s", Some(3_600_000_000_000)),
        ("300ms", Some(300_000_000)),
        ("-1.5h", Some(-5_400_000_000_000)),
        ("1us", Some(1000)),
        ("1\u{b5}s", Some(1000)),
        ("1\u{3bc}s", Some(1000)),
        ("1ns", Some(1)),
        ("1d", None),
        ("1H", None),
        ("1h ", None),
        (" 1h", None),
        ("2562047h47m16.854775807s", Some(i64::MAX)),
        ("2562047h47m16.854775808s", None),
        ("2562047h47m16s", Some(9_223_372_036_000_000_000)),
        ("2562048h", None),
        ("9223372036854775807ns", Some(i64::MAX)),
        ("9223372036854775808ns", None),
        ("-9223372036854775808ns", Some(i64::MIN)),
        ("-9223372036854775809ns", None),
        ("0.1ns", Some(0)),
        ("1.0000000000000000000001s", Some(1_000_000_000)),
        ("99999999999999999999s", None),
        ("15m0.5s", Some(900_500_000_000)),
        ("1h1h", Some(7_200_000_000_000)),
        ("1e3s", None),
        ("1_0s", None),
        ("0x10s", None),
        ("00001s", Some(1_000_000_000)),
        ("1.s5m", Some(301_000_000_000)),
        ("3.000000000000000000000000000001h", Some(10_800_000_000_000)),
    ];
    for (text, expected) in go {
        assert_eq!(decoder::parse_go_duration(text).ok(), *expected, "{text:?}");
    }
}

#[test]
fn the_strict_decoder_refuses_every_response_the_kubelet_refuses() {
    // Each response with what the kubelet 1.36 plugin code did with it (its strict decoder, the
    // apiVersion and cacheKeyType checks), recorded once by running that code on this list.
    const OK: &str = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","cacheDuration":"1h0m0s","auth":{"us.icr.io":{"username":"iamapikey","password":"k"}}}"#;
    let with = |from: &str, to: &str| OK.replacen(from, to, 1);
    let refused_by_the_kubelet = [
        with(r#""auth""#, r#""serviceAccountTokenCacheType":"ServiceAccount","auth""#),
        with("cacheKeyType", "CacheKeyType"),
        with(r#""cacheDuration""#, r#""cachekeytype":"Registry","cacheDuration""#),
        with(r#""cacheDuration""#, r#""cacheKeyType":"Image","cacheDuration""#),
        with(r#""password":"k""#, r#""password":"k","email":"e""#),
        with(r#""username""#, r#""Username""#),
        with(
            r#"{"us.icr.io""#,
            r#"{"a":{"username":"u","password":"p"},"a":{"username":"v","password":"q"},"us.icr.io""#,
        ),
        with("1h0m0s", "2562048h0m0s"),
        with("1h0m0s", "4611686018427387904h"),
        with("1h0m0s", "1d"),
        with("1h0m0s", "9223372036854775808ns"),
        with(r#""1h0m0s""#, "3600"),
        with(r#""Registry""#, r#""registry""#),
        with(r#""cacheKeyType":"Registry","#, ""),
        with("CredentialProviderResponse", "CredentialProviderRequest"),
        with(r#""auth""#, r#""metadata":{},"auth""#),
        with("/v1\"", "/v1alpha1\""),
        format!("{OK}{{}}"),
    ];
    for response in &refused_by_the_kubelet {
        assert!(decoder::decode(&format!("{response}\n"), V1, None).is_err(), "{response}");
    }
    // What the kubelet would take but no plugin should send: refused here too.
    let sloppy = [
        with(r#","password":"k""#, ""),
        with(r#""username":"iamapikey""#, r#""username":null"#),
        with("1h0m0s", "-1s"),
        with(r#","cacheDuration":"1h0m0s""#, ""),
        OK.to_owned(), // without its newline
    ];
    for response in &sloppy[..4] {
        assert!(decoder::decode(&format!("{response}\n"), V1, None).is_err(), "{response}");
    }
    assert!(decoder::decode(&sloppy[4], V1, None).is_err());
    // The password must not be the service account token the request carried.
    assert!(decoder::decode(&format!("{OK}\n"), V1, Some("k")).is_err());
    // And what the kubelet takes is taken.
    for response in
        [OK.to_owned(), with("1h0m0s", "2562047h47m16s"), with("/v1\"", "/v1beta1\""), with("Registry", "Global")]
    {
        let version = if response.contains("v1beta1") { V1BETA1 } else { V1 };
        let decoded =
            decoder::decode(&format!("{response}\n"), version, None).unwrap_or_else(|e| panic!("{e}: {response}"));
        assert_eq!(decoded.api_version, version);
    }
}

#[test]
fn no_answer_of_iam_makes_the_kubelet_cache_a_token_beyond_its_life_or_an_hour() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let bearer = |exp: u64| {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(&format!(r#"{{"sub":"profile","exp":{exp}}}"#)))
    };
    let cases = [
        // expires_in 2^63, the token itself good for 10 minutes: at most 5 minutes.
        (
            format!(
                r#"{{"access_token":"{}","expires_in":9223372036854775808,"token_type":"Bearer"}}"#,
                bearer(now() + 600)
            ),
            300,
        ),
        // expires_in and exp both absurd: half of the hour an IAM token lives at most.
        (
            format!(
                r#"{{"access_token":"{}","expires_in":18446744073709551615,"expiration":18446744073709551615}}"#,
                bearer(u64::MAX / 2)
            ),
            1800,
        ),
        // expiration a minute away though expires_in says an hour: half a minute.
        (format!(r#"{{"access_token":"opaque-token","expires_in":3600,"expiration":{}}}"#, now() + 60), 30),
    ];
    for (answer, at_most) in cases {
        let iam = FakeIam::start(IamConfig::new().behavior(fake_iam::Behavior::Answer(answer.clone())));
        let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
        let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
        let (_, seconds) = check_schema(&out, V1, Some(&token));
        assert!(seconds <= at_most && seconds + 2 >= at_most, "{seconds} s for {answer}: {out}");
    }
    // An expiration already past: the token is never handed to the kubelet.
    let answer = format!(r#"{{"access_token":"opaque-token","expires_in":3600,"expiration":{}}}"#, now() - 60);
    let iam = FakeIam::start(IamConfig::new().behavior(fake_iam::Behavior::Answer(answer)));
    let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
    out.status(1).stdout_is("");
    assert!(out.stderr().contains("had already expired when it arrived"), "{out}");
}

#[test]
fn a_bearer_token_that_claims_to_live_for_ever_is_cached_for_half_an_hour() {
    let mut node = node(&json!({}), None);
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for exp in ["9223372036854775807", "1e300", "18446744073709551615"] {
        let token = format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(&format!(r#"{{"exp":{exp}}}"#)));
        node.set("IBMCLOUD_IAM_TOKEN", &token);
        let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", None, &[]));
        let (response, seconds) = check_schema(&out, V1, None);
        assert_eq!(
            (response["auth"]["us.icr.io"]["password"].as_str(), seconds),
            (Some(token.as_str()), 1800),
            "{exp}"
        );
    }
}

/// The response as the kubelet decodes it ([`decoder::decode`]), and its `cacheDuration` in
/// seconds, which must also be printed exactly as Go prints a duration.
fn check_schema(out: &Output, version: &str, token: Option<&str>) -> (Value, u64) {
    out.status(0);
    let decoded = decoder::decode(&out.stdout(), version, token).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(decoded.cache_key_type, "Registry", "{out}");
    assert!(decoded.auth.values().all(|(username, _)| !username.is_empty()), "every auth entry names its user: {out}");
    let response: Value = serde_json::from_slice(&out.stdout).expect("the response is JSON");
    if let Some(auth) = response.get("auth") {
        assert!(!auth.as_object().expect("auth is a map").is_empty(), "an empty auth is left out, not sent");
    }
    let duration = response["cacheDuration"].as_str().expect("cacheDuration is a string");
    let seconds = go_duration(duration).unwrap_or_else(|| panic!("`{duration}` is not as Go prints a duration"));
    assert_eq!(decoded.cache_seconds(), seconds);
    assert_eq!(decoded.cache_duration_ns % 1_000_000_000, 0);
    (response, seconds)
}

fn api_key_node(extra: Value) -> Scenario {
    let mut config = json!({ "apiKey": API_KEY });
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    node(&config, None)
}

#[test]
fn an_icr_image_gets_the_node_api_key_for_its_registry_with_the_default_cache_duration() {
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1.0", None, &[]));
    out.ok(&format!(
        "{{\"apiVersion\":\"{V1}\",\"kind\":\"CredentialProviderResponse\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"1h0m0s\",\"auth\":{{\"us.icr.io\":{{\"username\":\"iamapikey\",\"password\":\"{API_KEY}\"}}}}}}\n"
    ));
    check_schema(&out, V1, None);
}

#[test]
fn the_api_key_cache_duration_comes_from_kubelet_cache_duration() {
    let node = api_key_node(json!({ "kubeletCacheDuration": "45m" }));
    let out = node.kubelet(&request(V1, "de.icr.io/team/app@sha256:0123456789abcdef", None, &[]));
    let (response, seconds) = check_schema(&out, V1, None);
    assert_eq!((response["cacheDuration"].as_str(), seconds), (Some("45m0s"), 2700));
    assert_eq!(response["auth"]["de.icr.io"]["username"], "iamapikey");
}

#[test]
fn a_v1beta1_request_is_answered_in_v1beta1() {
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1BETA1, "private.jp.icr.io/team/app:2", None, &[]));
    let (response, _) = check_schema(&out, V1BETA1, None);
    assert_eq!(response["auth"]["private.jp.icr.io"]["password"], API_KEY);
}

#[test]
fn images_outside_icr_get_a_valid_response_without_auth() {
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY));
    let node = node(&json!({ "apiKey": API_KEY, "mode": "iambearer" }), Some(&iam));
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
        out.ok(&format!(
            "{{\"apiVersion\":\"{V1}\",\"kind\":\"CredentialProviderResponse\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"0s\"}}\n"
        ));
        check_schema(&out, V1, None);
    }
    assert_eq!(iam.request_count(), 0, "no IAM request for an image that is not ICR");
}

#[test]
fn a_bearer_token_is_cached_for_at_most_half_of_its_remaining_life() {
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY).lifetime(3000));
    let node = node(&json!({ "apiKey": API_KEY, "mode": "iambearer" }), Some(&iam));
    let before = now();
    let out = node.kubelet(&request(V1, "uk.icr.io/team/app:1", None, &[]));
    let after = now();
    let (response, seconds) = check_schema(&out, V1, None);
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
    let iam = FakeIam::start(IamConfig::new().profile(PROFILE, "system:serviceaccount:team-a:puller").lifetime(3600));
    let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let before = now();
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
    let after = now();
    let (response, seconds) = check_schema(&out, V1, Some(&token));
    assert_eq!(
        response.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"],
        "the service-account path answers with the published fields and nothing else: {out}"
    );
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
    out.quiet();
}

#[test]
fn a_service_account_annotation_picks_the_trusted_profile() {
    let token = sa_token("team-b", "builder", "ci-1", now() + 3600);
    let iam = FakeIam::start(IamConfig::new().profile_named(
        "Profile-other",
        "ci-puller",
        "system:serviceaccount:team-b:builder",
    ));
    let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let out = node.kubelet(&request(
        V1,
        "icr.io/team/tool:3",
        Some(&token),
        &[("icr.ibm.com/trusted-profile-name", "ci-puller")],
    ));
    let (response, _) = check_schema(&out, V1, Some(&token));
    assert_eq!(response["auth"]["icr.io"]["username"], "iambearer");
    let sent = iam.last_request().unwrap();
    assert_eq!((sent.field("profile_name"), sent.field("profile_id")), (Some("ci-puller"), None));

    let out = node.kubelet(&request(
        V1,
        "icr.io/team/tool:3",
        Some(&token),
        &[("icr.ibm.com/trusted-profile-id", PROFILE), ("icr.ibm.com/trusted-profile-name", "ci-puller")],
    ));
    out.expect(
        1,
        "",
        "docker-credential-icr: error: kubelet: the service account has both icr.ibm.com/trusted-profile-id and icr.ibm.com/trusted-profile-name: keep one\n",
    );
}

#[test]
fn without_a_trusted_profile_a_service_account_token_falls_back_to_the_node_credentials() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&token), &[]));
    let (response, seconds) = check_schema(&out, V1, Some(&token));
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
        IamConfig::new()
            .profile(PROFILE, "system:serviceaccount:team-a:puller")
            .profile(PROFILE, "system:serviceaccount:team-b:puller"),
    );
    let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    let bearer = |token: &str| {
        let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(token), &[]));
        let (response, _) = check_schema(&out, V1, Some(token));
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
    let iam = FakeIam::start(IamConfig::new().profile(PROFILE, "system:serviceaccount:team-a:puller"));
    let node = node(&json!({ "trustedProfile": { "profileId": PROFILE } }), Some(&iam));
    check_schema(&node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&a1), &[])), V1, Some(&a1));
    let out = node.kubelet(&request(V1, "us.icr.io/team/app:1", Some(&forged), &[]));
    assert_eq!(iam.request_count(), 2, "the expired token went to IAM instead of reading the cache");
    out.status(1).stdout_is("");
    assert!(
        out.stderr().starts_with("docker-credential-icr: error: kubelet: ") && out.stderr().contains("BXNIM0407E"),
        "{out}"
    );
    out.never_shows(&forged).never_shows(&a1);
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
        out.expect(1, "", &format!("docker-credential-icr: error: kubelet: {message}\n"));
    }
}

#[test]
fn no_secret_reaches_stderr_even_at_debug_level() {
    let token = sa_token("team-a", "puller", "app-1", now() + 3600);
    let iam = FakeIam::start(IamConfig::new().apikey(API_KEY).profile(PROFILE, "system:serviceaccount:team-a:puller"));
    let mut node = node(
        &json!({ "apiKey": API_KEY, "mode": "iambearer", "registries": { "de.icr.io": { "trustedProfile": { "profileId": PROFILE } } } }),
        Some(&iam),
    );
    node.set("DOCKER_CREDENTIAL_ICR_LOG", "debug");
    for (image, sa) in [("us.icr.io/team/app:1", None), ("de.icr.io/team/app:1", Some(token.as_str()))] {
        let out = node.kubelet(&request(V1, image, sa, &[]));
        let (response, _) = check_schema(&out, V1, sa);
        let password =
            response["auth"].as_object().unwrap().values().next().unwrap()["password"].as_str().unwrap().to_owned();
        assert!(out.stderr().contains("docker-credential-icr: debug: kubelet: "), "debug logging is on: {out}");
        // Nor any 12-character piece of one (`never_shows`); stdout holds the answer itself.
        let stderr_only = Output { stdout: Vec::new(), ..out };
        for secret in [API_KEY, token.as_str(), password.as_str()] {
            stderr_only.never_shows(secret);
        }
    }
}

/// The `matchImages` patterns of a shipped `CredentialProviderConfig`.
fn packaged_patterns(file: &str) -> (String, Vec<String>) {
    let path = format!("{}/packaging/kubernetes/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let patterns: Vec<String> = text
        .lines()
        .skip_while(|l| l.trim() != "matchImages:")
        .skip(1)
        .filter(|l| !l.trim().starts_with('#'))
        .map_while(|l| l.trim().strip_prefix("- \"").and_then(|l| l.strip_suffix('"')).map(str::to_owned))
        .collect();
    (text, patterns)
}

/// The kubelet's `URLsMatch` for a pattern without a path: the same port (or none in both), the
/// same number of labels, each matched by a glob that spans exactly one label.
fn kubelet_matches(pattern: &str, image: &str) -> bool {
    let registry = image.split('/').next().unwrap();
    let split = |s: &str| match s.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.to_owned()),
        None => (s.to_owned(), String::new()),
    };
    let ((p_host, p_port), (i_host, i_port)) = (split(pattern), split(registry));
    let (p, h): (Vec<&str>, Vec<&str>) = (p_host.split('.').collect(), i_host.split('.').collect());
    p_port == i_port && p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

#[test]
fn the_packaged_configs_match_every_icr_domain_with_and_without_its_port_as_the_kubelet_does() {
    for file in ["credential-provider-config.yaml", "credential-provider-config-node.yaml"] {
        let (text, patterns) = packaged_patterns(file);
        assert_eq!(patterns.len(), 10, "{file}: {patterns:?}");
        for region in docker_credential_icr::registry::REGIONS {
            for host in region.domains() {
                for image in [format!("{host}/ns/app"), format!("{host}:443/ns/app")] {
                    assert!(
                        patterns.iter().any(|p| kubelet_matches(p, &image)),
                        "{file}: {image} is matched by none of {patterns:?}"
                    );
                }
                let other_port = format!("{host}:5000/ns/app");
                assert!(!patterns.iter().any(|p| kubelet_matches(p, &other_port)), "{file}: {other_port}");
            }
        }
        assert!(text.lines().any(|l| l.trim() == "- name: docker-credential-icr"), "{file}");
        assert!(text.lines().any(|l| l.trim() == "- kubelet"), "{file}");
    }
    let (text, _) = packaged_patterns("credential-provider-config.yaml");
    for line in ["serviceAccountTokenAudience: iam", "requireServiceAccount: false", "cacheType: ServiceAccount"] {
        assert!(text.lines().any(|l| l.trim() == line), "{line}");
    }
    let (node_text, _) = packaged_patterns("credential-provider-config-node.yaml");
    assert!(
        !node_text.lines().any(|l| l.trim() == "tokenAttributes:"),
        "a kubelet before 1.34 refuses tokenAttributes.cacheType"
    );
}

#[test]
fn an_image_written_with_port_443_gets_its_credentials_under_that_port() {
    let node = api_key_node(json!({}));
    let out = node.kubelet(&request(V1, "us.icr.io:443/team/app", None, &[]));
    let (response, _) = check_schema(&out, V1, None);
    let auth = response["auth"].as_object().unwrap();
    assert_eq!(auth.keys().collect::<Vec<_>>(), ["us.icr.io:443"], "{out}");
    assert_eq!(auth["us.icr.io:443"]["password"], API_KEY);
    // The kubelet applies an auth key to the image only when it matches as a pattern would.
    assert!(kubelet_matches("us.icr.io:443", "us.icr.io:443/team/app"));
    assert!(!kubelet_matches("us.icr.io", "us.icr.io:443/team/app"));
}
