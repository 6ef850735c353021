//! Many helper processes at once against the same files: docker, buildx and kubelet all run
//! credential helpers in parallel, and a parallel build on a cold cache is the common case.
//!
//! - 200 `get`s on a cold bearer cache make one IAM exchange between them and print the same
//!   answer; when that exchange fails, those that waited for it report its failure without
//!   asking again, and the next `get` asks again.
//! - 200 `store`/`erase` on distinct registries, and on one registry, leave `credentials.json`
//!   holding exactly what the last operation on each registry did.
//!
//! "Last" is judged from outside, where the order in which processes take the lock cannot be
//! seen. What can be seen gives a sound bound: an operation's effect happens after its request
//! was written to it (recorded before the write) and before its exit was seen (recorded after).
//! So the operation whose effect a registry ends with must have been seen to exit *after* every
//! other operation on that registry was released; any other candidate is a lost or reordered
//! update. Releasing the operations at staggered moments (seeded) makes that set small.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::procs::{collect_exits, stored_logins, write_config, Proc, Rng};
use common::Scenario;
use fake_iam::{Behavior, Config, FakeIam};

const N: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(120);
const NOT_FOUND: &str = "credentials not found in native keychain\n";

#[test]
fn two_hundred_cold_gets_make_one_exchange_and_print_one_answer() {
    let iam = FakeIam::start(Config::new().apikey("concurrency-api-key").lifetime(3600));
    let mut home = Scenario::with_iam(&iam);
    home.set("IBMCLOUD_API_KEY", "concurrency-api-key").set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let out = tempfile::tempdir().unwrap();
    let (procs, exits) = gets_at_once(&home, out.path(), N);

    let first = procs[0].stdout();
    let token = serde_json::from_str::<serde_json::Value>(&first)
        .unwrap_or_else(|e| panic!("first answer is not JSON ({e}): {first:?}; stderr {:?}", procs[0].stderr()))
        ["Secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = format!("{{\"ServerURL\":\"us.icr.io\",\"Username\":\"iambearer\",\"Secret\":\"{token}\"}}\n");
    for (p, exit) in procs.iter().zip(&exits) {
        let (status, _) = exit.unwrap();
        assert!(status.success(), "get #{} exited {status}: {:?} {:?}", p.index, p.stdout(), p.stderr());
        assert_eq!(p.stdout(), expected, "get #{}", p.index);
        assert_eq!(p.stderr(), "", "get #{}", p.index);
    }
    assert_eq!(iam.request_count(), 1, "parallel cold gets must share one IAM exchange");
    assert_eq!(iam.tokens_issued(), 1);
}

#[test]
fn gets_that_waited_for_a_failed_exchange_share_its_failure_and_the_next_get_asks_again() {
    // IAM does not know the key yet, and takes 3 s to say so: every get queues behind the first.
    let iam = FakeIam::start(
        Config::new().apikey("another-key").lifetime(3600).script([Behavior::Delay(Duration::from_secs(3))]),
    );
    let mut home = Scenario::with_iam(&iam);
    home.set("IBMCLOUD_API_KEY", "concurrency-api-key").set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let out = tempfile::tempdir().unwrap();
    let (procs, exits) = gets_at_once(&home, out.path(), 50);
    let refusal = procs[0].stdout();
    assert!(refusal.starts_with("IAM at ") && refusal.contains("BXNIM0415E"), "{refusal:?}");
    for (p, exit) in procs.iter().zip(&exits) {
        assert_eq!(exit.unwrap().0.code(), Some(1), "get #{}: {:?}", p.index, p.stdout());
        assert_eq!((p.stdout(), p.stderr()), (refusal.clone(), String::new()), "get #{}", p.index);
    }
    assert_eq!(iam.request_count(), 1, "those waiting for the failed exchange must not ask again");
    // The key is now known: a get that starts after the failure asks IAM itself.
    iam.add_apikey("concurrency-api-key");
    assert_eq!(home.get("us.icr.io").answer("us.icr.io").0, "iambearer");
    assert_eq!(iam.request_count(), 2);
}

/// `n` gets of `us.icr.io` that all start and block on stdin, then are released as fast as one
/// thread can write; the processes and how each ended.
fn gets_at_once(
    home: &Scenario,
    out: &std::path::Path,
    n: usize,
) -> (Vec<Proc>, Vec<Option<(std::process::ExitStatus, Instant)>>) {
    let mut procs: Vec<Proc> = (0..n).map(|i| Proc::spawn(home.command(&["get"]), out, i)).collect();
    let (tx, rx) = mpsc::channel();
    let pids: Vec<u32> = procs.iter().map(Proc::pid).collect();
    for p in &mut procs {
        p.watch(&tx);
    }
    for p in &mut procs {
        p.release("us.icr.io\n");
    }
    let exits = collect_exits(&rx, n, TIMEOUT, &pids);
    (procs, exits)
}

/// One operation of a storm and what it leaves behind for its registry.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Store { registry: String, secret: String },
    Erase { registry: String },
}

impl Op {
    fn registry(&self) -> &str {
        match self {
            Op::Store { registry, .. } | Op::Erase { registry } => registry,
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Op::Store { .. } => "store",
            Op::Erase { .. } => "erase",
        }
    }

    fn input(&self) -> String {
        match self {
            Op::Store { registry, secret } => {
                format!(r#"{{"ServerURL":"https://{registry}/v2/","Username":"iamapikey","Secret":"{secret}"}}"#)
            }
            Op::Erase { registry } => format!("{registry}\n"),
        }
    }

    /// What the registry holds after this operation: a store's secret, or nothing.
    fn effect(&self) -> Option<String> {
        match self {
            Op::Store { secret, .. } => Some(secret.clone()),
            Op::Erase { .. } => None,
        }
    }
}

/// Runs `ops` in parallel in `home`, released at staggered moments, and checks that the final
/// file matches, per registry, the effect of an operation that may have been the last.
fn storm(home: &Scenario, ops: &[Op], seed: u64) {
    let out = tempfile::tempdir().unwrap();
    let mut procs: Vec<Proc> =
        ops.iter().enumerate().map(|(i, op)| Proc::spawn(home.command(&[op.action()]), out.path(), i)).collect();
    let (tx, rx) = mpsc::channel();
    let pids: Vec<u32> = procs.iter().map(Proc::pid).collect();
    for p in &mut procs {
        p.watch(&tx);
    }
    let mut rng = Rng::new(seed);
    for (p, op) in procs.iter_mut().zip(ops) {
        p.release(&op.input());
        // Mostly back to back, sometimes a pause, so that some operations start after others
        // have finished and the "may have been last" sets are not everything.
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        }
    }
    let exits = collect_exits(&rx, ops.len(), TIMEOUT, &pids);

    for ((p, op), exit) in procs.iter().zip(ops).zip(&exits) {
        let (status, _) = exit.unwrap();
        let (stdout, stderr) = (p.stdout(), p.stderr());
        assert_eq!(stderr, "", "{} #{}", op.action(), p.index);
        match op {
            Op::Store { .. } => {
                assert!(status.success() && stdout.is_empty(), "store #{}: {status} {stdout:?}", p.index)
            }
            // An erase that found nothing to erase says so; both outcomes are legitimate in a race.
            Op::Erase { .. } => assert!(
                (status.success() && stdout.is_empty()) || (status.code() == Some(1) && stdout == NOT_FOUND),
                "erase #{}: {status} {stdout:?}",
                p.index
            ),
        }
    }

    let stored = stored_logins(home);
    let mut by_registry: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_registry.entry(op.registry()).or_default().push(i);
    }
    for (registry, indices) in &by_registry {
        let released = |i: usize| procs[i].released.unwrap();
        let exited = |i: usize| exits[i].unwrap().1;
        let latest_release =
            |except: usize| -> Option<Instant> { indices.iter().filter(|&&j| j != except).map(|&j| released(j)).max() };
        let candidates: Vec<usize> =
            indices.iter().copied().filter(|&k| latest_release(k).is_none_or(|latest| exited(k) > latest)).collect();
        assert!(!candidates.is_empty(), "{registry}: no operation can have been last");
        let actual = stored.get(*registry).map(|(user, secret)| {
            assert_eq!(user, "iamapikey", "{registry}");
            secret.clone()
        });
        let allowed: Vec<Option<String>> = candidates.iter().map(|&k| ops[k].effect()).collect();
        assert!(
            allowed.contains(&actual),
            "{registry} holds {actual:?}, but the operations that may have been last ({candidates:?}) leave {allowed:?}"
        );
    }
    let ours: Vec<&str> = by_registry.keys().copied().collect();
    for registry in stored.keys() {
        assert!(ours.contains(&registry.as_str()), "{registry} appeared from nowhere");
    }
}

