//! Runs the `fake-iam` binary and talks to it over a raw socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn post(url: &str, body: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /identity/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn binary_serves_and_writes_port_file_and_log() {
    let dir = std::env::temp_dir().join(format!("fake-iam-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("url");
    let log = dir.join("log.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-iam"))
        .args(["--apikey", "k1", "--apikey", "k2", "--lifetime", "77"])
        .args(["--profile", "Profile-p1", "--trusts", "system:serviceaccount:ns:sa"])
        .args(["--script", "503,429:Wed, 21 Oct 2015 07:28:00 GMT"])
        .arg("--port-file")
        .arg(&port_file)
        .arg("--log")
        .arg(&log)
        .args(["--max-seconds", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(std::fs::read_to_string(&port_file).unwrap(), url);

    let body = "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=k2";
    assert!(post(&url, body).starts_with("HTTP/1.1 503 "));
    let r = post(&url, body);
    assert!(r.starts_with("HTTP/1.1 429 "));
    assert!(r.contains("\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"));
    let r = post(&url, body);
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    assert!(r.contains("\"expires_in\":77"));
    let cr = fake_iam::cr_token_for("system:serviceaccount:ns:sa", fake_iam_now() + 600);
    let cr_body = |profile: &str| {
        format!("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Acr-token&cr_token={cr}&{profile}")
    };
    let r = post(&url, &cr_body("profile_name=Profile-p1-name"));
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    let r = post(&url, &cr_body("profile_name=Profile-p1"));
    assert!(r.starts_with("HTTP/1.1 400 ") && r.contains("BXNIM0487E"), "an id is not a name: {r}");

    child.kill().unwrap();
    child.wait().unwrap();
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 5);
    assert!(lines.contains("\"apikey\":\"k2\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binary_exits_after_max_seconds_and_rejects_bad_flags() {
    let t = Instant::now();
    let out =
        Command::new(env!("CARGO_BIN_EXE_fake-iam")).args(["--max-seconds", "1", "--any-apikey"]).output().unwrap();
    assert!(out.status.success());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("http://127.0.0.1:"));

    for bad in [&["--bogus"][..], &["--profile", "p"], &["--script", "nonsense"], &["--port", "x"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_fake-iam")).args(bad).args(["--max-seconds", "1"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

fn fake_iam_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
