#!/usr/bin/env bash
# Whole-process benchmark of docker-credential-icr beside its peers and a floor.
#
#   benches/run.sh            # builds, installs what is missing (apt, cargo), measures, prints
#
# For each action it prints the median and spread (interquartile range) of the wall time of a
# whole process, the mean CPU time (user + system) of one, measured by hyperfine without a shell (-N, stdin from a file with --input), the
# ratio to the floor, and the median and range of peak RSS over several runs of /usr/bin/time -f %M.
#
# The floor is benches/floor: a one-file Rust program built with the same release profile that
# reads stdin and prints a fixed answer, i.e. what any process start costs on this machine.
# The peers are Debian's docker-credential-ecr-login (amazon-ecr-credential-helper) and
# docker-credential-pass (golang-docker-credential-helpers), run only where they work offline:
#   ecr-login  get of an ECR host from its own file cache (filled here, under a throwaway AWS
#              access key id), get of a foreign host, list. Its store and erase are "not
#              implemented". Any AWS call it might still try goes to a dead loopback proxy.
#   pass       get of a stored login, get of a host it has nothing for, list, store; against a
#              `pass` store initialised here with a throwaway gpg key without passphrase.
# Nothing here touches the network beyond 127.0.0.1: the warm bearer cache is filled once from
# the fake IAM (crates/fake-iam), which is stopped before anything is measured.
#
# Environment: ROUNDS (default 5) × RUNS (default 40) timed runs per cell, WARMUP (default 10)
# before each, RSS_RUNS (default 15).
# Raw hyperfine JSON lands in benches/results/ (ignored by git).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-40}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-10}
RSS_RUNS=${RSS_RUNS:-15}
RESULTS="$ROOT/benches/results"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/icr-bench.XXXXXX")
IAM_PID=

