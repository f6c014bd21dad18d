#!/usr/bin/env bash
# A real project's whole module graph, downloaded by the real go command: straight from the upstream, cold through
# an empty Ferry, and warm through the same Ferry. Prints the three times and Ferry's ratios to the upstream.
#
#   benches/graph.sh MODULE@VERSION [MODULE@VERSION ...]
#   e.g. benches/graph.sh github.com/spf13/cobra@v1.8.1 github.com/caddyserver/caddy/v2@v2.11.9
#
# For each project: its go.mod and go.sum are fetched from the upstream (`go mod download -json`, the go.sum read
# from the module zip) into an otherwise empty main module, and `go mod download all` runs there with an empty
# module cache each time, so the project's own go.sum checks every byte Ferry serves. The upstream is what
# `go env GOPROXY` names on this machine (Ferry's go gets the same). Ferry is the release binary on 127.0.0.1
# with a file store in a temporary directory, started fresh for each project; FERRY_* variables in the
# environment reach it (e.g. FERRY_FETCH_CONCURRENCY=16). Absolute times on a shared machine are noise; the
# three runs of one project are side by side, so read the ratios.
#   GRAPH_RUNS=N   N rounds of the three runs (each cold run through a new Ferry on an empty store); the
#                  medians are printed. The upstream's own pace moves by a third between minutes here.
#   GRAPH_BASELINE=/path/to/ferry  another build, run cold in each round beside this one (e.g. the last
#                  commit's): its median and this build's fraction of it are printed too.
#   GRAPH_PIN=1    the go command on CPU 0 and Ferry on the others (taskset), in every run: as when Ferry
#                  and its clients are different machines. Unpinned on 2 cores, Ferry's checks (inflating
#                  and hashing every zip) compete with the client's own extracting and hashing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $# -gt 0 ]] || { sed -n '2,21p' "$0" >&2; exit 2; }
baseline=${GRAPH_BASELINE:-}
[[ -z $baseline || -x $baseline ]] || { echo "graph.sh: GRAPH_BASELINE=$baseline is not an executable" >&2; exit 2; }
runs=${GRAPH_RUNS:-1}
client_cpu=()
ferry_cpu=()
if [[ ${GRAPH_PIN:-} == 1 ]]; then
    cpus=$(nproc)
    ((cpus >= 2)) || { echo "graph.sh: GRAPH_PIN=1 needs 2 CPUs, this machine has $cpus" >&2; exit 2; }
    client_cpu=(taskset -c 0)
    ferry_cpu=(taskset -c "1-$((cpus - 1))")
fi

die() {
    echo "graph.sh: $*" >&2
    exit 1
}

upstream=$(go env GOPROXY)
gosumdb=$(go env GOSUMDB)
work=$(mktemp -d)
ferry_pid=
stop_ferry() {
    if [[ -n $ferry_pid ]]; then
        kill "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null || true
        ferry_pid=
    fi
}
cleanup() {
    stop_ferry
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && cargo build --release -q -p ferry --bin ferry)

# `go mod download all` in $1 (a main module) through GOPROXY=$2 with an empty module cache; prints seconds.
download_all() {
    local project=$1 proxy=$2 cache
    cache=$(mktemp -d "$work/cache.XXXX")
    local start end
    start=$(date +%s.%N)
    (cd "$project" && env GOMODCACHE="$cache" GOPROXY="$proxy" GOSUMDB="$gosumdb" GOFLAGS=-mod=mod \
        GONOSUMDB= GOPRIVATE= GOTOOLCHAIN=local "${client_cpu[@]}" go mod download all) >&2 ||
        die "go mod download all through $proxy failed"
    end=$(date +%s.%N)
    # The graph's size, from the cache just filled (once is enough: every run fills the same files).
    {
        find "$cache/cache/download" -name '*.zip' | wc -l
        find "$cache/cache/download" -name '*.mod' | wc -l
        find "$cache/cache/download" -name '*.zip' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
    } >"$work/size"
    chmod -R u+w "$cache" && rm -rf "$cache"
    echo "$end - $start" | bc
}

# Starts the Ferry binary $1 on an empty store (pinned as GRAPH_PIN says); sets ferry_pid and addr.
start_ferry() {
    rm -rf "$work/store" "$work/ferry-work"
    FERRY_LOG=${FERRY_LOG:-info,ferry::access=off} GOPROXY="$upstream" GOSUMDB="$gosumdb" \
        FERRY_WORK_DIR="$work/ferry-work" "${ferry_cpu[@]}" "$1" --listen 127.0.0.1:0 \
        --storage "file://$work/store" 2>"$work/ferry.log" &
    ferry_pid=$!
    for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
    [[ -n $addr ]] || die "ferry did not start: $(cat "$work/ferry.log")"
}

# The median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '%-45s %6s %6s %8s %9s %9s %9s %7s %7s\n' project zips mods MB upstream cold warm cold/up warm/up
for target in "$@"; do
    module=${target%@*}
    project=$work/project
    rm -rf "$project" "$work/store" "$work/ferry-work" "$work/seed"
    mkdir -p "$project"
    seed=$(env GOMODCACHE="$work/seed" GOPROXY="$upstream" GOFLAGS=-mod=mod go mod download -json "$target") ||
        die "cannot download $target: $seed"
    gomod=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$seed")
    zip=$(sed -n 's/^\t"Zip": "\(.*\)",$/\1/p' <<<"$seed")
    cp "$gomod" "$project/go.mod"
    unzip -p "$zip" "$target/go.sum" >"$project/go.sum" 2>/dev/null || true
    chmod -R u+w "$work/seed" && rm -rf "$work/seed"

    directs=() colds=() warms=() bases=()
    for _ in $(seq "$runs"); do
        directs+=("$(download_all "$project" "$upstream")")
        if [[ -n $baseline ]]; then
            start_ferry "$baseline"
            bases+=("$(download_all "$project" "http://$addr")")
            stop_ferry
        fi
        start_ferry "$target_dir/release/ferry"
        colds+=("$(download_all "$project" "http://$addr")")
        warms+=("$(download_all "$project" "http://$addr")")
        stop_ferry
    done
    direct=$(median "${directs[@]}")
    cold=$(median "${colds[@]}")
    warm=$(median "${warms[@]}")
    { read -r zips; read -r mods; read -r bytes; } <"$work/size"

    printf '%-45s %6d %6d %8.0f %8.1fs %8.1fs %8.1fs %6.2fx %6.2fx\n' "$module" "$zips" "$mods" \
        "$(echo "$bytes / 1000000" | bc -l)" "$direct" "$cold" "$warm" \
        "$(echo "$cold / $direct" | bc -l)" "$(echo "$warm / $direct" | bc -l)"
    if [[ -n $baseline ]]; then
        base=$(median "${bases[@]}")
        printf '%-45s baseline cold %.1fs (%.2fx the upstream); this build %.2fx the baseline\n' "$module" "$base" \
            "$(echo "$base / $direct" | bc -l)" "$(echo "$cold / $base" | bc -l)"
    fi
done
