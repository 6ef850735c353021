//! What an attack from outside found, as a hostile user, process, file system and network
//! would attack: each test is named after its finding, and each failed on the release before
//! the fix. Proxies (findings 4 and 14) are in `tests/proxies.rs`, the config-file echoes
//! (finding 3) in `tests/files.rs`, IAM's echoed key (finding 13) in `tests/iam.rs`.

mod common;

use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::iam::{fake_iam, read_json, rewrite_cached_token, the_cache_file, API_KEY};
use common::terminal::{wait_for_child, Terminal};
use common::{get_answer, unix_now, Scenario};
use fake_iam::{Behavior, FakeIam};

const NOBODY: (u32, u32) = (65534, 65534);

/// A scenario whose `get` exchanges the API key for a bearer token at `iam`.
fn bearer(iam: &FakeIam) -> Scenario {
    let mut s = Scenario::with_iam(iam);
    s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    s
}

/// A scenario whose `get` answers an API key from the environment, for `exec`.
fn with_key() -> Scenario {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", API_KEY);
    s
}

/// Gives `path` and everything under it to `uid:gid`.
fn chown_all(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !fs::symlink_metadata(path).unwrap().file_type().is_symlink() {
        for entry in fs::read_dir(path).unwrap() {
            chown_all(&entry.unwrap().path(), (uid, gid));
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string for mkfifo.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Warning lines on stderr.
fn warnings(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.starts_with("docker-credential-icr: warning: ")).count()
}

// ---- 1. exec blocked signals in the child ----

#[test]
fn f01_an_exec_child_starts_with_no_signal_blocked_or_ignored() {
    let out = with_key().run(&["exec", "us.icr.io", "--", "grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"], "");
    out.status(0).quiet();
    let mask = |name: &str| {
        let stdout = out.stdout();
        let line = stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}\n{out}"));
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "signals blocked in the child\n{out}");
    // The standard signals (1 to 31); glibc's own real-time ones are the test runner's business.
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "signals ignored in the child\n{out}");
}

#[test]
fn f01_a_signal_to_the_helper_ends_a_child_that_is_not_a_shell_at_once() {
    for (signal, status) in [(libc::SIGTERM, 128 + 15), (libc::SIGINT, 128 + 2), (libc::SIGHUP, 128 + 1)] {
        let s = with_key();
        let started = Instant::now();
        let helper = s.cmd(&["exec", "us.icr.io", "--", "sleep", "30"]).start();
        wait_for_child(helper.pid(), "sleep");
        helper.signal(signal);
        let out = helper.finish();
        out.expect(status, "", "");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "signal {signal} took {:?} to end sleep",
            started.elapsed()
        );
    }
}

#[test]
fn f01_a_bash_trap_fires_when_the_helper_is_sent_sigterm() {
    let s = with_key();
    let script = r#"trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done"#;
    let mut helper = s.cmd(&["exec", "us.icr.io", "--", "bash", "-c", script]).timeout(Duration::from_secs(20)).start();
    helper.wait_for_line("ready");
    helper.signal(libc::SIGTERM);
    helper.finish().expect(42, "ready\ngot TERM\n", "");
}

#[test]
fn f01_ctrl_c_on_a_terminal_ends_the_child_and_the_helper_reports_it() {
    let s = with_key();
    let started = Instant::now();
    let mut terminal = Terminal::spawn(s.cmd(&["exec", "us.icr.io", "--", "sleep", "30"]).command());
    wait_for_child(terminal.pid(), "sleep");
    terminal.press(b"\x03");
    let (status, output) = terminal.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(128 + 2), "{output}");
    assert!(started.elapsed() < Duration::from_secs(15), "Ctrl-C took {:?}", started.elapsed());
}

// ---- 2. an unusable token cache failed the get ----

#[test]
fn f02_as_nobody_without_a_home_a_get_exchanges_without_the_cache_and_warns_once() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    let out = s
        .cmd(&["get"])
        .stdin("us.icr.io\n")
        .env("HOME", "/nonexistent")
        .without("XDG_CONFIG_HOME")
        .without("XDG_CACHE_HOME")
        .run_as(NOBODY.0, NOBODY.1)
        .run();
    let (username, _) = out.answer("us.icr.io");
    assert_eq!(username, "iambearer");
    assert_eq!(warnings(&out.stderr()), 1, "{out}");
    assert_eq!(out.stderr().lines().count(), 1, "{out}");
}

