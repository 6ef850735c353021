//! The IAM token exchange (SPEC section 6), driven through the built binary against the fake
//! IAM on 127.0.0.1: every grant with the exact request IAM receives and the exact answer
//! `get` prints; the token cache (reuse, refresh at 80 %, stale fallback, corrupt files, where
//! it lives and what it holds); single flight across 64 processes; every fault IAM or the
//! network can throw, each a single clear line; and no secret on stderr at any log level.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::iam::*;
use common::mode_of;
use common::{get_answer, unix_now, Output, Scenario};
use fake_iam::{Behavior, FakeIam, RequestRecord, BX_BASIC_AUTH, GRANT_APIKEY, GRANT_CR_TOKEN};
use serde_json::json;

const SERVER: &str = "us.icr.io";

/// Checks what every token request must look like, whatever the grant.
#[track_caller]
fn assert_token_request(request: &RequestRecord, authorization: Option<&str>) {
    assert_eq!(request.method, "POST", "{request:?}");
    assert_eq!(request.path, "/identity/token", "{request:?}");
    assert_eq!(request.query, None, "{request:?}");
    assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"), "{request:?}");
    assert_eq!(request.accept.as_deref(), Some("application/json"), "{request:?}");
    assert_eq!(request.authorization.as_deref(), authorization, "{request:?}");
}

#[track_caller]
fn the_request(iam: &FakeIam) -> RequestRecord {
    let requests = iam.requests();
    assert_eq!(requests.len(), 1, "expected exactly one request: {requests:#?}");
    requests.into_iter().next().expect("one request")
}

/// A bearer token the fake issued for `sub` with `grant`, valid for `lifetime` seconds.
#[track_caller]
fn assert_issued(token: &str, sub: &str, grant: &str, client: &str, lifetime: u64) {
    let claims = claims(token);
    assert_eq!(claims["sub"], sub, "{claims}");
    assert_eq!(claims["grant_type"], grant, "{claims}");
    assert_eq!(claims["client_id"], client, "{claims}");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), lifetime, "{claims}");
}

/// A quiet `get` of `server` that answered `iambearer` with a one-hour token of the default
/// client, issued for `sub` by `grant`, after exactly one plain token request (returned).
#[track_caller]
fn assert_bearer_answer(run: &Output, server: &str, iam: &FakeIam, sub: &str, grant: &str) -> RequestRecord {
    let (username, token) = run.answer(server);
    run.quiet();
    assert_eq!(username, "iambearer");
    assert_issued(&token, sub, grant, "default", 3600);
    let request = the_request(iam);
    assert_token_request(&request, None);
    request
}

fn apikey_form(key: &str) -> std::collections::BTreeMap<String, String> {
    form(&[("grant_type", GRANT_APIKEY), ("apikey", key), ("response_type", "cloud_iam")])
}

// ---------------------------------------------------------------------------------------------
// Grants

#[test]
fn iambearer_mode_from_env_exchanges_the_api_key() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let run = case.get(SERVER);
    let request = assert_bearer_answer(&run, SERVER, &iam, &fake_iam::apikey_subject(API_KEY), GRANT_APIKEY);
    assert_eq!(request.form, apikey_form(API_KEY));
    assert_eq!(
        request.body,
        format!("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={API_KEY}&response_type=cloud_iam")
    );
}

#[test]
fn iambearer_mode_from_the_config_file_exchanges_the_api_key() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_API_KEY", API_KEY);
    case.write_config_json(&json!({ "mode": "iambearer" }));
    let run = case.get("https://de.icr.io/v2/");
    let request =
        assert_bearer_answer(&run, "https://de.icr.io/v2/", &iam, &fake_iam::apikey_subject(API_KEY), GRANT_APIKEY);
    assert_eq!(request.form, apikey_form(API_KEY));
}

#[test]
fn iamrefresh_mode_exchanges_the_api_key_as_client_bx_and_answers_the_refresh_token() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    let run = case.get(SERVER);
    // The fake's first token: its refresh token is `fake-refresh.1.<base64url(1)>`.
    run.status(0).stdout_is(&get_answer(SERVER, "iamrefresh", &fake_refresh_token(1))).quiet();
    assert_eq!(iam.tokens_issued(), 1);
    let request = the_request(&iam);
    assert_token_request(&request, Some(BX_BASIC_AUTH));
    assert_eq!(request.authorization.as_deref(), Some("Basic Yng6Yng="));
    assert_eq!(request.form, apikey_form(API_KEY));
}

#[test]
fn iamapikey_mode_makes_no_request() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_API_KEY", API_KEY);
    case.get(SERVER).status(0).stdout_is(&get_answer(SERVER, "iamapikey", API_KEY)).quiet();
    assert_eq!(iam.request_count(), 0);
    assert_eq!(cache_files(&case.cache_dir()), Vec::<std::path::PathBuf>::new());
}

