#!/usr/bin/env bash
# Two Ferry binaries over the very same store, under the same load, alternated: what one change is worth.
#
#   benches/ab.sh BEFORE AFTER [SECONDS=4] [ROUNDS=4]
#
# BEFORE and AFTER are two `ferry` binaries (e.g. the release build of two commits, copied aside). Writes the
# load harness's GOPROXY tree (benches/load.sh's: ten small versions, a 1 MiB and a 32 MiB zip), serves it
# with both on 127.0.0.1 (each in its own working directory), and for each target (AB_ONLY=REGEX: only the
# targets whose names match) drives each with oha for SECONDS, ROUNDS times, which of the two goes first
# alternating. Prints requests/s and p99 of both and AFTER's fraction of BEFORE for every round: a change of
# a few percent shows in the fractions long before it shows in load.sh's, whose nginx runs add their own
# noise. Both servers are stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
[[ $# -ge 2 ]] || { echo "usage: benches/ab.sh BEFORE AFTER [SECONDS=4] [ROUNDS=4]" >&2; exit 2; }
before=$(realpath "$1")
after=$(realpath "$2")
seconds=${3:-4}
rounds=${4:-4}
connections=${LOAD_CONNECTIONS:-64}
zip_connections=${ZIP_CONNECTIONS:-16}
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ -x $tools/bin/oha ]] || { echo "ab.sh: no oha in $tools/bin: run benches/load.sh once to install it" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do { kill "$pid" && wait "$pid"; } 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry-benches --bin ferry-bench
bench="$target_dir/release/ferry-bench"
"$bench" tree "$work/store"

start() { # NAME BINARY: prints the address
    mkdir -p "$work/$1"
    (cd "$work/$1" && exec env FERRY_LOG=info,ferry::access=off "$2" --listen 127.0.0.1:0 \
        --storage "file://$work/store" >/dev/null 2>"$work/$1.log") &
    pids+=($!)
}
address() {
    for _ in $(seq 100); do grep -q "ferry is serving" "$work/$1.log" 2>/dev/null && break; sleep 0.1; done
    grep -o 'listen=[0-9.:]*' "$work/$1.log" | head -1 | cut -d= -f2
}
start before "$before"
start after "$after"
before_addr=$(address before)
after_addr=$(address after)
[[ -n $before_addr && -n $after_addr ]] || { echo "ab.sh: a ferry did not start: $(cat "$work"/*.log)" >&2; exit 1; }

run() { # ADDR PATH CONNECTIONS: prints requests/s and p99 ms
    curl -sf -o /dev/null "http://$1$2" || { echo "ab.sh: $1 does not serve $2" >&2; exit 1; }
    "$tools/bin/oha" --no-tui --output-format json -z "${seconds}s" -c "$3" "http://$1$2" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); assert set(d["statusCodeDistribution"]) == {"200"}, d["statusCodeDistribution"]; print("%.0f %.2f" % (d["summary"]["requestsPerSec"], d["latencyPercentiles"]["p99"]*1000))'
}

printf '%-10s %5s %12s %9s %12s %9s %8s\n' target round before p99_ms after p99_ms after/before
while read -r name path; do
    [[ $name =~ ${AB_ONLY:-.} ]] || continue
    c=$connections
    [[ $name == zip* ]] && c=$zip_connections
    for round in $(seq "$rounds"); do
        if ((round % 2)); then
            b=$(run "$before_addr" "$path" "$c"); a=$(run "$after_addr" "$path" "$c")
        else
            a=$(run "$after_addr" "$path" "$c"); b=$(run "$before_addr" "$path" "$c")
        fi
        read -r b_rps b_p99 <<<"$b"
        read -r a_rps a_p99 <<<"$a"
        printf '%-10s %5s %12s %9s %12s %9s %7.2f×\n' "$name" "$round" "$b_rps" "$b_p99" "$a_rps" "$a_p99" \
            "$(python3 -c "print($a_rps / $b_rps)")"
    done
done < <("$bench" targets)