#[test]
fn f02_a_cache_directory_left_root_owned_costs_an_exchange_not_the_get() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    // As `sudo -E docker pull` leaves it: the user's home, its cache directory root's.
    fs::create_dir_all(s.cache_dir()).unwrap();
    chmod(&s.cache_dir(), 0o700);
    chown_all(&s.home(), NOBODY);
    chown_all(&s.cache_dir(), (0, 0));
    for _ in 0..2 {
        let out = s.cmd(&["get"]).stdin("us.icr.io\n").run_as(NOBODY.0, NOBODY.1).run();
        out.answer("us.icr.io");
        assert_eq!(warnings(&out.stderr()), 1, "{out}");
    }
    assert_eq!(iam.request_count(), 2, "without its cache, each get asks IAM");
}

#[test]
fn f02_a_read_only_cache_costs_an_exchange_not_the_get() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    fs::create_dir_all(s.cache_dir()).unwrap();
    chmod(&s.cache_dir(), 0o700);
    // The cache directory read-only for everyone, root included, in a private mount namespace.
    let dir = s.cache_dir().display().to_string();
    let script = format!("mount --bind {dir} {dir} && mount -o remount,bind,ro {dir} && exec \"$0\" get", dir = dir);
    let unshare = common::tool("unshare");
    let out = s
        .program(&unshare, &["--mount", "--propagation", "private", "sh", "-c", &script, common::BIN])
        .stdin("us.icr.io\n")
        .run();
    out.answer("us.icr.io");
    assert_eq!(warnings(&out.stderr()), 1, "{out}");
    assert!(out.stderr().contains("Read-only file system"), "{out}");
}

// ---- 5. the 20 s bound broke with parallel gets ----

/// Three gets at once; each must end within 20 s of its start, and none may hand out a token
/// that was already dead.
fn three_parallel_gets(s: &Scenario) -> Vec<common::Output> {
    let runs: Vec<_> = (0..3).map(|_| s.cmd(&["get"]).stdin("us.icr.io\n").spawn()).collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.wait()).collect();
    for out in &outs {
        assert!(out.elapsed < Duration::from_secs(20), "a get took {:?}\n{out}", out.elapsed);
    }
    outs
}

#[test]
fn f05_a_slow_iam_with_one_second_tokens_never_makes_a_get_outlast_20_s_nor_hand_out_a_dead_token() {
    let iam = fake_iam(|c| c.lifetime(1).script((0..6).map(|_| Behavior::Delay(Duration::from_millis(7800)))));
    for out in three_parallel_gets(&bearer(&iam)) {
        assert!(out.error_line().contains("had already expired when it arrived"), "{out}");
    }
}

#[test]
fn f05_an_iam_that_says_retry_after_5_s_twice_before_each_token_never_makes_a_get_outlast_20_s() {
    let script = (0..4).flat_map(|_| [Behavior::retry_after("5"), Behavior::retry_after("5"), Behavior::Normal]);
    let iam = fake_iam(|c| c.lifetime(1).script(script));
    let mut s = bearer(&iam);
    s.set("DOCKER_CREDENTIAL_ICR_LOG", "debug");
    let started = unix_now();
    for out in three_parallel_gets(&s) {
        if out.code() == Some(0) {
            // The token had not expired when the get handed it out: the fake's tokens carry
            // their `exp`, in whole seconds.
            let (_, token) = out.answer("us.icr.io");
            let exp = common::iam::claims(&token)["exp"].as_u64().unwrap();
            let log: Vec<String> =
                iam.requests().iter().map(|r| format!("{} {:?} {:?}", r.seq, r.behavior, r.status)).collect();
            assert!(exp >= started + out.elapsed.as_secs(), "a dead token was handed out ({log:?})\n{out}");
        } else {
            out.error_line();
        }
    }
}