#[test]
fn trusted_profile_id_from_env_with_the_cr_token_value() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_CR_PROFILE", PROFILE_ID).set("IBMCLOUD_CR_TOKEN", cr_token());
    let run = case.get(SERVER);
    let request = assert_bearer_answer(&run, SERVER, &iam, &format!("profile:{PROFILE_ID}"), GRANT_CR_TOKEN);
    assert_eq!(
        request.form,
        form(&[
            ("grant_type", GRANT_CR_TOKEN),
            ("cr_token", cr_token()),
            ("profile_id", PROFILE_ID),
            ("response_type", "cloud_iam")
        ])
    );
}

#[test]
fn trusted_profile_name_from_env_with_the_cr_token_in_a_file() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    let token_file = case.secret_file("sa-token", &format!("{}\n", cr_token()));
    case.set("IBMCLOUD_CR_PROFILE", PROFILE_NAME).set("IBMCLOUD_CR_TOKEN", format!("@{}", token_file.display()));
    let run = case.get(SERVER);
    let request = assert_bearer_answer(&run, SERVER, &iam, &format!("profile:{PROFILE_ID}"), GRANT_CR_TOKEN);
    assert_eq!(
        request.form,
        form(&[
            ("grant_type", GRANT_CR_TOKEN),
            ("cr_token", cr_token()),
            ("profile_name", PROFILE_NAME),
            ("response_type", "cloud_iam")
        ])
    );
}

