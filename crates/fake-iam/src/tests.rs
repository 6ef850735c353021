use super::*;
use crate::iam::is_bx_auth;
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn connect(iam: &FakeIam) -> TcpStream {
    let s = TcpStream::connect(iam.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &str, close: bool) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    req
}

/// Parse one response from a buffered reader (Content-Length framing; reads
/// what is available if the connection closes early).
fn read_response(r: &mut impl BufRead) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = Vec::new();
    r.take(len as u64).read_to_end(&mut body).ok()?;
    Some(Resp { status, headers, body })
}

fn send(iam: &FakeIam, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = connect(iam);
    s.write_all(raw_request(method, path, headers, body, true).as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    read_response(&mut r).expect("a response")
}

fn post_form(iam: &FakeIam, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut h = vec![("Content-Type", FORM), ("Accept", "application/json")];
    h.extend_from_slice(headers);
    send(iam, "POST", TOKEN_PATH, &h, body)
}

fn apikey_body(key: &str) -> String {
    format!("grant_type={}&apikey={}", encode_form_component(GRANT_APIKEY), encode_form_component(key))
}

fn claims(token: &str) -> Value {
    serde_json::from_str(&jwt_claims(token).expect("jwt")).expect("claims json")
}

fn assert_iam_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["errorCode"], code, "body: {}", r.text());
    assert!(v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(v["context"]["requestId"].as_str().is_some_and(|m| m.len() > 8));
}

#[test]
fn apikey_exchange_returns_jwt_with_right_exp() {
    let iam = FakeIam::start(Config::new().apikey("k1 +/=é").lifetime(1200));
    assert!(iam.url().starts_with("http://127.0.0.1:"));
    let before = unix_now();
    let r = post_form(&iam, &[], &apikey_body("k1 +/=é"));
    let after = unix_now();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["refresh_token"], "not_supported");
    assert_eq!(v["ims_user_id"], 118);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 1200);
    assert_eq!(v["scope"], "ibm openid");
    let exp = v["expiration"].as_u64().unwrap();
    assert!(exp >= before + 1200 && exp <= after + 1200);

    let tok = v["access_token"].as_str().unwrap();
    let parts: Vec<&str> = tok.split('.').collect();
    assert_eq!(parts.len(), 3);
    for p in &parts {
        assert!(!p.is_empty() && !p.contains('='));
    }
    let header: Value = serde_json::from_slice(&base64url_decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg":"RS256","typ":"JWT","kid":"fake-iam"}));
    let c = claims(tok);
    assert_eq!(c["exp"].as_u64(), Some(exp));
    assert!(c["iat"].as_u64().unwrap() + 1200 == exp);
    assert_eq!(c["sub"], apikey_subject("k1 +/=é"));
    assert!(c["iam_id"].as_str().unwrap().starts_with("iam-"));
    assert!(c["jti"].as_str().is_some());

    // Request log.
    assert_eq!(iam.request_count(), 1);
    let reqs = iam.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, TOKEN_PATH);
    assert_eq!(q.content_type.as_deref(), Some(FORM));
    assert_eq!(q.accept.as_deref(), Some("application/json"));
    assert_eq!(q.authorization, None);
    assert_eq!(q.field("apikey"), Some("k1 +/=é"));
    assert_eq!(q.form.keys().collect::<Vec<_>>(), vec!["apikey", "grant_type"]);
    assert_eq!(q.status, Some(200));
    assert_eq!(q.behavior, None);
}

#[test]
fn tokens_are_distinct_and_lifetime_changes_while_running() {
    let iam = FakeIam::start(Config::new().any_apikey(true));
    let a = post_form(&iam, &[], &apikey_body("whatever")).json();
    iam.set_lifetime(60);
    let b = post_form(&iam, &[], &apikey_body("whatever")).json();
    assert_ne!(a["access_token"], b["access_token"]);
    assert_ne!(claims(a["access_token"].as_str().unwrap())["jti"], claims(b["access_token"].as_str().unwrap())["jti"]);
    assert_eq!(a["expires_in"], 3600);
    assert_eq!(b["expires_in"], 60);
    assert_eq!(iam.tokens_issued(), 2);
}

