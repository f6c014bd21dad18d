#!/usr/bin/env bash
# Kill -9 during concurrent cold fills (issue 10), on 127.0.0.1 only, bounded in rounds and time.
#
# Builds the release `ferry`, writes a GOPROXY tree of real module zips (storage/examples/goproxy_tree.rs)
# served by `python3 -m http.server` on loopback as the upstream, then for each round: starts Ferry on a
# fresh file store, sends CONCURRENCY cold requests for distinct zips at once, kill -9s Ferry after a
# delay that grows per round, restarts it on the same store, and checks:
#   - every listed version is complete (.info, .mod, .zip) and its zip is byte-identical to the upstream's;
#   - no staging debris (a name ending in '#' and digits) is left after the restart;
#   - served through the restarted Ferry, every zip is identical to the upstream's (the fills complete).
# One summary line per round; exit status 1 if any round fails.
#
#   scripts/fault-runs.sh [ROUNDS [CONCURRENCY [SIZE_KIB]]]     (defaults 5, 30, 2048)
set -euo pipefail

ROUNDS=${1:-5}
CONCURRENCY=${2:-30}
SIZE_KIB=${3:-2048}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=$ROOT/target/fault-runs
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "${PIDS_CLEAN_WORK:-/nonexistent}"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (at most 30 s) until URL answers 200.
wait_ready() {
    for _ in $(seq 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; then return 0; fi
        sleep 0.1
    done
    echo "not ready: $1" >&2
    return 1
}

# Starts Ferry on store $1, listening on port $2, logging to $3; prints its pid.
start_ferry() {
    FERRY_LISTEN=127.0.0.1:$2 FERRY_STORAGE=file://$1 FERRY_WORK_DIR=$WORK FERRY_GO=$(command -v go) \
    FERRY_FETCH_CONCURRENCY=$CONCURRENCY FERRY_FETCH_TIMEOUT=60s \
    GOPROXY=http://127.0.0.1:$UPSTREAM_PORT GOSUMDB=off GOFLAGS=-mod=mod HOME=$STATE/home \
    GOPATH=$STATE/gopath GOCACHE=$STATE/gocache \
        "$ROOT/target/release/ferry" >"$3" 2>&1 &
    echo $!
}

# Waits (at most 10 s) until process $1 is gone (it is not this shell's child: `wait` cannot).
wait_gone() {
    for _ in $(seq 100); do
        # A zombie (no reaper yet) is gone too: it holds no file open.
        if ! kill -0 "$1" 2>/dev/null || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "process $1 did not exit" >&2
    return 1
}

staging_count() {
    find "$1" -type f -regextype posix-extended -regex '.*#[0-9]+$' | wc -l
}

# Checks store $1 against the upstream tree: prints "versions partial mismatched".
check_store() {
    local versions=0 partial=0 mismatched=0
    for info in $(find "$1" -name '*.info' -path '*/@v/*'); do
        versions=$((versions + 1))
        local base=${info%.info}
        local rel=${base#"$1"/}
        if [ ! -f "$base.mod" ] || [ ! -f "$base.zip" ]; then
            partial=$((partial + 1))
        elif ! cmp -s "$base.zip" "$TREE/$rel.zip" || ! cmp -s "$base.mod" "$TREE/$rel.mod"; then
            mismatched=$((mismatched + 1))
        fi
    done
    echo "$versions $partial $mismatched"
}

mkdir -p "$STATE"
rm -rf "${STATE:?}"/*
# The fetcher's work dir on another filesystem (a tmpfs) when there is one, so that each fetched zip is
# copied into the store (a kill can land mid-copy) rather than hard-linked.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then WORK=/dev/shm/ferry-fault-runs-$$; else WORK=$STATE/work; fi
PIDS_CLEAN_WORK=$WORK
mkdir -p "$STATE/home"
echo "building the release ferry and the fixture tree..."
(cd "$ROOT" && cargo build --release -p ferry --quiet)
TREE=$STATE/upstream
(cd "$ROOT" && cargo run --release --quiet -p ferry-storage --example goproxy_tree -- "$TREE" "$CONCURRENCY" "$SIZE_KIB")

UPSTREAM_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$TREE" "$UPSTREAM_PORT" >"$STATE/upstream.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$UPSTREAM_PORT/example.com/fault/m00/@v/list"

failed=0
for round in $(seq "$ROUNDS"); do
    store=$STATE/store-$round
    port=$(free_port)
    base=http://127.0.0.1:$port
    ferry=$(start_ferry "$store" "$port" "$STATE/ferry-$round-a.log")
    PIDS+=("$ferry")
    wait_ready "$base/healthz"
    # Cold requests, all at once; the kill comes after a delay that grows per round.
    clients=()
    for n in $(seq 0 $((CONCURRENCY - 1))); do
        curl -s -m 60 -o /dev/null "$base/example.com/fault/m$(printf %02d "$n")/@v/v1.0.0.zip" &
        clients+=($!)
    done
    sleep "$(printf '%.2f' "$(echo "0.15 * $round" | bc)")"
    kill -9 "$ferry"
    wait_gone "$ferry"
    for c in "${clients[@]}"; do wait "$c" 2>/dev/null || true; done
    read -r at_kill _ _ < <(check_store "$store")
    debris_at_kill=$(staging_count "$store")
    find "$store" -type f -regextype posix-extended -regex '.*#[0-9]+$' >"$STATE/debris-$round.txt"

    ferry=$(start_ferry "$store" "$port" "$STATE/ferry-$round-b.log")
    PIDS+=("$ferry")
    wait_ready "$base/healthz"
    read -r versions partial mismatched < <(check_store "$store")
    debris=$(staging_count "$store")
    # Every zip through the restarted Ferry (stored ones served, the rest filled now).
    served_bad=0
    for n in $(seq 0 $((CONCURRENCY - 1))); do
        m=example.com/fault/m$(printf %02d "$n")
        if ! curl -s -m 60 "$base/$m/@v/v1.0.0.zip" | cmp -s - "$TREE/$m/@v/v1.0.0.zip"; then
            served_bad=$((served_bad + 1))
        fi
    done
    read -r complete partial_after mismatched_after < <(check_store "$store")
    kill "$ferry"
    wait_gone "$ferry"
    status=ok
    if [ "$partial" != 0 ] || [ "$mismatched" != 0 ] || [ "$debris" != 0 ] || [ "$served_bad" != 0 ] \
        || [ "$partial_after" != 0 ] || [ "$mismatched_after" != 0 ] || [ "$complete" != "$CONCURRENCY" ]; then
        status=FAILED
        failed=1
    fi
    echo "round $round: killed after $(printf '%.2f' "$(echo "0.15 * $round" | bc)")s with $at_kill of $CONCURRENCY versions listed and $debris_at_kill staging files; after restart: $versions listed, $partial partial, $mismatched differing from upstream, $debris staging files; refilled: $complete complete, $served_bad served zips differing -> $status"
    rm -rf "$store"
done
exit $failed
