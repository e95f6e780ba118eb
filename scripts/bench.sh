#!/usr/bin/env bash
# Every performance figure in one run, each printed beside its goal and, where
# a peer or plain reqwest is the reference, as a ratio to it:
#  * a fresh isolated execution (noop, hello; pooled and on demand) against
#    wasmtime's floors on the same engine (a bare component; one with hello's
#    memory shape; each plugin's own component with no host around it), and `invoke-url` per call against plain reqwest with the
#    host's client settings and against wasmtime's floor for an async host
#    call making the same GET (host/benches/runtime.rs);
#  * the release `junction` binary (built with the bench) under wrk, a
#    separate process: invokes of hello at 16 and 64 connections, events
#    accepted, events executed end to end (scripts/bench_http.py).
# `--cold` also times the README's first command from a fresh clone with an
# empty target directory (about 10 minutes more).
# JUNCTION_BENCH_SECONDS sets each wrk run's length (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
cold=0
[ "${1:-}" = "--cold" ] && cold=1
rustup target add wasm32-wasip2 >/dev/null 2>&1
if ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y wrk >/dev/null
fi
export CARGO_INCREMENTAL=0
figures="$(mktemp)"
trap 'rm -f "$figures"' EXIT

# One build for both halves: building the bench also builds the `junction`
# binary (cargo builds a package's binaries for its benches), and that binary
# is the one wrk drives. A separate `cargo build --release` would compile most
# dependencies a second time, because the bench's dev-dependencies (criterion,
# the browser tests' crates) turn on more features of shared crates (syn's
# `fold` and `visit`, num-traits' `std`, regex-automata's DFA builder); none
# of those changes the code a request runs through. The release profile, not
# cargo's `bench` one: the same settings under another name would build every
# dependency again as well.
junction="$(cargo bench --profile release -p junction-host --bench runtime --no-run \
    --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "junction" \
            and "bin" in message["target"]["kind"] and message.get("executable"):
        print(message["executable"])
')"
[ -x "$junction" ] || { echo "the bench build did not produce the junction binary" >&2; exit 1; }
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
plugin_target="${JUNCTION_PLUGIN_TARGET_DIR:-$target_dir/plugins}"
hello_wasm="$("$junction" build plugins/hello --target-dir "$plugin_target" | sed -n 's/^built \(.*\) (.*/\1/p')"

echo "== fresh executions and invoke-url (cargo bench -p junction-host --bench runtime)"
# `figures-only`: a criterion filter that matches none of its groups, so
# only the figures run; the build above is reused as it is.
cargo bench --profile release -p junction-host --bench runtime -- figures-only | tee -a "$figures"

echo "== the release binary under wrk (scripts/bench_http.py)"
python3 scripts/bench_http.py "$junction" "$hello_wasm" plugins/hello/Cargo.toml | tee -a "$figures"

if [ "$cold" = 1 ]; then
    echo "== the first command from a fresh clone, empty target directory"
    clone="$(mktemp -d)"
    git clone -q "$root" "$clone/junction"
    start=$(date +%s)
    (cd "$clone/junction" && env -u CARGO_TARGET_DIR -u JUNCTION_PLUGIN_TARGET_DIR \
        JUNCTION_DEMO_CONSOLE=0 ./scripts/demo.sh </dev/null >"$clone/demo.log" 2>&1)
    seconds=$(( $(date +%s) - start ))
    builds=$(grep -c "Compiling wasmtime v" "$clone/demo.log" || true)
    echo "FIGURE | fresh clone to the demo's output (./scripts/demo.sh) | $((seconds / 60)) min $((seconds % 60)) s, wasmtime compiled $builds time(s) for the host | <= 12 min, once | $(python3 -c "print(f'{$seconds / 720:.2f}x the goal')")" | tee -a "$figures"
    rm -rf "$clone"
fi

echo
echo "== summary"
grep '^FIGURE' "$figures" | sed 's/^FIGURE | //' | awk -F' [|] ' '{ printf "%-62s %-58s goal: %-22s %s\n", $1, $2, $3, $4 }'
