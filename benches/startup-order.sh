#!/usr/bin/env bash
# Regenerates link/startup-order.txt: the functions the helper runs on its hot paths, in the order
# the linker should lay them out at the start of .text (see build.rs).
#
#   benches/startup-order.sh      # builds, profiles, rewrites link/startup-order.txt
#   KEEP_WORK=1 benches/startup-order.sh   # the same, keeping the map and callgrind files
#
# It builds the release binary exactly as users get it (same profile, so the same symbol names),
# with the linker's map beside it; runs each hot path once under valgrind's callgrind, which
# records the address of every instruction that executes; maps those addresses to the input
# sections (functions) in the map; and writes their symbols, those shared by the most paths first. Paths: get of a host that
# is not ICR, list, get of a stored login, get with an API key from the environment, get from a
# warm bearer cache, store, erase. Run it after a change to a dependency or the toolchain (their
# symbol names change, and names the file has but the build lacks are simply skipped), and
# after a change to what a hot path runs; benches/run.sh then shows the effect on peak RSS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/icr-order.XXXXXX")
IAM_PID=
cleanup() {
    [ -n "$IAM_PID" ] && kill "$IAM_PID" 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && say "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v python3 >/dev/null || need_apt+=(python3)
install_with_apt "${need_apt[@]}"

MAP="$WORK/link.map"
say "building the release binary with its link map"
# The helper alone, as users build it: built beside fake-iam, cargo would unify the features of
# the dependencies they share (fake-iam's hmac turns on digest's "mac"), which changes those
# crates' symbol hashes, and the file would name functions the users' binary does not have.
DOCKER_CREDENTIAL_ICR_LINK_MAP="$MAP" cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" \
    -p docker-credential-icr
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p fake-iam
[ -s "$MAP" ] || { say "no link map was written: build.rs links without rust-lld here"; exit 1; }
ICR="$ROOT/target/release/docker-credential-icr"
FAKE_IAM="$ROOT/target/release/fake-iam"

# shellcheck source=benches/helper-state.sh
. "$ROOT/benches/helper-state.sh"

# profile NAME INPUT ENV-ARRAY-NAME ACTION LABEL: one run under callgrind, in the order of priority.
PROFILES=()
profile() {
    local name=$1 input=$2 envname=$3 action=$4 label=$5
    local -n envref=$envname
    env -i "${envref[@]}" valgrind --quiet --tool=callgrind --dump-instr=yes --compress-pos=no --callgrind-out-file="$WORK/cg.$name" \
        "$ICR" "$action" <"$input" >/dev/null 2>"$WORK/valgrind.$name" || true
    [ -s "$WORK/cg.$name" ] || { say "callgrind wrote nothing for $name:"; cat "$WORK/valgrind.$name" >&2; exit 1; }
    PROFILES+=("$label=$WORK/cg.$name")
}
say "profiling the hot paths under callgrind"
profile get-foreign "$WORK/in-foreign" ICR_ENV_KEY get "get of a host that is not ICR"
profile list "$WORK/in-list" ICR_ENV list "list"
profile get-stored "$WORK/in-icr-stored" ICR_ENV get "get of a stored login"
profile get-env-key "$WORK/in-icr" ICR_ENV_KEY get "get with an API key from the environment"
profile get-bearer "$WORK/in-icr" BEARER_ENV get "get from a warm bearer cache"
profile store "$WORK/in-store" ICR_ENV store "store"
profile erase "$WORK/in-icr" ICR_ENV erase "erase"

python3 - "$MAP" "$ROOT/link/startup-order.txt" "${PROFILES[@]}" <<'EOF'
import bisect, os, re, sys

map_path, out_path = sys.argv[1], sys.argv[2]
labels, profiles = zip(*(arg.split("=", 1) for arg in sys.argv[3:]))  # "label=callgrind file"

# The map's .text: each input section with its address range and the first symbol it defines.
# Columns: VMA LMA Size Align, then the output section (1 space), input section (9) or symbol (17).
line_re = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ (\s*)(\S.*)$")
sections, in_text, current = [], False, None
for line in open(map_path):
    m = line_re.match(line)
    if not m:
        continue
    vma, size, indent, name = int(m[1], 16), int(m[2], 16), len(m[3]), m[4]
    if indent == 0:
        in_text = name == ".text"
        current = None
    elif in_text and indent == 8:
        current = [vma, vma + size, None]
        sections.append(current)
    elif in_text and indent == 16 and current is not None and current[2] is None:
        current[2] = name
sections = [s for s in sections if s[2] and s[1] > s[0]]
sections.sort()
starts = [s[0] for s in sections]

def section_of(address):
    i = bisect.bisect_right(starts, address) - 1
    return sections[i] if i >= 0 and address < sections[i][1] else None

# With --dump-instr=yes --compress-pos=no, every cost line starts with the address (in the ELF)
# of an instruction that ran. "ob=(5) path" (or cob=) names an object, later lines repeat its id.
ob_re = re.compile(r"^c?ob=\((\d+)\)(?: (.*))?$")
used = []  # per profile: the symbols of the sections it executed
for path in profiles:
    objects, ours, symbols = {}, False, set()
    for line in open(path, errors="replace"):
        if line.startswith(("ob=", "cob=")):
            m = ob_re.match(line.rstrip("\n"))
            if m[2]:
                objects[m[1]] = m[2]
            if line.startswith("ob="):
                ours = os.path.basename(objects.get(m[1], "")) == "docker-credential-icr"
        elif ours and line.startswith("0x"):
            section = section_of(int(line.split(maxsplit=1)[0], 16))
            if section:
                symbols.add(section[2])
    if not symbols:
        sys.exit(f"{path}: no code of the helper found; is the build the one the map describes?")
    used.append(symbols)

# Shared by the most paths first, then by the first path (get of a foreign host) that runs it.
everything = set().union(*used)
def rank(symbol):
    return (-sum(symbol in u for u in used), next(i for i, u in enumerate(used) if symbol in u), symbol)
ordered = sorted(everything, key=rank)
size = {s[2]: s[1] - s[0] for s in sections}
total = sum(size[s] for s in ordered)
with open(out_path, "w") as out:
    out.write("# Generated by benches/startup-order.sh; see build.rs. The functions of the helper's hot\n")
    out.write("# paths, laid out first in .text in this order (shared by the most paths first).\n")
    out.write(f"# {len(ordered)} functions, {total} bytes of code. Paths, with their functions:\n")
    for name, u in zip(labels, used):
        out.write(f"#   {name}: {len(u)}\n")
    for symbol in ordered:
        out.write(symbol + "\n")
print(f"wrote {out_path}: {len(ordered)} functions, {total} bytes of code", file=sys.stderr)
EOF