#[test]
fn trusted_profile_from_the_config_file_by_id_and_by_name() {
    for (profile, field, value) in [
        (json!({ "profileId": PROFILE_ID }), "profile_id", PROFILE_ID),
        (json!({ "profileName": PROFILE_NAME }), "profile_name", PROFILE_NAME),
    ] {
        let iam = fake_iam(|c| c);
        let case = Scenario::with_iam(&iam);
        let token_file = case.secret_file("cr-token", cr_token());
        let mut trusted = profile.clone();
        trusted["crTokenFile"] = json!(token_file);
        case.write_config_json(&json!({ "registries": { "jp.icr.io": { "trustedProfile": trusted } } }));
        let run = case.get("jp.icr.io");
        let request = assert_bearer_answer(&run, "jp.icr.io", &iam, &format!("profile:{PROFILE_ID}"), GRANT_CR_TOKEN);
        assert_eq!(
            request.form,
            form(&[
                ("grant_type", GRANT_CR_TOKEN),
                ("cr_token", cr_token()),
                (field, value),
                ("response_type", "cloud_iam")
            ])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cache

fn bearer_case(iam: &FakeIam) -> Scenario {
    let mut case = Scenario::with_iam(iam);
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    case
}

#[test]
fn a_second_get_uses_the_cached_token() {
    let iam = fake_iam(|c| c);
    let case = bearer_case(&iam);
    let first = case.get(SERVER);
    let (_, token) = first.answer(SERVER);
    let second = case.get(SERVER);
    second.status(0).stdout_is(&first.stdout()).quiet();
    assert_eq!(iam.request_count(), 1);
    // A different registry with the same credential shares the token.
    case.get("de.icr.io").status(0).stdout_is(&get_answer("de.icr.io", "iambearer", &token));
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn no_cache_asks_iam_every_time_and_writes_nothing() {
    let iam = fake_iam(|c| c);
    let mut case = bearer_case(&iam);
    case.set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
    let mut tokens = BTreeSet::new();
    for n in 1..=3 {
        let run = case.get(SERVER);
        tokens.insert(run.answer(SERVER).1);
        run.quiet();
        assert_eq!(iam.request_count(), n);
    }
    assert_eq!(tokens.len(), 3, "each get got its own token");
    assert!(!case.cache_dir().exists(), "no cache directory with NO_CACHE");
}

#[test]
fn the_cache_dir_setting_is_honoured_and_the_files_are_private_and_hold_no_credential() {
    let iam = fake_iam(|c| c);
    let mut case = bearer_case(&iam);
    let dir = case.home().join("custom").join("token-cache");
    case.set("DOCKER_CREDENTIAL_ICR_CACHE_DIR", &dir);
    let token_file = case.secret_file("cr-token", cr_token());
    case.write_config_json(&json!({
        "registries": { "jp.icr.io": { "trustedProfile": { "profileId": PROFILE_ID, "crTokenFile": token_file } } }
    }));
    let (_, apikey_token) = case.get(SERVER).answer(SERVER);
    let (_, profile_token) = case.get("jp.icr.io").answer("jp.icr.io");
    assert_eq!(iam.request_count(), 2);

    assert!(!case.cache_dir().exists(), "nothing in the default cache dir");
    assert_eq!(mode_of(&dir), 0o700);
    let files = all_files(&dir);
    assert_eq!(cache_files(&dir).len(), 2, "one cache file per credential: {files:?}");
    let mut held = String::new();
    for file in &files {
        assert_eq!(mode_of(file), 0o600, "{}", file.display());
        let text = fs::read_to_string(file).expect("read cache file");
        for secret in [API_KEY, cr_token()] {
            assert!(!text.contains(secret), "{} holds a credential: {text}", file.display());
        }
        held.push_str(&text);
    }
    // What they do hold is the tokens, so that the next get can use them.
    assert!(held.contains(&apikey_token) && held.contains(&profile_token));
    // And the next get does.
    case.get(SERVER).status(0).stdout_is(&get_answer(SERVER, "iambearer", &apikey_token));
    assert_eq!(iam.request_count(), 2);
}

#[test]
fn a_corrupt_or_foreign_cache_file_is_ignored_and_replaced() {
    let iam = fake_iam(|c| c);
    let case = bearer_case(&iam);
    case.get(SERVER).status(0);
    let path = the_cache_file(&case.cache_dir());
    let good = read_json(&path);
    let mut foreign = good.clone();
    foreign["version"] = json!(2);
    let mut unknown_field = good.clone();
    unknown_field["fromTheFuture"] = json!(true);
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{not json".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        b"[]".to_vec(),
        serde_json::to_vec(&json!({ "version": 99, "whatever": 1 })).unwrap(),
        serde_json::to_vec(&foreign).unwrap(),
        serde_json::to_vec(&unknown_field).unwrap(),
    ];
    for (n, bytes) in junk.iter().enumerate() {
        fs::write(&path, bytes).unwrap();
        let run = case.get(SERVER);
        let (_, token) = run.answer(SERVER);
        run.quiet();
        assert_eq!(iam.request_count(), n as u64 + 2, "junk {n} was not ignored");
        let replaced = read_json(&path);
        assert_eq!(replaced["version"], 1, "junk {n} was not replaced: {replaced}");
        assert_eq!(replaced["token"]["access"], token.as_str());
        assert_eq!(mode_of(&path), 0o600);
    }
}

#[test]
fn a_token_past_80_percent_of_its_lifetime_is_refreshed_and_one_before_is_not() {
    let iam = fake_iam(|c| c.lifetime(20));
    let case = bearer_case(&iam);
    let (_, first) = case.get(SERVER).answer(SERVER);
    assert_issued(&first, &fake_iam::apikey_subject(API_KEY), GRANT_APIKEY, "default", 20);
    let path = the_cache_file(&case.cache_dir());
    let cached = read_json(&path);
    let lifetime = cached["token"]["expires_at"].as_u64().unwrap() - cached["token"]["issued_at"].as_u64().unwrap();
    assert_eq!(lifetime, 20, "{cached}");

    // Half-way (fresh until 16 s, 6 s of margin): reused.
    let now = unix_now();
    rewrite_cached_token(&path, &first, now - 10, now + 10);
    case.get(SERVER).status(0).stdout_is(&get_answer(SERVER, "iambearer", &first));
    assert_eq!(iam.request_count(), 1);

    // 18 s into 20 (2 s past the 80 % mark): refreshed.
    let now = unix_now();
    rewrite_cached_token(&path, &first, now - 18, now + 2);
    let run = case.get(SERVER);
    let (_, second) = run.answer(SERVER);
    run.quiet();
    assert_ne!(second, first);
    assert_eq!(iam.request_count(), 2);
    assert_eq!(read_json(&path)["token"]["access"], second.as_str(), "the new token is cached");
}

#[test]
fn a_token_whose_whole_life_is_under_a_second_of_freshness_is_fetched_every_time() {
    // 80 % of 1 s rounds to nothing: such a token is never reused.
    let iam = fake_iam(|c| c.lifetime(1));
    let case = bearer_case(&iam);
    for n in 1..=2 {
        case.get(SERVER).status(0);
        assert_eq!(iam.request_count(), n);
    }
}

const STALE_TOKEN: &str = "stale-but-usable-access-token-0b6c1e9f";

/// A case whose cache holds [`STALE_TOKEN`], issued `age` s ago and expiring in `left` s.
fn case_with_cached_token(iam: &FakeIam, age: u64, left: u64) -> Scenario {
    let case = bearer_case(iam);
    case.get(SERVER).status(0);
    let now = unix_now();
    rewrite_cached_token(&the_cache_file(&case.cache_dir()), STALE_TOKEN, now - age, now + left);
    iam.clear_requests();
    case
}

#[test]
fn a_stale_token_stands_in_when_iam_fails_with_a_warning_that_holds_no_secret() {
    let iam = fake_iam(|c| c);
    let case = case_with_cached_token(&iam, 600, 120);
    iam.set_script(vec![Behavior::Status(500); 4]);
    let run = case.get(SERVER);
    run.status(0).stdout_is(&get_answer(SERVER, "iambearer", STALE_TOKEN));
    assert_eq!(iam.requests().len(), 4, "retried, then gave up");
    let stderr = blank_request_id(&run.stderr());
    let prefix = format!(
        "docker-credential-icr: warning: IAM at {} refused the API key (HTTP 500, BXNIM0100E) (request id <ID>); using the cached token, which expires in ",
        iam.url()
    );
    let rest = stderr.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected stderr:\n{}", run));
    let seconds = rest.strip_suffix(" s\n").unwrap_or_else(|| panic!("unexpected stderr:\n{}", run));
    let seconds: u64 = seconds.parse().unwrap_or_else(|_| panic!("unexpected stderr:\n{}", run));
    assert!((60..=120).contains(&seconds), "{seconds}");
    for secret in [API_KEY, STALE_TOKEN] {
        assert!(!run.stderr().contains(secret), "secret on stderr:\n{}", run);
    }
}

#[test]
fn a_token_with_under_10_s_left_does_not_stand_in() {
    let iam = fake_iam(|c| c);
    let case = case_with_cached_token(&iam, 3590, 5);
    iam.set_script(vec![Behavior::Status(503); 4]);
    let run = case.get(SERVER);
    assert_eq!(
        blank_request_id(&run.error_line()),
        format!("IAM at {} refused the API key (HTTP 503, BXNIM0103E) (request id <ID>)", iam.url())
    );
    assert!(!run.all_text().contains(STALE_TOKEN), "{}", run);
}

// ---------------------------------------------------------------------------------------------
// Single flight

#[test]
fn sixty_four_parallel_cold_gets_make_one_request() {
    const N: usize = 64;
    let iam = fake_iam(|c| c.behavior(Behavior::Delay(Duration::from_millis(300))));
    let case = Arc::new(bearer_case(&iam));
    let start = Arc::new(Barrier::new(N));
    let runs: Vec<Output> = (0..N)
        .map(|_| {
            let (case, start) = (case.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                case.get(SERVER)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("get thread"))
        .collect();
    assert_eq!(iam.request_count(), 1, "{:#?}", iam.requests());
    let (_, token) = runs[0].answer(SERVER);
    for run in &runs {
        run.status(0).stdout_is(&get_answer(SERVER, "iambearer", &token)).quiet();
    }
}

// ---------------------------------------------------------------------------------------------
// Faults: one clear line on stdout, exit 1, never a secret, never longer than the bound

/// Runs a bearer `get` against `iam` and checks what every failure must be.
#[track_caller]
fn failing_get(case: &Scenario) -> (String, Output) {
    let run = case.get(SERVER);
    let line = run.error_line();
    assert!(run.elapsed < GET_BOUND, "get took {:?}:\n{}", run.elapsed, run);
    for secret in [API_KEY, UNKNOWN_KEY, cr_token()] {
        assert!(!run.all_text().contains(secret), "secret in the output:\n{}", run);
    }
    (line, run)
}

#[test]
fn a_500_is_retried_and_the_second_answer_used() {
    let iam = fake_iam(|c| c.behavior(Behavior::Status(500)));
    let run = bearer_case(&iam).get(SERVER);
    run.answer(SERVER);
    run.quiet();
    let requests = iam.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [Some(500), Some(200)]);
    assert_eq!(requests[0].form, requests[1].form);
}

#[test]
fn repeated_503s_end_in_one_line_after_a_bounded_number_of_tries() {
    let iam = fake_iam(|c| c.script(vec![Behavior::Status(503); 20]));
    let (line, _) = failing_get(&bearer_case(&iam));
    assert_eq!(
        blank_request_id(&line),
        format!("IAM at {} refused the API key (HTTP 503, BXNIM0103E) (request id <ID>)", iam.url())
    );
    assert_eq!(iam.request_count(), 4);
}

#[test]
fn a_501_is_not_retried() {
    let iam = fake_iam(|c| c.script(vec![Behavior::Status(501); 4]));
    let (line, _) = failing_get(&bearer_case(&iam));
    assert_eq!(
        blank_request_id(&line),
        format!("IAM at {} refused the API key (HTTP 501, BXNIM0105E) (request id <ID>)", iam.url())
    );
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn a_429_with_retry_after_seconds_is_retried_no_sooner() {
    let iam = fake_iam(|c| c.behavior(Behavior::retry_after("1")));
    let run = bearer_case(&iam).get(SERVER);
    run.answer(SERVER);
    assert_eq!(iam.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [Some(429), Some(200)]);
    assert!(run.elapsed >= Duration::from_secs(1), "retried after {:?}", run.elapsed);
}

#[test]
fn a_429_with_an_http_date_retry_after_is_retried_no_sooner() {
    let iam = fake_iam(|c| c);
    let asked = Instant::now();
    // An HTTP date has whole seconds: "now + 3 s", rounded down, is at least 2 s away.
    iam.set_script([Behavior::retry_after(httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3)))]);
    let run = bearer_case(&iam).get(SERVER);
    run.answer(SERVER);
    assert_eq!(iam.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [Some(429), Some(200)]);
    assert!(asked.elapsed() >= Duration::from_secs(2), "retried after {:?}", asked.elapsed());
}

#[test]
fn a_429_asking_for_longer_than_the_cap_is_not_retried() {
    let iam = fake_iam(|c| c.script(vec![Behavior::retry_after("120"); 4]));
    let (line, run) = failing_get(&bearer_case(&iam));
    assert_eq!(
        blank_request_id(&line),
        format!(
            "IAM at {} refused the API key (HTTP 429, BXNIM0436E) (request id <ID>): IAM is rate-limiting; try again shortly",
            iam.url()
        )
    );
    assert_eq!(iam.request_count(), 1);
    assert!(run.elapsed < Duration::from_secs(120));
}

#[test]
fn an_unknown_api_key_names_iam_code_message_and_request_id_but_not_the_key() {
    let iam = fake_iam(|c| c);
    let mut case = bearer_case(&iam);
    case.set("IBMCLOUD_API_KEY", UNKNOWN_KEY);
    let (line, _) = failing_get(&case);
    assert_eq!(
        blank_request_id(&line),
        format!(
            "IAM at {} refused the API key (HTTP 400, BXNIM0415E): Provided API key could not be found (request id <ID>): check the key or profile, or create a new one",
            iam.url()
        )
    );
    assert_eq!(iam.request_count(), 1, "a 400 is not retried");
}

#[test]
fn an_iam_message_that_echoes_the_key_in_any_form_is_not_shown() {
    // IAM's free text can hold what was sent, as it was, in another case, or cut short: none of
    // it reaches the line, only IAM's code and request id.
    let lower = API_KEY.to_ascii_lowercase();
    for echoed in [API_KEY.to_owned(), API_KEY.to_ascii_uppercase(), API_KEY[..API_KEY.len() - 1].to_owned(), lower] {
        let message = format!("API key {echoed} is locked");
        let iam = fake_iam(|c| c.behavior(Behavior::iam_error(403, "BXNIM0513E", &message)));
        let (line, run) = failing_get(&bearer_case(&iam));
        assert_eq!(
            blank_request_id(&line),
            format!(
                "IAM at {} refused the API key (HTTP 403, BXNIM0513E) (request id <ID>): check the key or profile, or create a new one",
                iam.url()
            )
        );
        run.never_shows(&echoed).never_shows(&API_KEY[4..API_KEY.len() - 4]);
    }
}

#[test]
fn a_request_id_or_code_that_echoes_the_key_is_not_shown() {
    // IAM's request ids are base64, a key's own alphabet: one that holds a run of the key, in
    // any case, is dropped, and so is a code made of it.
    let upper = API_KEY.replace('-', "").to_ascii_uppercase();
    for body in [
        format!(r#"{{"errorCode":"BXNIM0415E","context":{{"requestId":"{}"}}}}"#, API_KEY.replace('-', "")),
        format!(r#"{{"errorCode":"BXNIM0415E","context":{{"requestId":"{}"}}}}"#, &API_KEY[9..30]),
        format!(r#"{{"errorCode":"{}"}}"#, &upper[4..16]),
        format!(r#"{{"errors":[{{"code":"apikey"}}],"trace":"{}"}}"#, &upper[..20]),
    ] {
        let iam = fake_iam(|c| c.behavior(Behavior::Raw { status: 400, body: body.clone() }));
        let (line, run) = failing_get(&bearer_case(&iam));
        assert!(line.starts_with(&format!("IAM at {} refused the API key (HTTP 400", iam.url())), "{body}: {line}");
        assert!(!line.contains("request id"), "{body}: {line}");
        run.never_shows(&API_KEY[9..17]).never_shows(&upper[4..12]);
    }
}

#[test]
fn a_wrong_cr_token_names_the_compute_resource_token() {
    let iam = fake_iam(|c| c);
    let mut case = Scenario::with_iam(&iam);
    case.set("IBMCLOUD_CR_PROFILE", PROFILE_ID).set("IBMCLOUD_CR_TOKEN", "not-the-cr-token-4d2a");
    let (line, run) = failing_get(&case);
    assert_eq!(
        blank_request_id(&line),
        format!(
            "IAM at {} refused the compute-resource token (HTTP 400, BXNIM0407E): the token is not valid (request id <ID>): check the token (for the audience iam, not expired) and the trusted profile and its trust rules",
            iam.url()
        )
    );
    assert!(!run.all_text().contains("not-the-cr-token-4d2a"));
}

#[test]
fn a_truncated_body_is_one_line() {
    let iam = fake_iam(|c| c.behavior(Behavior::TruncatedBody));
    let (line, _) = failing_get(&bearer_case(&iam));
    // ureq's words for the early close; nothing of the partial body (which holds a token).
    assert_eq!(line, format!("IAM at {} answered 200, but its body was cut short: Peer disconnected", iam.url()));
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn a_malformed_200_body_is_one_line() {
    let iam = fake_iam(|c| c.behavior(Behavior::MalformedBody));
    let (line, _) = failing_get(&bearer_case(&iam));
    assert_eq!(
        line,
        format!(
            "IAM at {} answered 200 with a body that is not a token response: is the endpoint an IAM server?",
            iam.url()
        )
    );
    assert_eq!(iam.request_count(), 1);
}

#[test]
fn a_stalled_iam_ends_within_the_bound() {
    let iam = fake_iam(|c| c.script(vec![Behavior::Stall(Duration::from_secs(60)); 4]));
    let (line, run) = failing_get(&bearer_case(&iam));
    assert_eq!(line, format!("IAM at {} did not answer in time: check the network or proxy, or try again", iam.url()));
    assert!(run.elapsed < GET_BOUND, "{:?}", run.elapsed);
}

#[test]
fn a_refused_connection_is_one_line() {
    let port = unused_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut case = Scenario::with_endpoint(&endpoint);
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let (line, _) = failing_get(&case);
    assert_eq!(line, format!(
            "cannot connect to IAM at {endpoint} (Connection refused (os error 111)): check the network, proxy or DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT"
        ));
}

#[test]
fn an_untrusted_tls_certificate_is_a_tls_failure_and_not_retried() {
    let tls = UntrustedTls::start();
    let mut case = Scenario::with_endpoint(&tls.url());
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let (line, _) = failing_get(&case);
    assert_eq!(
        line,
        format!(
            "TLS with IAM at {} failed: the certificate of 127.0.0.1 is issued by a certificate authority this machine does not trust; trust it by adding it to the system's trust store, by pointing SSL_CERT_FILE or SSL_CERT_DIR at it, or with \"iamCaFile\" in the config file",
            tls.url()
        )
    );
    assert_eq!(tls.connections(), 1, "a certificate that is not trusted now will not be trusted in a second");
}

#[test]
fn a_plain_http_endpoint_off_loopback_is_refused_before_any_request() {
    let mut case = Scenario::with_endpoint("http://iam.example.com");
    case.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let (line, run) = failing_get(&case);
    assert_eq!(
        line,
        "DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT: the IAM endpoint (host iam.example.com) must use https:// (http:// is allowed for a loopback address only)"
    );
    run.quiet();
    // In iamapikey mode the endpoint is never needed, so it is not even looked at.
    case.set("DOCKER_CREDENTIAL_ICR_MODE", "iamapikey");
    case.get(SERVER).status(0).stdout_is(&get_answer(SERVER, "iamapikey", API_KEY));
}

// ---------------------------------------------------------------------------------------------
// No secret in any diagnostic

/// Every action and every mode at debug level, successes and failures; then every stderr, and
/// every stdout but a successful `get`'s answer, is searched for every secret involved.
#[test]
fn debug_logs_of_every_action_and_mode_hold_no_secret() {
    const PASSWORD: &str = "stored-login-password-8e3f1a6c";
    const GIVEN_TOKEN: &str = "given-iam-access-token-2f7d9b41";
    let iam = fake_iam(|c| c);
    let mut seen = Seen {
        secrets: [API_KEY, UNKNOWN_KEY, cr_token(), PASSWORD, GIVEN_TOKEN, STALE_TOKEN].map(String::from).to_vec(),
        texts: Vec::new(),
    };

    let case_with = |vars: &[(&str, &str)]| {
        let mut case = Scenario::with_iam(&iam);
        case.set("DOCKER_CREDENTIAL_ICR_LOG", "debug");
        for (k, v) in vars {
            case.set(k, v);
        }
        case
    };

    // The modes, each from the environment; two gets each (exchange, then cache).
    let token_file_case = case_with(&[]);
    let cr_file = token_file_case.secret_file("cr-token", cr_token());
    let cr_at = format!("@{}", cr_file.display());
    let mode_cases = [
        ("iamapikey", vec![("IBMCLOUD_API_KEY", API_KEY)]),
        ("iambearer", vec![("IBMCLOUD_API_KEY", API_KEY), ("DOCKER_CREDENTIAL_ICR_MODE", "iambearer")]),
        ("iamrefresh", vec![("IBMCLOUD_API_KEY", API_KEY), ("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh")]),
        ("given token", vec![("IBMCLOUD_IAM_TOKEN", "Bearer given-iam-access-token-2f7d9b41")]),
        ("profile", vec![("IBMCLOUD_CR_PROFILE", PROFILE_ID), ("IBMCLOUD_CR_TOKEN", cr_token())]),
        ("profile @file", vec![("IBMCLOUD_CR_PROFILE", PROFILE_NAME), ("IBMCLOUD_CR_TOKEN", cr_at.as_str())]),
        (
            "no cache",
            vec![
                ("IBMCLOUD_API_KEY", API_KEY),
                ("DOCKER_CREDENTIAL_ICR_MODE", "iambearer"),
                ("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1"),
            ],
        ),
    ];
    let mut cache_dirs = Vec::new();
    let mut keep = Vec::new();
    for (what, vars) in &mode_cases {
        let case = case_with(vars);
        for n in 0..2 {
            let run = case.get(SERVER);
            run.status(0);
            seen.record(&format!("{what} get {n}"), &run, true);
        }
        cache_dirs.push(case.cache_dir());
        keep.push(case);
    }

    // Config-file modes and sources, and the other actions.
    let config_case = case_with(&[("CONFIG_DE_KEY", API_KEY)]);
    let cr_file = config_case.secret_file("cr-token", cr_token());
    config_case.write_config_json(&json!({
        "mode": "iambearer",
        "registries": {
            "de.icr.io": { "mode": "iamrefresh", "apiKeyEnv": "CONFIG_DE_KEY" },
            "jp.icr.io": { "trustedProfile": { "profileId": PROFILE_ID, "crTokenFile": cr_file } },
            "uk.icr.io": { "trustedProfile": { "profileName": PROFILE_NAME, "crTokenFile": cr_file } },
            "au.icr.io": { "apiKey": API_KEY, "mode": "iamapikey" },
            "br.icr.io": { "apiKey": UNKNOWN_KEY },
            "ca.icr.io": { "trustedProfile": { "profileId": PROFILE_ID, "crTokenFile": "/nonexistent/cr-token" } }
        }
    }));
    for server in ["de.icr.io", "jp.icr.io", "uk.icr.io", "au.icr.io"] {
        let run = config_case.get(server);
        run.status(0);
        seen.record(&format!("config get {server}"), &run, true);
    }
    for server in ["br.icr.io", "ca.icr.io", "us.icr.io.evil.example", "cp.icr.io", ""] {
        let run = config_case.get(server);
        run.status(1);
        seen.record(&format!("config get {server:?}"), &run, false);
    }
    let store = json!({ "ServerURL": "us.icr.io", "Username": "iamapikey", "Secret": API_KEY }).to_string();
    let store_plain = json!({ "ServerURL": "uk.icr.io", "Username": "ci-robot", "Secret": PASSWORD }).to_string();
    let store_evil = json!({ "ServerURL": "evil.example", "Username": "u", "Secret": PASSWORD }).to_string();
    let store_token = json!({ "ServerURL": "us.icr.io", "Username": "<token>", "Secret": PASSWORD }).to_string();
    for (args, stdin, code) in [
        (&["store"][..], store.as_str(), 0),
        (&["store"][..], store_evil.as_str(), 1),
        (&["store"][..], store_token.as_str(), 1),
        (&["store"][..], "{\"ServerURL\":\"us.icr.io\",\"Secret\":", 1),
        (&["list"][..], "unused", 0),
        (&["erase"][..], "us.icr.io\n", 0),
        (&["erase"][..], "us.icr.io\n", 0),
        (&["erase"][..], "evil.example\n", 1),
        (&["list"][..], "unused", 0),
        (&["version"][..], "", 0),
        (&["--help"][..], "", 0),
        (&["frobnicate"][..], "", 1),
        (&[][..], "", 1),
        (&["get", "extra"][..], "us.icr.io\n", 1),
    ] {
        let run = config_case.run(args, stdin);
        run.status(code);
        seen.record(&format!("{args:?}"), &run, false);
    }
    // A stored `iamapikey` login is exchanged (the config's default mode is iambearer); a plain
    // one is answered as given.
    config_case.run(&["store"], &store).status(0);
    let run = config_case.get(SERVER);
    assert_eq!(run.answer(SERVER).0, "iambearer");
    seen.record("stored key get", &run, true);
    config_case.run(&["store"], &store_plain).status(0);
    let run = config_case.get("uk.icr.io");
    run.status(0).stdout_is(&get_answer("uk.icr.io", "ci-robot", PASSWORD));
    seen.record("stored login get", &run, true);
    cache_dirs.push(config_case.cache_dir());

    // Failures at IAM.
    let bearer = [("IBMCLOUD_API_KEY", API_KEY), ("DOCKER_CREDENTIAL_ICR_MODE", "iambearer")];
    for (what, script) in [
        ("500s", vec![Behavior::Status(500); 4]),
        ("501", vec![Behavior::Status(501)]),
        ("429 cap", vec![Behavior::retry_after("120")]),
        ("403 quoting the key", vec![Behavior::iam_error(403, "BXNIM0513E", &format!("key {API_KEY}"))]),
        ("truncated", vec![Behavior::TruncatedBody]),
        ("malformed", vec![Behavior::MalformedBody]),
    ] {
        iam.set_script(script);
        let run = case_with(&bearer).get(SERVER);
        run.status(1);
        seen.record(what, &run, false);
    }
    iam.set_script([]);
    let run = case_with(&[("IBMCLOUD_API_KEY", UNKNOWN_KEY), ("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh")]).get(SERVER);
    run.status(1);
    seen.record("unknown key", &run, false);
    let run =
        case_with(&[("IBMCLOUD_CR_PROFILE", PROFILE_ID), ("IBMCLOUD_CR_TOKEN", "wrong-cr-token-0f3e9a")]).get(SERVER);
    run.status(1);
    seen.record("wrong cr token", &run, false);
    seen.secrets.push("wrong-cr-token-0f3e9a".into());

    // A stale token standing in, and a corrupt cache file, at debug.
    let stale = case_with(&bearer);
    stale.get(SERVER).status(0);
    let path = the_cache_file(&stale.cache_dir());
    let now = unix_now();
    rewrite_cached_token(&path, STALE_TOKEN, now - 600, now + 120);
    iam.set_script(vec![Behavior::Status(503); 4]);
    let run = stale.get(SERVER);
    run.status(0).stdout_is(&get_answer(SERVER, "iambearer", STALE_TOKEN));
    seen.texts.push(("stale: stderr".into(), run.stderr().clone()));
    assert!(run.stderr().contains("using the cached token"), "{}", run);
    fs::write(&path, b"{corrupt").unwrap();
    let run = stale.get(SERVER);
    run.status(0);
    seen.record("corrupt cache", &run, true);
    cache_dirs.push(stale.cache_dir());

    // Every token the fake issued is in a cache file, including the access tokens of iamrefresh,
    // which get never prints.
    for dir in &cache_dirs {
        for file in cache_files(dir) {
            let entry = read_json(&file);
            for field in ["access", "refresh"] {
                if let Some(token) = entry["token"][field].as_str() {
                    seen.secrets.push(token.to_owned());
                }
            }
        }
    }
    let issued = iam.tokens_issued();
    assert!(issued >= 10, "the fake issued {issued} tokens");
    for n in 1..=issued {
        seen.secrets.push(fake_refresh_token(n));
    }
    seen.secrets.sort();
    seen.secrets.dedup();

    let debug_lines: usize = seen.texts.iter().map(|(_, t)| t.matches("docker-credential-icr: debug:").count()).sum();
    assert!(debug_lines >= 50, "debug logging was not on: {debug_lines} debug lines");
    for (what, text) in &seen.texts {
        for secret in &seen.secrets {
            assert!(!text.contains(secret.as_str()), "{what} holds a secret ({secret}):\n{text}");
        }
        // Anything shaped like a token the fake issues, even one this test did not collect.
        assert!(!text.contains("eyJhbGci") && !text.contains("fake-refresh."), "{what} holds a token:\n{text}");
    }
}

/// What the debug-log test searched, and for what.
struct Seen {
    secrets: Vec<String>,
    /// (which run and stream, its text)
    texts: Vec<(String, String)>,
}

impl Seen {
    /// Keeps a run's stderr for the search, and its stdout too unless it is `get`'s answer,
    /// whose secret joins the secrets searched for instead.
    fn record(&mut self, what: &str, run: &Output, is_answer: bool) {
        if is_answer {
            let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("get answer");
            self.secrets.push(json["Secret"].as_str().expect("Secret").to_owned());
        } else {
            self.texts.push((format!("{what}: stdout"), run.stdout().clone()));
        }
        self.texts.push((format!("{what}: stderr"), run.stderr().clone()));
    }
}
