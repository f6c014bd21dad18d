#!/usr/bin/env bash
# Clients that stop reading, and what they cost Ferry: the memory goal of the hardening work.
#
#   benches/stalled.sh [HTTP1_READERS=200] [H2_CONNECTIONS=20] [H2_STREAMS=100] [SECONDS=20]
#
# Builds Ferry (release), writes a file store with a 64 MiB zip, starts Ferry on 127.0.0.1 with a short
# send timeout (FERRY_SEND_TIMEOUT, default here 10s), and opens HTTP1_READERS HTTP/1.1 readers plus
# H2_CONNECTIONS h2c connections of H2_STREAMS streams each, all asking for the zip and reading nothing
# after the response head. Prints Ferry's resident memory every second (VmRSS, and VmHWM, its peak) and
# how many stalled responses Ferry has dropped. Ferry is stopped on exit. STALLED_ZIP=zip1m asks for the
# tree's 1 MiB zip instead, which the stalled requests themselves make a hot zip (kept in memory).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
http1=${1:-200}
h2_connections=${2:-20}
h2_streams=${3:-100}
seconds=${4:-20}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

work=$(mktemp -d)
ferry_pid=
cleanup() {
    [[ -n $ferry_pid ]] && { kill "$ferry_pid" && wait "$ferry_pid"; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench --bin ferry-stalled
FERRY_BENCH_ZIP64=1 "$target_dir/release/ferry-bench" tree "$work/store"
FERRY_LOG=warn,ferry=info,ferry::access=off FERRY_SEND_TIMEOUT=${FERRY_SEND_TIMEOUT:-10s} \
    "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage "file://$work/store" 2>"$work/ferry.log" &
ferry_pid=$!
for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
[[ -n $addr ]] || { echo "stalled.sh: ferry did not start: $(cat "$work/ferry.log")" >&2; exit 1; }
zip=${STALLED_ZIP:-zip64m}
echo "stalled.sh: $http1 HTTP/1.1 readers and $h2_connections h2c connections x $h2_streams streams of $zip, send timeout ${FERRY_SEND_TIMEOUT:-10s}"
"$target_dir/release/ferry-stalled" "$addr" "/example.com/$zip/@v/v1.0.0.zip" \
    "$http1" "$h2_connections" "$h2_streams" "$ferry_pid" "$seconds"
