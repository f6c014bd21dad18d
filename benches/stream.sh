#!/usr/bin/env bash
# Cold zips streamed as they arrive: the time to the first byte and to the last of one large zip, from a
# loopback upstream straight and through a cold Ferry.
#
#   benches/stream.sh [MIB=76] [ROUNDS=3]
#   STREAM_DELAY=50ms benches/stream.sh     the upstream made further away (`ferry-bench delay-proxy`)
#   STREAM_SLOW=100 benches/stream.sh       then 100 clients at once, each reading the cold zip at 256 KiB/s,
#                                           and the cold Ferry's peak resident memory (VmHWM) after 20 s
#
# Builds Ferry and ferry-bench (release), writes a GOPROXY tree of one module whose zip is MIB MiB of
# incompressible data (`ferry-bench zip-tree`), and serves it with a Ferry in `none` mode over a file store
# (the upstream; behind the delay proxy when STREAM_DELAY is set). Each round, three GETs of the zip with
# curl, each cold Ferry started fresh on an empty file store (GOSUMDB=off: a made-up module has no line in a
# public checksum database; Ferry still hashes it and checks go's zip rules):
#   upstream   the upstream straight
#   streamed   a cold Ferry: the zip answered as it comes (the last 64 KiB once verified)
#   waiting    a cold Ferry asked with `Range: bytes=0-`: a range waits for the stored zip, as every cold
#              zip did before streaming
# Prints each run (seconds to the first byte, to the last, bytes) and the medians. Every process it
# starts is stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mib=${1:-76}
rounds=${2:-3}
delay=${STREAM_DELAY:-}
slow=${STREAM_SLOW:-0}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
zip_path=/example.com/big/@v/v1.0.0.zip

die() { echo "stream.sh: $*" >&2; exit 1; }

work=$(mktemp -d)
upstream_pid=
started_pid=
delay_pid=
ferry_pid=
slow_pids=()
stop() { # PID: stops one process this script started
    [[ -n ${1:-} ]] && { kill "$1" && wait "$1"; } 2>/dev/null || true
}
cleanup() {
    for pid in "${slow_pids[@]}"; do stop "$pid"; done
    stop "$started_pid"
    stop "$ferry_pid"
    stop "$delay_pid"
    stop "$upstream_pid"
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench
"$target_dir/release/ferry-bench" zip-tree "$work/tree" "$mib"

# Starts a Ferry with the store URL $1 and log $2 (more VAR=VALUE arguments go to its environment); sets
# started_pid and started_addr.
start_ferry() {
    local storage=$1 log=$2
    shift 2
    env "$@" FERRY_LOG=${FERRY_LOG:-warn,ferry=info,ferry::access=off} \
        "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage "$storage" >/dev/null 2>"$log" &
    started_pid=$!
    for _ in $(seq 300); do grep -q "ferry is serving" "$log" 2>/dev/null && break; sleep 0.1; done
    started_addr=$(grep -o 'listen=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    [[ -n $started_addr ]] || die "ferry did not start: $(cat "$log")"
}

start_ferry "file://$work/tree" "$work/upstream.log" FERRY_DOWNLOAD_MODE=none \
    FERRY_WORK_DIR="$work/upstream-work"
upstream_pid=$started_pid
upstream=http://$started_addr
if [[ -n $delay ]]; then
    "$target_dir/release/ferry-bench" delay-proxy --to "$upstream" --delay "$delay" \
        --log "$work/delay-requests.log" >"$work/delay.out" 2>&1 &
    delay_pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/delay.out" 2>/dev/null && break; sleep 0.1; done
    fwd=$(sed -n 's/^listening on //p' "$work/delay.out")
    [[ -n $fwd ]] || die "the delay proxy did not start: $(cat "$work/delay.out")"
    upstream=http://$fwd
fi

# One GET of the zip from base URL $1 (more curl arguments after it): "first-byte last-byte bytes".
timed_get() {
    local base=$1
    shift
    curl -sS -o /dev/null --fail "$@" -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
        "$base$zip_path"
}

# A cold Ferry fetching from the upstream, asked once with curl arguments "$@"; the run, named $1, goes
# to the runs file.
cold_get() {
    local name=$1
    shift
    rm -rf "$work/store" "$work/ferry-work"
    start_ferry "file://$work/store" "$work/ferry.log" GOPROXY="$upstream" GOSUMDB=off \
        FERRY_WORK_DIR="$work/ferry-work"
    ferry_pid=$started_pid
    echo "$name $(timed_get "http://$started_addr" "$@")" >>"$work/runs"
    stop "$ferry_pid"
    ferry_pid=
}

where="on loopback"
[[ -n $delay ]] && where="$delay away (the delay proxy)"
echo "stream.sh: a ${mib} MiB zip, $rounds rounds, the upstream $where"
: >"$work/runs"
for round in $(seq "$rounds"); do
    echo "upstream $(timed_get "$upstream")" >>"$work/runs"
    cold_get streamed
    cold_get waiting -H 'Range: bytes=0-'
    echo "round $round:" && tail -3 "$work/runs" | sed 's/^/  /'
done
# The median of column $2 of the runs named $1.
median() {
    awk -v run="$1" -v col="$2" '$1 == run { print $col }' "$work/runs" | sort -g |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
echo
printf '%-18s %14s %14s %12s\n' run "first byte s" "last byte s" bytes
for run in upstream streamed waiting; do
    printf '%-18s %14s %14s %12s\n' "$run (median)" "$(median "$run" 2)" "$(median "$run" 3)" \
        "$(median "$run" 4)"
done

[[ $slow -gt 0 ]] || exit 0
# Slow clients of one cold fill: they all stream from the scratch file at their own pace.
rm -rf "$work/store" "$work/ferry-work"
start_ferry "file://$work/store" "$work/ferry.log" GOPROXY="$upstream" GOSUMDB=off \
    FERRY_WORK_DIR="$work/ferry-work"
ferry_pid=$started_pid
echo
echo "stream.sh: $slow clients reading the cold zip at 256 KiB/s; Ferry's memory before: $(grep VmRSS /proc/$ferry_pid/status)"
for _ in $(seq "$slow"); do
    curl -s -o /dev/null --limit-rate 256K "http://$started_addr$zip_path" &
    slow_pids+=($!)
done
for second in 5 10 15 20; do
    sleep 5
    echo "  after ${second} s: $(grep -E 'VmRSS|VmHWM' /proc/$ferry_pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
done
for pid in "${slow_pids[@]}"; do stop "$pid"; done
slow_pids=()