fn mirrors(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("mirror-{i}.example.com")).collect()
}

#[test]
fn two_hundred_stores_then_stores_and_erases_on_distinct_registries_all_land() {
    let home = Scenario::new();
    write_config(&home, mirrors(N), &[]);
    let first: Vec<Op> =
        mirrors(N).into_iter().map(|registry| Op::Store { secret: format!("first-{registry}"), registry }).collect();
    storm(&home, &first, 1);
    assert_eq!(stored_logins(&home).len(), N, "every distinct store is present");

    let second: Vec<Op> = mirrors(N)
        .into_iter()
        .enumerate()
        .map(|(i, registry)| match i % 2 {
            0 => Op::Store { secret: format!("second-{registry}"), registry },
            _ => Op::Erase { registry },
        })
        .collect();
    storm(&home, &second, 2);
    let stored = stored_logins(&home);
    assert_eq!(stored.len(), N / 2);
    // With one operation per registry the check in `storm` is exact; spelled out once more:
    for (i, registry) in mirrors(N).iter().enumerate() {
        let expected = (i % 2 == 0).then(|| format!("second-{registry}"));
        assert_eq!(stored.get(registry).map(|(_, s)| s.clone()), expected, "{registry}");
    }
}

#[test]
fn two_hundred_stores_and_erases_on_one_registry_end_with_a_last_one() {
    let home = Scenario::new();
    let mut rng = Rng::new(3);
    let ops: Vec<Op> = (0..N)
        .map(|i| {
            let registry = "us.icr.io".to_owned();
            if rng.below(4) == 0 {
                Op::Erase { registry }
            } else {
                Op::Store { registry, secret: format!("secret-{i}") }
            }
        })
        .collect();
    storm(&home, &ops, 4);

    // A few registries shared by many operations each, interleaved.
    let home = Scenario::new();
    let hosts = ["us.icr.io", "de.icr.io", "jp.icr.io", "icr.io"];
    let ops: Vec<Op> = (0..N)
        .map(|i| {
            let registry = hosts[rng.below(4) as usize].to_owned();
            if rng.below(4) == 0 {
                Op::Erase { registry }
            } else {
                Op::Store { registry, secret: format!("secret-{i}") }
            }
        })
        .collect();
    storm(&home, &ops, 5);
}