#[test]
fn bx_basic_auth_yields_refresh_token_that_refreshes() {
    let iam = FakeIam::start(Config::new().apikey("k"));
    let r = post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], &apikey_body("k"));
    assert_eq!(r.status, 200);
    let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt, "not_supported");
    assert!(!rt.is_empty());
    assert_eq!(iam.last_request().unwrap().authorization.as_deref(), Some(BX_BASIC_AUTH));

    let body = format!("grant_type=refresh_token&refresh_token={}", encode_form_component(&rt));
    let r2 = post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], &body);
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(claims(r2.json()["access_token"].as_str().unwrap())["sub"], apikey_subject("k"));
    // Without the client credentials, refreshing is refused.
    let r3 = post_form(&iam, &[], &body);
    assert_iam_error(&r3, 400, "BXNIM0407E");
    // The token answers as the CLI's IAM client expects: expired 0408E, ended session 0439E.
    iam.expire_refresh_tokens();
    assert_iam_error(&post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], &body), 400, "BXNIM0408E");
    let fresh = post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], &apikey_body("k")).json();
    let fresh_body = format!(
        "grant_type=refresh_token&refresh_token={}",
        encode_form_component(fresh["refresh_token"].as_str().unwrap())
    );
    assert_eq!(iam.validate("iamrefresh", fresh["refresh_token"].as_str().unwrap()), Ok(format!("ApiKey({:?})", "k")));
    iam.end_sessions();
    assert_iam_error(&post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], &fresh_body), 400, "BXNIM0439E");
    assert!(iam.validate("iamrefresh", fresh["refresh_token"].as_str().unwrap()).is_err());
    let unknown = "grant_type=refresh_token&refresh_token=never-issued";
    assert_iam_error(&post_form(&iam, &[("Authorization", BX_BASIC_AUTH)], unknown), 400, "BXNIM0407E");
    // Wrong client credentials are refused.
    let r4 = post_form(&iam, &[("Authorization", "Basic Zm9vOmJhcg==")], &apikey_body("k"));
    assert_iam_error(&r4, 400, "BXNIM0488E");
}

#[test]
fn unknown_apikey_gives_bxnim0415e() {
    let iam = FakeIam::start(Config::new().apikey("good"));
    let r = post_form(&iam, &[], &apikey_body("bad"));
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    assert_eq!(keys, ["context", "errorCode", "errorMessage"]);
    assert_eq!(v["errorCode"], "BXNIM0415E");
    assert_eq!(v["errorMessage"], "Provided API key could not be found.");
    // The context IAM sends (a captured answer's keys).
    let ctx = v["context"].as_object().unwrap();
    let mut keys: Vec<&String> = ctx.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "clusterName",
            "elapsedTime",
            "endTime",
            "host",
            "instanceId",
            "locale",
            "requestId",
            "requestType",
            "startTime",
            "threadId",
            "url",
            "userAgent"
        ]
    );
    assert!(ctx["requestId"].as_str().unwrap().len() > 16);
    assert_eq!(iam.tokens_issued(), 0);
}