#[test]
fn f05_a_waiter_whose_lock_holder_is_killed_still_ends_within_20_s() {
    // IAM never answers; the first get holds the lock, the second waits, and the first is
    // killed after 14 s: the second's own exchange must fit in what is left of its 20 s.
    let iam = fake_iam(|c| c.script((0..8).map(|_| Behavior::Stall(Duration::from_secs(40)))));
    let s = bearer(&iam);
    let holder = s.cmd(&["get"]).stdin("us.icr.io\n").spawn();
    assert!(iam.wait_for_requests(1, Duration::from_secs(10)), "the first get never asked IAM");
    let waiter = s.cmd(&["get"]).stdin("us.icr.io\n").spawn();
    std::thread::sleep(Duration::from_secs(14));
    common::procs::kill(holder.pid());
    let _ = holder.wait();
    let out = waiter.wait();
    assert!(out.elapsed < Duration::from_secs(20), "the waiter took {:?}\n{out}", out.elapsed);
    out.error_line();
}

// ---- 6. configure as root took the user's files ----

#[test]
fn f06_configure_run_as_root_in_a_users_home_leaves_them_their_files() {
    assert!(common::is_root(), "this test runs configure as root in another user's home: run the tests as root");
    const USER: (u32, u32) = (4242, 4343);
    let mut s = Scenario::new();
    s.put_helper_on_path();
    let docker = s.write_in_home(".docker/config.json", "{\n\t\"auths\": {}\n}\n");
    chmod(&docker, 0o600);
    chown_all(&s.home(), USER);
    s.run(&["configure", "--registries", "us.icr.io"], "").status(0);
    for path in [docker.clone(), docker.with_extension("json.bak")] {
        let m = fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (USER.0, USER.1, 0o600), "{}", path.display());
    }
    for created in [
        ".config",
        ".config/containers",
        ".config/containers/auth.json",
        ".config/helm",
        ".config/helm/registry",
        ".config/helm/registry/config.json",
    ] {
        let m = fs::metadata(s.in_home(created)).unwrap();
        assert_eq!((m.uid(), m.gid()), USER, "{created} belongs to the home's owner");
    }
}

// ---- 7. directories were trusted without looking at who owns them ----

/// A bearer token cached by one get, then rewritten to `planted` as another user could.
fn plant_a_token(s: &Scenario, dir: &Path) -> String {
    s.get("us.icr.io").answer("us.icr.io");
    let planted = "planted-token-from-someone-else-0123456789";
    let now = unix_now();
    rewrite_cached_token(&the_cache_file(dir), planted, now, now + 3000);
    planted.to_owned()
}

#[test]
fn f07_a_token_planted_in_a_cache_directory_others_may_write_is_never_served() {
    let iam = fake_iam(|c| c);
    let mut s = bearer(&iam);
    let shared = s.root().join("shared-cache");
    s.set("DOCKER_CREDENTIAL_ICR_CACHE_DIR", &shared);
    let planted = plant_a_token(&s, &shared);
    chmod(&shared, 0o777);
    let out = s.get("us.icr.io");
    let (_, secret) = out.answer("us.icr.io");
    assert_ne!(secret, planted);
    assert_eq!(warnings(&out.stderr()), 1, "{out}");
    assert!(out.stderr().contains("others may write"), "{out}");
}

#[test]
fn f07_a_cache_directory_of_another_user_is_never_read() {
    let iam = fake_iam(|c| c);
    let mut s = bearer(&iam);
    let theirs = s.root().join("their-cache");
    s.set("DOCKER_CREDENTIAL_ICR_CACHE_DIR", &theirs);
    let planted = plant_a_token(&s, &theirs);
    chown_all(&theirs, (4242, 4242));
    let out = s.get("us.icr.io");
    assert_ne!(out.answer("us.icr.io").1, planted);
    assert!(out.stderr().contains("is owned by uid 4242"), "{out}");
}

