#!/usr/bin/env bash
# `list` and `.mod` answers per second from Ferry on a file store and on the S3 test server, side by side.
#
#   benches/list.sh [SECONDS=5]
#
# Builds Ferry (release), writes a GOPROXY tree of fixture modules as the upstream (`GOPROXY=file://...`, so no
# network), starts the test servers (scripts/test-servers.sh), and for each store starts Ferry on 127.0.0.1 in
# the default `sync` mode, fills one version (its `.mod`), then drives `@v/list` and that `.mod` with oha at
# LOAD_CONNECTIONS (64) connections for SECONDS each. Every list answer merges the stored versions (on S3, a
# bucket LIST, kept 2 s) with the upstream's list (cached for its TTL). Prints requests/s per store; read
# the ratios, not the absolute figures, on a shared machine.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

seconds=${1:-${LOAD_SECONDS:-5}}
connections=${LOAD_CONNECTIONS:-64}
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
oha_bin=$tools/bin/oha

die() {
    echo "list.sh: $*" >&2
    exit 1
}

[[ -x $oha_bin ]] || die "oha is missing from $tools/bin: run benches/load.sh once (it installs it)"
cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench
scripts/test-servers.sh start >&2
eval "$(scripts/test-servers.sh env)"
[[ -n ${FERRY_TEST_S3_ENDPOINT:-} ]] || die "the S3 test server did not start"

work=$(mktemp -d)
ferry_pid=
stop_ferry() {
    if [[ -n $ferry_pid ]]; then
        kill "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null || true
        ferry_pid=
    fi
}
trap 'stop_ferry; rm -rf "$work"' EXIT
"$target_dir/release/ferry-bench" tree "$work/upstream"
module=example.com/small
version=v1.0.3

# Requests/s of oha on URL $1.
rate() {
    "$oha_bin" -z "${seconds}s" -c "$connections" --no-tui --output-format json "$1" >"$work/oha.json"
    sed -n 's/.*"requestsPerSec": *\([0-9.]*\).*/\1/p' "$work/oha.json" | head -1
}

printf '%-8s %12s %12s\n' store 'list req/s' '.mod req/s'
for store in file s3; do
    case $store in
    file) url="file://$work/store-file" ;;
    s3) url="s3://$FERRY_TEST_S3_BUCKET/list-bench-$$" ;;
    esac
    rm -rf "$work/ferry-work"
    FERRY_LOG=info,ferry::access=off GOPROXY="file://$work/upstream" GOSUMDB=off GOFLAGS=-mod=mod \
        FERRY_WORK_DIR="$work/ferry-work" AWS_ENDPOINT="$FERRY_TEST_S3_ENDPOINT" AWS_ALLOW_HTTP=true \
        AWS_ACCESS_KEY_ID="$FERRY_TEST_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$FERRY_TEST_S3_SECRET_ACCESS_KEY" \
        AWS_REGION=us-east-1 \
        "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage "$url" 2>"$work/ferry.log" &
    ferry_pid=$!
    for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
    [[ -n $addr ]] || die "ferry did not start on $url: $(cat "$work/ferry.log")"
    curl -sf "http://$addr/$module/@v/$version.mod" >/dev/null || die "the fill failed: $(tail -3 "$work/ferry.log")"
    curl -sf "http://$addr/$module/@v/list" >/dev/null || die "list failed"
    list=$(rate "http://$addr/$module/@v/list")
    mod=$(rate "http://$addr/$module/@v/$version.mod")
    printf '%-8s %12.0f %12.0f\n' "$store" "$list" "$mod"
    stop_ferry
done