#[test]
fn cr_token_grant_by_profile_id_name_or_crn_for_a_token_the_profile_trusts() {
    let sa = "system:serviceaccount:team:puller";
    let iam = FakeIam::start(
        Config::new()
            .profile_named("Profile-1234", "my-profile", sa)
            .profile("Profile-other", "system:serviceaccount:b:c"),
    );
    let g = encode_form_component(GRANT_CR_TOKEN);
    let token = cr_token_for(sa, unix_now() + 600);
    let body = |rest: &str| format!("grant_type={g}&cr_token={token}&{rest}");
    let crn = encode_form_component(&profile_crn("Profile-1234"));
    for rest in [
        "profile_id=Profile-1234".to_owned(),
        "profile_name=my-profile".to_owned(),
        format!("profile_crn={crn}"),
        "profile_id=Profile-1234&profile_name=my-profile".to_owned(),
    ] {
        let r = post_form(&iam, &[], &body(&rest));
        assert_eq!(r.status, 200, "{rest}: {}", r.text());
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["sub"], "profile:Profile-1234");
        assert!(iam.validate("iambearer", &access).is_ok());
    }
    // An id is not a name, nor a name an id; two names for different profiles; a profile that
    // does not trust the token's subject.
    for rest in [
        "profile_id=my-profile",
        "profile_name=Profile-1234",
        "profile_id=Profile-1234&profile_name=Profile-other-name",
        "profile_id=Profile-other",
        "profile_crn=crn%3Av1%3Anope",
    ] {
        assert_iam_error(&post_form(&iam, &[], &body(rest)), 400, "BXNIM0487E");
    }
    // A token that is not the cluster's, not for IAM, or expired.
    let bad_tokens = [
        "crtok-literal".to_owned(),
        cr_token_for(sa, unix_now() - 1),
        compute_resource_token(&format!(
            r#"{{"aud":"sts","exp":{},"iss":"{CLUSTER_ISSUER}","sub":"{sa}"}}"#,
            unix_now() + 600
        )),
    ];
    for bad in bad_tokens {
        let r = post_form(&iam, &[], &format!("grant_type={g}&cr_token={bad}&profile_id=Profile-1234"));
        assert_iam_error(&r, 400, "BXNIM0407E");
        assert!(r.json()["errorDetails"].as_str().is_some_and(|d| d.starts_with("the token")), "{}", r.text());
    }
    let neither = format!("grant_type={g}&cr_token={token}");
    assert_iam_error(&post_form(&iam, &[], &neither), 400, "BXNIM0109E");
    let no_tok = format!("grant_type={g}&profile_id=Profile-1234");
    assert_iam_error(&post_form(&iam, &[], &no_tok), 400, "BXNIM0109E");
}

#[test]
fn request_errors() {
    let iam = FakeIam::start(Config::new().apikey("k"));
    // Missing fields.
    assert_iam_error(&post_form(&iam, &[], ""), 400, "BXNIM0109E");
    let g = encode_form_component(GRANT_APIKEY);
    assert_iam_error(&post_form(&iam, &[], &format!("grant_type={g}")), 400, "BXNIM0109E");
    assert_iam_error(&post_form(&iam, &[], &format!("grant_type={g}&apikey=")), 400, "BXNIM0109E");
    let r = post_form(&iam, &[], &format!("grant_type={g}"));
    assert_eq!(r.json()["errorDetails"], "Property 'apikey' either missing or empty.");
    // Unsupported grant; a body IAM cannot read as a form reads as none.
    assert_iam_error(&post_form(&iam, &[], "grant_type=password"), 400, "BXNIM0104E");
    assert_iam_error(&post_form(&iam, &[], "grant_type=%zz"), 400, "BXNIM0109E");
    let r = send(&iam, "POST", TOKEN_PATH, &[("Content-Type", "application/json")], &apikey_body("k"));
    assert_iam_error(&r, 400, "BXNIM0109E");
    assert_eq!(r.json()["errorDetails"], "Property 'grant_type' either missing or empty.");
    // Content type with parameters is fine.
    let r = send(
        &iam,
        "POST",
        TOKEN_PATH,
        &[("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=utf-8")],
        &apikey_body("k"),
    );
    assert_eq!(r.status, 200);
    // Wrong method / path.
    let r = send(&iam, "GET", TOKEN_PATH, &[], "");
    assert_iam_error(&r, 405, "BXNIM0060E");
    assert_eq!(r.json()["errorDetails"], "HTTP 405 Method Not Allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = send(&iam, "POST", "/identity/tokens", &[("Content-Type", FORM)], &apikey_body("k"));
    assert_iam_error(&r, 404, "BXNIM0101E");
    assert_eq!(iam.request_count(), 10);
    assert_eq!(iam.tokens_issued(), 1);
}

#[test]
fn script_status_and_iam_error() {
    let iam = FakeIam::start(Config::new().apikey("k").script([
        Behavior::Status(500),
        Behavior::Status(503),
        Behavior::Normal,
        Behavior::iam_error(403, "BXNIM0999E", "nope"),
    ]));
    assert_iam_error(&post_form(&iam, &[], &apikey_body("k")), 500, "BXNIM0100E");
    assert_iam_error(&post_form(&iam, &[], &apikey_body("k")), 503, "BXNIM0103E");
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 200);
    let r = post_form(&iam, &[], &apikey_body("k"));
    assert_iam_error(&r, 403, "BXNIM0999E");
    assert_eq!(r.json()["errorMessage"], "nope");
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 200);
    iam.push_behavior(Behavior::Status(501));
    assert_eq!(iam.remaining_script(), vec![Behavior::Status(501)]);
    assert_iam_error(&post_form(&iam, &[], &apikey_body("k")), 501, "BXNIM0105E");
    let log = iam.requests();
    assert_eq!(log[0].behavior, Some(Behavior::Status(500)));
    assert_eq!(log[0].status, Some(500));
    assert_eq!(log[4].behavior, None);
    assert!(iam.remaining_script().is_empty());
}