#[test]
fn f07_stored_logins_in_a_directory_others_may_write_are_refused_with_a_clear_error() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "stored-key-0123456789abcdef").ok("");
    chmod(&s.app_dir(), 0o777);
    let line = s.get("us.icr.io").never_shows("stored-key-0123456789abcdef").error_line();
    assert!(line.starts_with(&format!("stored logins in {} are not used: ", s.app_dir().display())), "{line}");
    assert!(line.contains("others may write"), "{line}");
    s.store("us.icr.io", "iamapikey", "another-key-0123456789").status(1);
}

// ---- 8. symbolic links were followed ----

#[test]
fn f08_a_dangling_symlink_as_a_lock_file_is_not_followed() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    s.get("us.icr.io").answer("us.icr.io");
    let cache_file = the_cache_file(&s.cache_dir());
    let lock = cache_file.with_extension("json.lock");
    let target = s.root().join("created-through-the-link");
    fs::remove_file(&lock).unwrap();
    fs::remove_file(&cache_file).unwrap();
    symlink(&target, &lock).unwrap();
    let out = s.get("us.icr.io");
    out.answer("us.icr.io");
    assert!(!target.exists(), "the lock was opened through the link\n{out}");

    let logins_lock = s.app_dir().join("credentials.json.lock");
    fs::create_dir_all(s.app_dir()).unwrap();
    symlink(&target, &logins_lock).unwrap();
    s.store("us.icr.io", "iamapikey", "k").status(1);
    assert!(!target.exists(), "the logins lock was opened through the link");
}

#[test]
fn f08_a_symlinked_cache_directory_is_not_chmodded_through_the_link() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    let elsewhere = s.root().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    chmod(&elsewhere, 0o755);
    fs::create_dir_all(s.cache_home()).unwrap();
    symlink(&elsewhere, s.cache_dir()).unwrap();
    s.get("us.icr.io").answer("us.icr.io");
    assert_eq!(fs::metadata(&elsewhere).unwrap().mode() & 0o777, 0o755);
}

// ---- 9. reads were unbounded ----

#[test]
fn f09_fifos_and_devices_are_refused_at_once() {
    let quick = Duration::from_secs(10);
    let s = Scenario::new();
    mkfifo(&s.config_path());
    let line = s.cmd(&["get"]).stdin("us.icr.io\n").timeout(quick).run().error_line();
    assert_eq!(line, format!("cannot read config file {}: it is not a regular file", s.config_path().display()));
    let line = s
        .cmd(&["get"])
        .stdin("us.icr.io\n")
        .env("DOCKER_CREDENTIAL_ICR_CONFIG", "/dev/zero")
        .timeout(quick)
        .run()
        .error_line();
    assert_eq!(line, "cannot read config file /dev/zero: it is not a regular file");

    let s = Scenario::new();
    mkfifo(&s.credentials_path());
    let line = s.cmd(&["get"]).stdin("us.icr.io\n").timeout(quick).run().error_line();
    assert!(line.contains("not a regular file"), "{line}");

    let s = Scenario::new();
    let fifo = s.root().join("key-fifo");
    mkfifo(&fifo);
    let line = s
        .cmd(&["get"])
        .stdin("us.icr.io\n")
        .env("IBMCLOUD_API_KEY", format!("@{}", fifo.display()))
        .timeout(quick)
        .run()
        .error_line();
    assert_eq!(line, format!("IBMCLOUD_API_KEY: cannot read {}: it is not a regular file", fifo.display()));

    let s = Scenario::new();
    mkfifo(&s.in_home(".docker/config.json"));
    let out = s.cmd(&["configure"]).timeout(quick).run();
    out.status(1);
    assert!(out.stderr().contains("it is not a regular file; nothing was written"), "{out}");
}

// ---- 10. a variable that is not UTF-8 was taken as unset ----

#[test]
fn f10_a_key_variable_that_is_not_text_is_an_error_not_a_reason_to_try_the_next() {
    let mut s = Scenario::new();
    s.set("IBMCLOUD_API_KEY", std::ffi::OsString::from_vec(b"key-\xff-not-text".to_vec()))
        .set("IC_API_KEY", "another-accounts-key-0123456789");
    s.get("us.icr.io")
        .fails("IBMCLOUD_API_KEY is set, but its value is not UTF-8 text: set it to the value you mean, or unset it")
        .never_shows("another-accounts-key-0123456789");
}

