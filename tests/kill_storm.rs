//! A kill storm: helpers writing their files are killed with SIGKILL at random moments, 500
//! times, and the files they write must never be torn or lose a completed write.
//!
//! Each round runs a `store` of a registry of its own (so no later store can legitimately
//! replace an earlier one) and a bearer `get` whose token cache entry is rewritten on every call
//! (the fake IAM issues one-second tokens, never fresh enough to reuse), and sends each a SIGKILL
//! (std's `Child::kill`) after a random delay drawn (seeded) from a span that starts at twice the
//! time that action takes here (calibrated at the start) and adapts to the load as the storm
//! goes, so that some are killed before they start writing, some in the middle and some after
//! they finished.
//! After every round: `credentials.json` and every cache file parse, and every store that was
//! seen to exit 0 is there with its secret. At the end the helper itself reads everything back.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::procs::{stored_logins, write_config, Proc, Rng};
use common::Scenario;
use fake_iam::{Config, FakeIam};

const KILLS: usize = 500;
const ROUNDS: usize = KILLS / 2;

fn store_input(registry: &str) -> String {
    format!(r#"{{"ServerURL":"{registry}","Username":"iamapikey","Secret":"secret-of-{registry}"}}"#)
}

/// Every file in the token cache parses as a version-1 entry (temporary files, which start with
/// a dot, and lock files are not entries).
fn assert_cache_parses(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("cache file {name} does not parse ({e}): {text:?}"));
        assert_eq!(value["version"], 1, "{name}: {text}");
        assert!(value["token"]["access"].is_string() || value["failure"].is_array(), "{name}: {text}");
    }
}

#[test]
fn five_hundred_sigkills_never_tear_a_file_or_lose_a_completed_store() {
    let iam = FakeIam::start(Config::new().any_apikey(true).lifetime(1));
    let out = tempfile::tempdir().unwrap();
    // A scenario for the stores, and one for the gets (a bearer token cached in its own place).
    let with_gets = |s: &mut Scenario| {
        let cache = s.root().join("cache");
        s.set("IBMCLOUD_API_KEY", "storm-api-key")
            .set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer")
            .set("DOCKER_CREDENTIAL_ICR_CACHE_DIR", cache);
    };
    let home = Scenario::with_iam(&iam);
    let mut getter = Scenario::with_iam(&iam);
    getter.set("HOME", home.home()).set("XDG_CONFIG_HOME", home.config_home()).set("XDG_CACHE_HOME", home.cache_home());
    with_gets(&mut getter);
    let cache = getter.root().join("cache");
    let registries: Vec<String> = (0..ROUNDS).map(|i| format!("storm-{i}.example.com")).collect();
    write_config(&home, registries.clone(), &[]);

    // How long a store and a get take here, so that the kill delays straddle them whatever the
    // machine: each delay is drawn from twice the median of five calibration runs.
    let mut calibration = Scenario::with_iam(&iam);
    write_config(&calibration, ["calibration.example.com".to_owned()], &[]);
    let calibration_store = Scenario::with_iam(&iam);
    write_config(&calibration_store, ["calibration.example.com".to_owned()], &[]);
    with_gets(&mut calibration);
    let span = |s: &Scenario, action: &str, input: &str| -> u64 {
        let mut took: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                let mut child = s
                    .command(&[action])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
                assert!(child.wait().unwrap().success(), "calibration {action}");
                started.elapsed()
            })
            .collect();
        took.sort();
        (took[2] * 2).as_micros().max(200) as u64
    };
    let mut store_span = span(&calibration_store, "store", &store_input("calibration.example.com"));
    let mut get_span = span(&calibration, "get", "us.icr.io\n");
    // The machine's load changes while the storm runs (other test binaries start and stop), so
    // each span keeps adapting: longer after a kill, shorter after a completion. It settles where
    // roughly a third of the actions finish, and both outcomes keep happening whatever the load.
    let adapt = |span: &mut u64, killed: bool| {
        *span = if killed { (*span * 11 / 10).min(2_000_000) } else { (*span * 19 / 20).max(200) };
    };

    let mut rng = Rng::new(0x5eed_c0ffee);
    let mut completed: BTreeMap<String, String> = BTreeMap::new();
    let (mut killed_stores, mut killed_gets, mut finished_gets) = (0, 0, 0);
    for (round, registry) in registries.iter().enumerate() {
        let mut store = Proc::spawn(home.command(&["store"]), out.path(), 0);
        let mut get = Proc::spawn(getter.command(&["get"]), out.path(), 1);
        let (store_delay, get_delay) = (rng.below(store_span), rng.below(get_span));
        let release = Instant::now();
        store.release(&store_input(registry));
        get.release("us.icr.io\n");
        let at = |delay: u64| release + Duration::from_micros(delay);
        let (mut first, mut second) = (&mut store, &mut get);
        let (mut first_at, mut second_at) = (at(store_delay), at(get_delay));
        if second_at < first_at {
            std::mem::swap(&mut first, &mut second);
            std::mem::swap(&mut first_at, &mut second_at);
        }
        std::thread::sleep(first_at.saturating_duration_since(Instant::now()));
        let first_status = first.kill_and_wait();
        std::thread::sleep(second_at.saturating_duration_since(Instant::now()));
        let second_status = second.kill_and_wait();
        let (store_status, get_status) =
            if get_delay < store_delay { (second_status, first_status) } else { (first_status, second_status) };
        adapt(&mut store_span, store_status.code().is_none());
        adapt(&mut get_span, get_status.code().is_none());
        match store_status.code() {
            Some(0) => {
                completed.insert(registry.clone(), format!("secret-of-{registry}"));
            }
            None => killed_stores += 1,
            Some(code) => panic!("store #{round} failed with {code}: {:?} {:?}", store.stdout(), store.stderr()),
        }
        match get_status.code() {
            Some(0) => {
                finished_gets += 1;
                assert!(get.stdout().starts_with(r#"{"ServerURL":"us.icr.io","Username":"iambearer","Secret":""#));
            }
            None => killed_gets += 1,
            Some(code) => panic!("get #{round} failed with {code}: {:?} {:?}", get.stdout(), get.stderr()),
        }

        let stored = stored_logins(&home);
        for (registry, secret) in &completed {
            let found = stored.get(registry).map(|(_, s)| s);
            assert_eq!(found, Some(secret), "round {round}: completed store of {registry} is missing");
        }
        assert!(stored.keys().all(|k| registries.contains(k)), "round {round}: unknown registry in {stored:?}");
        assert_cache_parses(&cache);
    }

    // Both outcomes must have happened many times, or the storm tested nothing.
    assert!(
        killed_stores > 0 && !completed.is_empty(),
        "stores: {killed_stores} killed, {} completed",
        completed.len()
    );
    assert!(killed_gets > 0 && finished_gets > 0, "gets: {killed_gets} killed, {finished_gets} completed");
    eprintln!(
        "kill storm: {KILLS} SIGKILLs (spans: store {store_span} µs, get {get_span} µs); stores {} completed / {killed_stores} killed; gets {finished_gets} completed / {killed_gets} killed",
        completed.len()
    );

    // The helper reads back what the storm left: list names every completed store.
    let list = home.command(&["list"]).output().unwrap();
    assert!(list.status.success(), "{list:?}");
    let listed: BTreeMap<String, String> = serde_json::from_slice(&list.stdout).unwrap();
    for registry in completed.keys() {
        assert_eq!(listed.get(registry).map(String::as_str), Some("iamapikey"), "{registry}");
    }
    for (_, stored) in stored_logins(&home) {
        assert_eq!(stored.0, "iamapikey");
    }
}