#[test]
fn script_too_many_requests_retry_after_verbatim() {
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let iam = FakeIam::start(Config::new().apikey("k").script([
        Behavior::retry_after("2"),
        Behavior::retry_after(date),
        Behavior::TooManyRequests { retry_after: None },
    ]));
    let r = post_form(&iam, &[], &apikey_body("k"));
    assert_iam_error(&r, 429, "BXNIM0436E");
    assert_eq!(r.header("retry-after"), Some("2"));
    let r = post_form(&iam, &[], &apikey_body("k"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some(date));
    let r = post_form(&iam, &[], &apikey_body("k"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
}

#[test]
fn script_truncated_and_malformed() {
    let iam = FakeIam::start(Config::new().apikey("k").script([Behavior::TruncatedBody, Behavior::MalformedBody]));
    let mut s = connect(&iam);
    // Keep-alive request: the server must still close after the truncated body.
    s.write_all(raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("k"), false).as_bytes())
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"));
    let declared: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
    assert!(body.len() < declared);
    assert!(serde_json::from_str::<Value>(body).is_err());

    let r = post_form(&iam, &[], &apikey_body("k"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 200);
}

#[test]
fn script_stall_sends_nothing_then_closes() {
    let iam = FakeIam::start(Config::new().apikey("k").behavior(Behavior::Stall(Duration::from_millis(300))));
    let mut s = connect(&iam);
    let t = Instant::now();
    s.write_all(raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("k"), false).as_bytes())
        .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let took = t.elapsed();
    assert!(all.is_empty());
    assert!(took >= Duration::from_millis(280), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(iam.request_count(), 1);
    assert_eq!(iam.requests()[0].status, None);
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 200);
}

#[test]
fn script_delay_then_answers() {
    let iam = FakeIam::start(Config::new().apikey("k").behavior(Behavior::Delay(Duration::from_millis(200))));
    let t = Instant::now();
    let r = post_form(&iam, &[], &apikey_body("k"));
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert_eq!(r.status, 200);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let iam = FakeIam::start(Config::new().apikey("k"));
    let s = connect(&iam);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..3 {
        w.write_all(raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("k"), false).as_bytes())
            .unwrap();
        let resp = read_response(&mut r).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
    // Pipelined, the last one with Connection: close.
    let two = raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("k"), false)
        + &raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("x"), true);
    w.write_all(two.as_bytes()).unwrap();
    assert_eq!(read_response(&mut r).unwrap().status, 200);
    let last = read_response(&mut r).unwrap();
    assert_eq!(last.status, 400);
    assert_eq!(last.header("connection"), Some("close"));
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(iam.request_count(), 5);
}