#[test]
fn f10_an_endpoint_that_is_not_text_is_an_error_not_public_iam() {
    let iam = fake_iam(|c| c);
    let mut s = bearer(&iam);
    s.set("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", std::ffi::OsString::from_vec(b"http://127.0.0.1:\xff".to_vec()));
    s.get("us.icr.io").fails(
        "DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT is set, but its value is not UTF-8 text: set it to the value you mean, or unset it",
    );
}

// ---- 11. a relative config path put secrets in the current directory ----

#[test]
fn f11_a_relative_config_path_is_refused_and_nothing_is_written_where_the_client_runs() {
    let mut s = Scenario::new();
    s.set("DOCKER_CREDENTIAL_ICR_CONFIG", "config.json");
    s.store("us.icr.io", "iamapikey", "key-that-must-not-land-in-cwd").fails(
        "DOCKER_CREDENTIAL_ICR_CONFIG must be an absolute path: a relative one would keep secrets in whatever directory the client runs in",
    );
    assert!(!s.root().join("credentials.json").exists());
}

// ---- 12. lifetimes were not capped ----

#[test]
fn f12_a_token_iam_says_lives_for_ever_is_cached_for_an_hour_at_most() {
    let token = common::jwt(r#"{"exp":99999999999}"#);
    let answer = format!(r#"{{"access_token":"{token}","expires_in":18446744073709551615,"token_type":"Bearer"}}"#);
    let iam = fake_iam(|c| c.behavior(Behavior::Answer(answer)));
    let s = bearer(&iam);
    s.get("us.icr.io").ok(&get_answer("us.icr.io", "iambearer", &token));
    let entry = read_json(&the_cache_file(&s.cache_dir()));
    let (issued, expires) =
        (entry["token"]["issued_at"].as_u64().unwrap(), entry["token"]["expires_at"].as_u64().unwrap());
    assert!(expires - issued <= 3600, "cached for {} s", expires - issued);
}

#[test]
fn f12_a_cache_entry_issued_in_the_future_is_stale() {
    let iam = fake_iam(|c| c);
    let s = bearer(&iam);
    let (_, first) = s.get("us.icr.io").answer("us.icr.io");
    let now = unix_now();
    // The clock was set back an hour after the token was cached.
    rewrite_cached_token(&the_cache_file(&s.cache_dir()), &first, now + 3600, now + 7200);
    let (_, second) = s.get("us.icr.io").answer("us.icr.io");
    assert_ne!(second, first);
    assert_eq!(iam.request_count(), 2);
}

// ---- 15. leftovers ----

#[test]
fn f15_temporaries_of_killed_writers_are_removed_by_the_next_write() {
    let s = Scenario::new();
    s.store("us.icr.io", "iamapikey", "first").ok("");
    let left = s.app_dir().join(".credentials.json.Xk3j9q.tmp");
    fs::write(&left, "{\"version\":1,\"logins\":{\"us.icr.io\":{\"username\":\"iamapikey\",\"secret\":\"half").unwrap();
    chmod(&left, 0o600);
    s.store("de.icr.io", "iamapikey", "second").ok("");
    assert!(!left.exists(), "the killed writer's temporary is still there");
}

#[test]
fn f15_an_exec_child_that_gets_a_token_does_not_get_the_key() {
    let iam = fake_iam(|c| c);
    let mut s = bearer(&iam);
    s.write_config(r#"{"registries":{"de.icr.io":{"apiKeyEnv":"DE_KEY"}}}"#);
    s.set("DE_KEY", API_KEY);
    let report = r#"echo "${IBMCLOUD_API_KEY:-no key} ${DE_KEY:-no de key} $ICR_USERNAME""#;
    for host in ["us.icr.io", "de.icr.io"] {
        s.run(&["exec", host, "--", "sh", "-c", report], "").ok("no key no de key iambearer\n");
    }
    // In iamapikey mode the key is the answer, and the environment stays as it is.
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iamapikey");
    s.run(&["exec", "us.icr.io", "--", "sh", "-c", report], "").ok(&format!("{API_KEY} {API_KEY} iamapikey\n"));
}
