#!/usr/bin/env bash
# Authentication under attack and under reloads (issue 19, parts 3 and 4), against a release Ferry with an
# `auth_file` of cost-COST bcrypt entries over the load harness's store:
#
#   flood   FLOOD_RATE (300) wrong-password requests/s for FLOOD_SECONDS (20), each a new password, as two
#           listed users and unknown names in turn; meanwhile LOGINS (8) users Ferry has not seen log in one
#           at a time. Prints the flood's answers, each first login's latency, and Ferry's resident memory.
#   sighup  SIGHUP_CONNECTIONS (256) keep-alive connections asking for a .mod with a verified password for
#           SIGHUP_SECONDS (15): a quiet third, SIGHUPS (100) SIGHUPs spread over the middle third, a quiet
#           third. Prints each third's p50, p99 and slowest latency.
#
#   benches/auth-flood.sh              # AUTH_COST=10 FLOOD_RATE=300 FLOOD_SECONDS=20 LOGINS=8
#                                      # SIGHUP_CONNECTIONS=256 SIGHUP_SECONDS=15 SIGHUPS=100
#                                      # AUTH_FERRY=/path/to/another/ferry (e.g. an older build)
#
# The client (`ferry-auth-flood`, benches/src/bin) runs on the same cores as Ferry. The figures are in
# benches/README.md.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cost=${AUTH_COST:-10}
rate=${FLOOD_RATE:-300}
flood_seconds=${FLOOD_SECONDS:-20}
logins=${LOGINS:-8}
connections=${SIGHUP_CONNECTIONS:-256}
sighup_seconds=${SIGHUP_SECONDS:-15}
sighups=${SIGHUPS:-100}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
ferry_bin=${AUTH_FERRY:-$target_dir/release/ferry}

work=$(mktemp -d)
ferry_pid=
stop_ferry() {
    if [[ -n $ferry_pid ]]; then
        { kill "$ferry_pid" && wait "$ferry_pid"; } 2>/dev/null || true
        ferry_pid=
    fi
}
cleanup() {
    stop_ferry
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench --bin ferry-auth-flood
"$target_dir/release/ferry-bench" tree "$work/store"
"$target_dir/release/ferry-auth-flood" users "$work/users" "$cost" "$logins"
path=/example.com/small/@v/v1.0.0.mod

# start_ferry: a fresh Ferry (nothing remembered) over the store with the users file; sets $addr, $ferry_pid.
start_ferry() {
    # Each refused request logs a WARN line: not the figure measured here, so the log goes to a file.
    FERRY_LOG=info,ferry::access=off FERRY_DOWNLOAD_MODE=none FERRY_WORK_DIR="$work/ferry-work" \
        FERRY_AUTH_FILE="$work/users" \
        "$ferry_bin" --listen 127.0.0.1:0 --storage "file://$work/store" 2>"$work/ferry.log" &
    ferry_pid=$!
    for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
    [[ -n $addr ]] || { echo "auth-flood.sh: ferry did not start: $(cat "$work/ferry.log")" >&2; exit 1; }
}

echo "auth-flood.sh: $ferry_bin, bcrypt cost $cost, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_ferry
"$target_dir/release/ferry-auth-flood" flood "$addr" "$path" "$rate" "$flood_seconds" "$logins" "$ferry_pid"
stop_ferry
start_ferry
"$target_dir/release/ferry-auth-flood" sighup "$addr" "$path" "$connections" "$sighup_seconds" "$sighups" "$ferry_pid"
echo "reloads logged: $(grep -c 'SIGHUP: authentication file reloaded' "$work/ferry.log")"