#[test]
fn a_chunked_body_is_read_but_iam_takes_a_form_only_with_a_content_length() {
    // IAM requires Content-Length on the token request; a chunked body reads as no form.
    let iam = FakeIam::start(Config::new().apikey("k"));
    let body = apikey_body("k");
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST {TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let mut s = connect(&iam);
    s.write_all(req.as_bytes()).unwrap();
    let resp = read_response(&mut BufReader::new(s)).unwrap();
    assert_iam_error(&resp, 400, "BXNIM0109E");
    assert_eq!(iam.last_request().unwrap().field("apikey"), Some("k"), "the body was read all the same");
}

#[test]
fn concurrency_twenty_clients() {
    let iam = FakeIam::start(Config::new().apikey("k"));
    let iam_ref = &iam;
    let tokens: Vec<String> = thread::scope(|sc| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                sc.spawn(move || {
                    let r = post_form(iam_ref, &[], &apikey_body("k"));
                    assert_eq!(r.status, 200);
                    r.json()["access_token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: BTreeSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 20);
    assert_eq!(iam.request_count(), 20);
    assert_eq!(iam.tokens_issued(), 20);
    let seqs: BTreeSet<u64> = iam.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=20).collect());
}

#[test]
fn counters_and_log_management() {
    let iam = FakeIam::start(Config::new());
    assert_eq!(iam.request_count(), 0);
    assert_iam_error(&post_form(&iam, &[], &apikey_body("k")), 400, "BXNIM0415E");
    iam.add_apikey("k");
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 200);
    iam.remove_apikey("k");
    assert_eq!(post_form(&iam, &[], &apikey_body("k")).status, 400);
    iam.set_any_apikey(true);
    assert_eq!(post_form(&iam, &[], &apikey_body("z")).status, 200);
    assert_eq!(iam.request_count(), 4);
    let taken = iam.take_requests();
    assert_eq!(taken.len(), 4);
    assert!(iam.requests().is_empty());
    assert_eq!(iam.request_count(), 4);
    assert!(iam.wait_for_requests(4, Duration::from_millis(10)));
    assert!(!iam.wait_for_requests(5, Duration::from_millis(30)));
}

#[test]
fn log_file_gets_one_json_line_per_request() {
    let path = std::env::temp_dir().join(format!("fake-iam-log-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let iam = FakeIam::start(Config::new().apikey("k").log_file(&path));
        post_form(&iam, &[], &apikey_body("k"));
        post_form(&iam, &[], &apikey_body("bad"));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["form"]["apikey"], "k");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["status"], 400);
    assert_eq!(lines[1]["path"], TOKEN_PATH);
}

#[test]
fn drop_is_bounded_with_idle_keep_alive_and_stalled_connections() {
    let iam = FakeIam::start(Config::new().apikey("k").behavior(Behavior::Stall(Duration::from_secs(30))));
    let addr = iam.addr();
    let mut stalled = connect(&iam);
    stalled
        .write_all(raw_request("POST", TOKEN_PATH, &[("Content-Type", FORM)], &apikey_body("k"), false).as_bytes())
        .unwrap();
    let _idle = connect(&iam);
    assert!(iam.wait_for_requests(1, Duration::from_secs(2)));
    let t = Instant::now();
    drop(iam);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
}

#[test]
fn helpers() {
    for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
        assert_eq!(base64url_decode(&base64url(s.as_bytes())).unwrap(), s.as_bytes());
    }
    assert_eq!(base64url(b"\xfb\xff"), "-_8");
    assert_eq!(base64url(br#"{"alg":"RS256","typ":"JWT"}"#), "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
    let f = decode_form("a=1+2%2B3&b&c=%C3%A9&&a=x").unwrap();
    assert_eq!(f.get("a").map(String::as_str), Some("x"));
    assert_eq!(f.get("b").map(String::as_str), Some(""));
    assert_eq!(f.get("c").map(String::as_str), Some("é"));
    assert!(decode_form("a=%4").is_err());
    assert!(decode_form("a=%ff").is_err());
    assert_eq!(decode_form(&format!("k={}", encode_form_component("a b&c=é+"))).unwrap()["k"], "a b&c=é+");
    assert!(is_bx_auth("basic Yng6Yng="));
    assert!(!is_bx_auth("Bearer Yng6Yng="));
}

#[test]
fn script_syntax() {
    let s = parse_script("500, 429,429:2,429:Wed, 21 Oct 2015 07:28:00 GMT,stall:3,delay:250ms,truncated,malformed,ok,400:BXNIM0415E:Provided API key could not be found,503").unwrap();
    assert_eq!(
        s,
        vec![
            Behavior::Status(500),
            Behavior::TooManyRequests { retry_after: None },
            Behavior::retry_after("2"),
            Behavior::retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Behavior::Stall(Duration::from_secs(3)),
            Behavior::Delay(Duration::from_millis(250)),
            Behavior::TruncatedBody,
            Behavior::MalformedBody,
            Behavior::Normal,
            Behavior::iam_error(400, "BXNIM0415E", "Provided API key could not be found"),
            Behavior::Status(503),
        ]
    );
    assert_eq!(parse_script("").unwrap(), vec![]);
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    for bad in ["foo", "stall", "stall:x", "99", "700", "400:", "delay:-1"] {
        assert!(parse_script(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// The metadata service

const V: &str = "version=2022-03-01";

fn vpc(md: &FakeMetadata, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut h = vec![("Accept", "application/json")];
    h.extend_from_slice(headers);
    if !body.is_empty() {
        h.push(("Content-Type", "application/json"));
    }
    send(md, method, path, &h, body)
}

fn assert_vpc_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    let v = r.json();
    assert_eq!(v["errors"][0]["code"], code, "body: {}", r.text());
    assert_eq!(v["status_code"], status);
    assert_eq!(v["trace"].as_str().map(str::len), Some(36), "body: {}", r.text());
}

fn identity(md: &FakeMetadata) -> String {
    let r = vpc(
        md,
        "PUT",
        &format!("/instance_identity/v1/token?{V}"),
        &[("Metadata-Flavor", "ibm")],
        r#"{"expires_in": 300}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn the_metadata_service_hands_out_identity_tokens_and_iam_tokens_of_linked_profiles() {
    let iam = FakeIam::start(Config::new().profile("Profile-vsi", "unused").profile("Profile-other", "unused"));
    let md = FakeMetadata::start(&iam, MetadataConfig::new().default_profile("Profile-vsi"));
    let r = vpc(
        &md,
        "PUT",
        &format!("/instance_identity/v1/token?{V}"),
        &[("Metadata-Flavor", "ibm")],
        r#"{"expires_in": 300}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "created_at", "expires_at", "expires_in"]);
    assert_eq!(v["expires_in"], 300);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z') && v["expires_at"].as_str().unwrap().len() == 20, "{v}");
    let iit = v["access_token"].as_str().unwrap();
    assert!(iam.validate("iambearer", iit).is_err(), "an identity token is no IAM token");
    let bearer = format!("Bearer {iit}");
    let iam_token = |body: &str| {
        vpc(
            &md,
            "POST",
            &format!("/instance_identity/v1/iam_token?{V}"),
            &[("Metadata-Flavor", "ibm"), ("Authorization", &bearer)],
            body,
        )
    };
    for (body, profile) in [
        ("", "Profile-vsi"),
        (r#"{"trusted_profile": {"id": "Profile-vsi"}}"#, "Profile-vsi"),
        (&format!(r#"{{"trusted_profile": {{"crn": "{}"}}}}"#, profile_crn("Profile-vsi")), "Profile-vsi"),
    ] {
        let r = iam_token(body);
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["sub"], format!("profile:{profile}"));
        assert!(iam.validate("iambearer", &access).is_ok(), "the IAM beside it knows the token");
    }
    // Not linked, not existing, named twice, named by name, an unknown field.
    for body in [
        r#"{"trusted_profile": {"id": "Profile-other"}}"#,
        r#"{"trusted_profile": {"id": "Profile-none"}}"#,
        r#"{"trusted_profile": {"id": "Profile-vsi", "crn": "crn:x"}}"#,
        r#"{"trusted_profile": {"name": "Profile-vsi-name"}}"#,
        r#"{"trusted_profile": {"id": "Profile-vsi"}, "expires_in": 60}"#,
        "[1]",
    ] {
        assert_vpc_error(&iam_token(body), 400, "invalid_value");
    }
    assert_eq!(md.request_count(), 10);
    assert_eq!(iam.request_count(), 0, "the metadata service mints its tokens without HTTP");
}

#[test]
fn the_metadata_service_refuses_what_the_real_one_refuses() {
    let iam = FakeIam::start(Config::new().profile("Profile-vsi", "unused"));
    let md = FakeMetadata::start(&iam, MetadataConfig::new().linked("Profile-vsi"));
    let flavor = [("Metadata-Flavor", "ibm")];
    let put = |query: &str, headers: &[(&str, &str)], body: &str| {
        vpc(&md, "PUT", &format!("/instance_identity/v1/token{query}"), headers, body)
    };
    assert_vpc_error(&put("", &flavor, "{}"), 400, "missing_version");
    for version in ["2021-09-20", "2022-02-28", "2999-01-01", "2022-3-1", "yesterday"] {
        assert_vpc_error(&put(&format!("?version={version}"), &flavor, "{}"), 400, "invalid_value");
    }
    assert_vpc_error(&put(&format!("?{V}"), &[], "{}"), 400, "missing_metadata_flavor");
    assert_vpc_error(&put(&format!("?{V}"), &[("Metadata-Flavor", "Google")], "{}"), 400, "missing_metadata_flavor");
    for body in [
        r#"{"expires_in": 4}"#,
        r#"{"expires_in": 3601}"#,
        r#"{"expires_in": "300"}"#,
        r#"{"lifetime": 300}"#,
        "not json",
    ] {
        assert_vpc_error(&put(&format!("?{V}"), &flavor, body), 400, "invalid_value");
    }
    assert_eq!(put(&format!("?{V}"), &flavor, "{}").json()["expires_in"], 300, "the default lifetime");
    let r = send(
        &md,
        "PUT",
        &format!("/instance_identity/v1/token?{V}"),
        &[("Metadata-Flavor", "ibm"), ("Content-Type", "text/plain")],
        "{}",
    );
    assert_vpc_error(&r, 415, "unsupported_media_type");
    assert_vpc_error(
        &vpc(&md, "POST", &format!("/instance_identity/v1/token?{V}"), &flavor, "{}"),
        405,
        "method_not_allowed",
    );
    assert_vpc_error(&vpc(&md, "PUT", &format!("/identity/v1/token?{V}"), &flavor, "{}"), 404, "not_found");
    // The IAM token: a bearer it issued, unexpired; a profile when there is no default.
    let post = |auth: &str, body: &str| {
        vpc(
            &md,
            "POST",
            &format!("/instance_identity/v1/iam_token?{V}"),
            &[("Metadata-Flavor", "ibm"), ("Authorization", auth)],
            body,
        )
    };
    assert_vpc_error(&post("Bearer forged", ""), 401, "not_authorized");
    let iit = identity(&md);
    assert_vpc_error(&post(&format!("Bearer {iit}"), ""), 400, "invalid_value");
    assert_eq!(post(&format!("Bearer {iit}"), r#"{"trusted_profile":{"id":"Profile-vsi"}}"#).status, 200);
    md.expire_identity_tokens();
    assert_vpc_error(
        &post(&format!("Bearer {iit}"), r#"{"trusted_profile":{"id":"Profile-vsi"}}"#),
        401,
        "token_expired",
    );
}