cleanup() {
    [ -n "$IAM_PID" ] && kill "$IAM_PID" 2>/dev/null || true
    GNUPGHOME="$WORK/gnupg" gpgconf --kill all 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

# --- tools ----------------------------------------------------------------------------------
need_apt=()
command -v docker-credential-ecr-login >/dev/null || need_apt+=(amazon-ecr-credential-helper)
command -v docker-credential-pass >/dev/null || need_apt+=(golang-docker-credential-helpers)
command -v pass >/dev/null || need_apt+=(pass)
command -v gpg >/dev/null || need_apt+=(gnupg)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v python3 >/dev/null || need_apt+=(python3)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
install_with_apt "${need_apt[@]}"
# hyperfine learned --input (stdin from a file without a shell) in 1.17; Debian 12 ships 1.15.
# Without it, stdin would need a shell, whose start would blur a 1 ms process.
HYPERFINE=hyperfine
if ! hyperfine --help | grep -q -- '--input'; then
    HYPERFINE="$ROOT/target/bench-tools/bin/hyperfine"
    if [ ! -x "$HYPERFINE" ]; then
        say "installing hyperfine 1.20 with cargo (the apt one has no --input)"
        cargo install hyperfine --version 1.20.0 --locked --quiet --root "$ROOT/target/bench-tools"
    fi
fi

# --- builds ---------------------------------------------------------------------------------
say "building the helper, the fake IAM and the floor (release profile)"
# Two builds, not one: together, cargo would unify the features of the dependencies the two share
# and the helper measured here would not be the binary users build.
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p docker-credential-icr
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p fake-iam
cargo build --release --quiet --manifest-path "$ROOT/benches/floor/Cargo.toml"
ICR="$ROOT/target/release/docker-credential-icr"
FAKE_IAM="$ROOT/target/release/fake-iam"
FLOOR="$ROOT/benches/floor/target/release/floor"
ECR=$(command -v docker-credential-ecr-login)
PASS=$(command -v docker-credential-pass)

# --- state each program reads ---------------------------------------------------------------
# shellcheck source=benches/helper-state.sh
. "$ROOT/benches/helper-state.sh"
printf '123456789012.dkr.ecr.us-east-1.amazonaws.com\n' >"$WORK/in-ecr"
printf 'https://pass.example.com\n' >"$WORK/in-pass-stored"
printf '{"ServerURL":"https://pass.example.com","Username":"bench","Secret":"bench-stored-secret"}' >"$WORK/in-pass-store"

# ecr-login: its file cache, keyed by region and a digest of the access key id (its 0.6 format).
ECR_HOME="$WORK/ecr"
mkdir -p "$ECR_HOME/.ecr"
ECR_ENV=("${BASE_ENV[@]}" HOME="$ECR_HOME" AWS_ACCESS_KEY_ID=AKIAFAKEBENCH0000000
    AWS_SECRET_ACCESS_KEY=fake-bench-secret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    HTTPS_PROXY=http://127.0.0.1:1 HTTP_PROXY=http://127.0.0.1:1 NO_PROXY=)
# Its list reads the file cache only when it has no AWS credentials; with them it asks AWS.
ECR_LIST_ENV=("${BASE_ENV[@]}" HOME="$ECR_HOME" AWS_EC2_METADATA_DISABLED=true
    HTTPS_PROXY=http://127.0.0.1:1 HTTP_PROXY=http://127.0.0.1:1 NO_PROXY=)
python3 - "$ECR_HOME/.ecr/cache.json" <<'EOF'
import base64, datetime, hashlib, json, sys
akid = "AKIAFAKEBENCH0000000"
prefix = base64.b64encode(akid.encode() + hashlib.md5(b"").digest()).decode()
now = datetime.datetime.now(datetime.timezone.utc)
stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
entry = {"AuthorizationToken": base64.b64encode(b"AWS:bench-ecr-token").decode(),
         "RequestedAt": stamp(now), "ExpiresAt": stamp(now + datetime.timedelta(hours=12)),
         "ProxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", "Service": "ecr"}
json.dump({"Registries": {f"us-east-1-{prefix}-123456789012": entry}, "Version": "1.0"}, open(sys.argv[1], "w"))
EOF
env -i "${ECR_ENV[@]}" "$ECR" get <"$WORK/in-ecr" | grep -q '"Username":"AWS"' ||
    { say "ecr-login did not answer from its cache"; exit 1; }

# pass: a throwaway gpg key without passphrase, a pass store, one stored login.
PASS_HOME="$WORK/pass"
mkdir -p "$PASS_HOME" "$WORK/gnupg"
chmod 700 "$WORK/gnupg"
PASS_ENV=("${BASE_ENV[@]}" HOME="$PASS_HOME" GNUPGHOME="$WORK/gnupg" PASSWORD_STORE_DIR="$PASS_HOME/store")
env -i "${PASS_ENV[@]}" gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
    --quick-generate-key 'icr bench <bench@example.invalid>' default default never
env -i "${PASS_ENV[@]}" pass init 'bench@example.invalid' >/dev/null
env -i "${PASS_ENV[@]}" "$PASS" store <"$WORK/in-pass-store"
env -i "${PASS_ENV[@]}" "$PASS" get <"$WORK/in-pass-stored" | grep -q '"Username":"bench"' ||
    { say "docker-credential-pass did not answer its stored login"; exit 1; }

# --- measuring ------------------------------------------------------------------------------
# Every program starts from the same page-cache state: its file written back and dropped from the
# cache (fsync, then POSIX_FADV_DONTNEED; no root needed), so that the first run reads it back as
# an installed binary is read, rather than using the cache pages the linker or dpkg left behind.
# This matters for peak RSS: the kernel maps cached pages around every fault, and pages cached by
# a write can be larger folios than pages read in by a fault.
python3 - "$FLOOR" "$ICR" "$ECR" "$PASS" <<'EOF'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
EOF
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
ROWS="$WORK/rows.tsv"
: >"$ROWS"

# measure ROUND ACTION PROGRAM EXIT INPUT ENV-ARRAY-NAME COMMAND...
# EXIT is the status every run must end with (1 for the not-found answers): a cell whose runs
# fail in another way measures a failure, not the action, and stops the benchmark.
measure() {
    local round=$1 action=$2 program=$3 expect=$4 input=$5 envname=$6
    shift 6
    local -n envref=$envname
    local slug json rss=()
    slug=$(printf '%s-%s' "$action" "$program" | tr -c 'a-zA-Z0-9\n' '-')
    json="$RESULTS/$slug.$round.json"
    # -i: the not-found answers exit 1 on purpose; every status is checked below.
    env -i "${envref[@]}" "$HYPERFINE" -N -i --style none --warmup "$WARMUP" --runs "$RUNS" \
        --input "$input" --export-json "$json" -- "$*" >/dev/null 2>&1
    python3 - "$json" "$expect" "$action" "$program" <<'EOF'
import json, sys
codes = set(json.load(open(sys.argv[1]))["results"][0]["exit_codes"])
if codes != {int(sys.argv[2])}:
    sys.exit(f"{sys.argv[3]} ({sys.argv[4]}): exit statuses {sorted(codes)}, expected {sys.argv[2]}")
EOF
    if [ "$round" = 1 ]; then
        for _ in $(seq "$RSS_RUNS"); do
            # The not-found answers exit 1; time then prints a line about it before %M.
            rss+=("$(env -i "${envref[@]}" /usr/bin/time -f %M "$@" <"$input" 2>&1 >/dev/null | tail -n1 || true)")
        done
    fi
    printf '%s\t%s\t%s\t%s\n' "$action" "$program" "$json" "${rss[*]}" >>"$ROWS"
}

# The machine is shared: every cell is measured in ROUNDS short rounds, interleaved, so that a
# burst of someone else's load falls on all programs alike rather than on one.
say "measuring: $ROUNDS rounds × $RUNS runs (after $WARMUP warm-up runs) per cell; peak RSS over $RSS_RUNS runs"
for round in $(seq "$ROUNDS"); do
    say "  round $round of $ROUNDS"
    measure "$round" "process start (floor)" floor 0 "$WORK/in-icr" BASE_ENV "$FLOOR"
    measure "$round" "get, API key from env" icr 0 "$WORK/in-icr" ICR_ENV_KEY "$ICR" get
    measure "$round" "get, cached bearer token" icr 0 "$WORK/in-icr" BEARER_ENV "$ICR" get
    measure "$round" "get, cached bearer token" ecr-login 0 "$WORK/in-ecr" ECR_ENV "$ECR" get
    measure "$round" "get, stored login" icr 0 "$WORK/in-icr-stored" ICR_ENV "$ICR" get
    measure "$round" "get, stored login" pass 0 "$WORK/in-pass-stored" PASS_ENV "$PASS" get
    measure "$round" "get, host not ICR" icr 1 "$WORK/in-foreign" ICR_ENV_KEY "$ICR" get
    measure "$round" "get, host not ICR" ecr-login 1 "$WORK/in-foreign" ECR_ENV "$ECR" get
    # docker-credential-pass answers a host it has nothing for with empty credentials, exit 0.
    measure "$round" "get, host not ICR" pass 0 "$WORK/in-foreign" PASS_ENV "$PASS" get
    measure "$round" "list" icr 0 "$WORK/in-list" ICR_ENV "$ICR" list
    measure "$round" "list" ecr-login 0 "$WORK/in-list" ECR_LIST_ENV "$ECR" list
    measure "$round" "list" pass 0 "$WORK/in-list" PASS_ENV "$PASS" list
    measure "$round" "store" icr 0 "$WORK/in-store" ICR_ENV "$ICR" store
    measure "$round" "store" pass 0 "$WORK/in-pass-store" PASS_ENV "$PASS" store
done

# --- the table ------------------------------------------------------------------------------
SIZE=$(stat -c %s "$ICR")
python3 - "$ROWS" "$SIZE" <<'EOF'
import json, statistics, sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
size = int(sys.argv[2])

def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]

cells = {}  # (action, program) -> (wall times ms, CPU ms per round, peak RSS KiB)
for action, program, path, rss in rows:
    result = json.load(open(path))["results"][0]
    times, cpu, peaks = cells.setdefault((action, program), ([], [], []))
    times.extend(t * 1000 for t in result["times"])
    cpu.append((result["user"] + result["system"]) * 1000)
    peaks.extend(int(r) for r in rss.split())

results = []
for (action, program), (times, cpu, peaks) in cells.items():
    q1, med, q3 = quartiles(times)
    results.append((action, program, med, q1, q3, statistics.mean(cpu), statistics.median(peaks), len(times),
                    min(peaks), max(peaks)))

floor = next(r[2] for r in results if r[1] == "floor")
runs = results[0][7]
print(f"{'action':<26} {'program':<10} {'median ms':>9} {'IQR ms':>13} {'× floor':>8} {'CPU ms':>7} "
      f"{'peak RSS KiB':>12} {'min–max':>11}")
for action, program, med, q1, q3, cpu, rss, _, low, high in results:
    print(f"{action:<26} {program:<10} {med:>9.2f} {q1:>6.2f}–{q3:<6.2f} {med / floor:>8.2f} {cpu:>7.2f} "
          f"{rss:>12.0f} {low:>5}–{high:<5}")
print(f"\n{runs} runs per cell; CPU ms = mean user + system time of one process; "
      f"peak RSS: median and range over {len(next(iter(cells.values()))[2])} runs")
print(f"\ndocker-credential-icr release binary: {size} bytes ({size / 1048576:.2f} MiB, stripped)")

icr = {a: (m, r) for a, p, m, _, _, _, r, *_ in results if p == "icr"}
checks = []
for action, (med, _) in icr.items():
    if action.startswith("get"):
        checks.append((f"{action}: within 1.3× the floor", med <= 1.3 * floor))
for action, program, med, _, _, _, rss, *_ in results:
    if program not in ("icr", "floor") and action in icr:
        checks.append((f"{action}: faster than {program}", icr[action][0] < med))
        checks.append((f"{action}: less peak RSS than {program}", icr[action][1] < rss))
checks.append(("release binary under 4 MiB", size < 4 * 1048576))
print("\ntargets:")
for what, ok in checks:
    print(f"  {'met    ' if ok else 'MISSED '} {what}")
EOF
