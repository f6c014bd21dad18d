#!/usr/bin/env bash
# A real project's whole module graph, downloaded by the real go command: straight from the upstream, cold through
# an empty Ferry, and warm through the same Ferry. Prints the three times and Ferry's ratios to the upstream.
#
#   benches/graph.sh MODULE@VERSION [MODULE@VERSION ...]
#   e.g. benches/graph.sh github.com/spf13/cobra@v1.8.1 github.com/caddyserver/caddy/v2@v2.11.9
#
# For each project: its go.mod and go.sum are fetched from the upstream (`go mod download -json`, the go.sum read
# from the module zip) into an otherwise empty main module, and `go mod download all` runs there with an empty
# module cache each time, so the project's own go.sum checks every byte Ferry serves. Each run starts from the
# project's own go.mod and go.sum: the go command adds the lines it looked up in the checksum database to go.sum,
# which would spare every later run those lookups. A version the upstream refuses (403, 404 or 410 in the
# straight run's first round: caddy's graph holds one this machine's module proxy answers 403 for) is named
# and left to fail in every run, which each download the rest of the graph; any other failure stops the
# script. The upstream is what `go env GOPROXY` names on this machine (Ferry's go gets the same). Ferry is
# the release binary on 127.0.0.1 with a file store in a temporary directory, started fresh for each
# project; FERRY_* variables in the environment reach it (e.g. FERRY_FETCH_CONCURRENCY=16). Absolute times
# on a shared machine are noise; the three runs of one project are side by side, so read the ratios.
#   GRAPH_RUNS=N   N rounds of the three runs (each cold run through a new Ferry on an empty store); the
#                  medians are printed. The upstream's own pace moves by a third between minutes here.
#   GRAPH_BASELINE=/path/to/ferry  another build, run cold in each round beside this one (e.g. the last
#                  commit's): its median and this build's fraction of it are printed too.
#   GRAPH_PIN=1    the go command on CPU 0 and Ferry (and Athens) on the others (taskset), in every run: as
#                  when Ferry and its clients are different machines. Unpinned on 2 cores, Ferry's checks
#                  (inflating and hashing every zip) compete with the client's own extracting and hashing.
#   GRAPH_DELAY=50ms  the upstream made further away: every run (direct, cold, warm, Athens) goes through
#                  `ferry-bench delay-proxy`, which waits that long before forwarding each request to the
#                  upstream (checksum database included). It logs each request, so the upstream requests
#                  of each run are printed too (their medians: direct, cold, warm, and the extra columns),
#                  and split by kind (see `kinds` below): .info, .mod, .zip, @v/list, @latest, the checksum
#                  database's lookups, hash tiles, data tiles, latest and supported, anything else; then how
#                  many repeated a path the same run had asked already, and how many were not answered 200.
#   GRAPH_LOG=FILE with GRAPH_DELAY: every run's upstream requests (STATUS PATH) are appended to FILE,
#                  each run headed by a line `# PROJECT RUN`, to be read path by path.
#   GRAPH_PREFETCH=both  a second cold Ferry each round with FERRY_PREFETCH_DEPTH=0 (prefetching off).
#   GRAPH_ATHENS=1 a cold Athens each round (benches/athens.sh builds it when missing): `sync` download
#                  mode on an empty disk store, its go command fetching from the same upstream (through the
#                  forwarder with GRAPH_DELAY). Athens proxies a checksum database only to its own https
#                  host, which this machine may not reach, so its client reads the checksum database from
#                  the upstream (the forwarder) directly, as it would with Athens' sumdb proxy off.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $# -gt 0 ]] || { sed -n '2,40p' "$0" >&2; exit 2; }
# shellcheck source=benches/athens.sh
source "$repo/benches/athens.sh"
delay=${GRAPH_DELAY:-}
with_athens=${GRAPH_ATHENS:-0}
case ${GRAPH_PREFETCH:-default} in
default) no_prefetch=0 ;;
both) no_prefetch=1 ;;
*) echo "graph.sh: GRAPH_PREFETCH is both (or unset), not $GRAPH_PREFETCH" >&2; exit 2 ;;
esac
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
athens_pid=
delay_pid=
stop_ferry() {
    if [[ -n $ferry_pid ]]; then
        kill "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null || true
        ferry_pid=
    fi
}
stop_athens() {
    if [[ -n $athens_pid ]]; then
        kill "$athens_pid" 2>/dev/null && wait "$athens_pid" 2>/dev/null || true
        athens_pid=
    fi
}
cleanup() {
    stop_ferry
    stop_athens
    # `|| true`: wait answers the forwarder's signal status, which must not end the cleanup under `set -e`.
    [[ -n $delay_pid ]] && kill "$delay_pid" 2>/dev/null && { wait "$delay_pid" 2>/dev/null || true; }
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench)
[[ $with_athens == 1 ]] && ensure_athens

# With GRAPH_DELAY, every run's upstream is the forwarder in front of the first entry of GOPROXY.
requests_log=$work/upstream-requests.log
: >"$requests_log"
client_sumdb=$gosumdb
if [[ -n $delay ]]; then
    first=${upstream%%[,|]*}
    [[ $first == http* ]] || die "GRAPH_DELAY needs a proxy URL first in GOPROXY, not $upstream"
    "$target_dir/release/ferry-bench" delay-proxy --to "$first" --delay "$delay" --log "$requests_log" \
        >"$work/delay.out" 2>&1 &
    delay_pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/delay.out" 2>/dev/null && break; sleep 0.1; done
    fwd=$(sed -n 's/^listening on //p' "$work/delay.out")
    [[ -n $fwd ]] || die "the delay proxy did not start: $(cat "$work/delay.out")"
    upstream=http://$fwd
    echo "graph.sh: every run through a forwarder $delay from $first" >&2
fi
# Athens' client reads the checksum database from the upstream itself (see GRAPH_ATHENS above).
athens_sumdb="$gosumdb ${upstream%%[,|]*}/sumdb/${gosumdb%%[+ ]*}"

# Upstream requests logged so far (only counted with GRAPH_DELAY; otherwise 0).
requests() { wc -l <"$requests_log"; }

# The kinds of upstream request, in the order `kinds` counts them.
kind_names=(.info .mod .zip list @latest lookup tile data-tile sumdb-latest supported other again not-200)
# The upstream requests logged after line $1 up to line $2, counted by kind (numbers in kind_names' order):
# the last two are the requests of a path asked before in the same lines, and those not answered 200.
kinds() {
    sed -n "$(($1 + 1)),$2p" "$requests_log" | awk '
        { status = $1; path = $2; sub(/\?.*/, "", path); k = "other" }
        path ~ "^/sumdb/" {
            if (path ~ "/lookup/") k = "lookup"
            else if (path ~ "/tile/[0-9]+/data/") k = "data-tile"
            else if (path ~ "/tile/") k = "tile"
            else if (path ~ "/latest$") k = "sumdb-latest"
            else if (path ~ "/supported$") k = "supported"
        }
        path !~ "^/sumdb/" {
            if (path ~ "/@v/list$") k = "list"
            else if (path ~ "/@latest$") k = "@latest"
            else if (path ~ "/@v/[^/]+[.]info$") k = ".info"
            else if (path ~ "/@v/[^/]+[.]mod$") k = ".mod"
            else if (path ~ "/@v/[^/]+[.]zip$") k = ".zip"
        }
        { n[k]++; if (seen[path]++) n["again"]++; if (status != 200) n["not-200"]++ }
        END {
            split(".info .mod .zip list @latest lookup tile data-tile sumdb-latest supported other again not-200", names, " ")
            for (i = 1; i <= 13; i++) printf "%d%s", n[names[i]], (i < 13 ? " " : "\n")
        }'
}

# Counts as `kinds` prints them, named: `.info 3, .mod 9, ...` (zero counts left out).
kinds_text() {
    awk -v names="${kind_names[*]}" '{
        split(names, k, " "); out = ""
        for (i = 1; i <= NF; i++) if ($i > 0) out = out (out == "" ? "" : ", ") k[i] " " $i
        print (out == "" ? "none" : out)
    }' <<<"$1"
}

# The median of each column of the lines on stdin (each a `kinds` answer).
column_medians() {
    awk '{ for (i = 1; i <= NF; i++) v[i, NR] = $i; cols = NF } END {
        for (i = 1; i <= cols; i++) {
            m = 0; for (r = 1; r <= NR; r++) c[r] = v[i, r]
            for (a = 1; a <= NR; a++) for (b = a + 1; b <= NR; b++) if (c[b] < c[a]) { t = c[a]; c[a] = c[b]; c[b] = t }
            m = (NR % 2) ? c[(NR + 1) / 2] : (c[NR / 2] + c[NR / 2 + 1]) / 2
            printf "%s%s", m, (i < cols ? " " : "\n")
        }
    }'
}

# `go mod download all` in $1 (a main module) through GOPROXY=$2 with an empty module cache (GOSUMDB=$3, or
# the machine's); prints seconds, the upstream requests the run made, and the request log's lines before and
# after it.
download_all() {
    local project=$1 proxy=$2 sumdb=${3:-$gosumdb} cache
    cp "$work/go.mod.orig" "$project/go.mod"
    cp "$work/go.sum.orig" "$project/go.sum"
    cache=$(mktemp -d "$work/cache.XXXX")
    local start end before
    before=$(requests)
    start=$(date +%s.%N)
    local failed=0
    (cd "$project" && env GOMODCACHE="$cache" GOPROXY="$proxy" GOSUMDB="$sumdb" GOFLAGS=-mod=mod \
        GONOSUMDB= GOPRIVATE= GOTOOLCHAIN=local "${client_cpu[@]}" go mod download -json all) \
        >"$work/download.json" 2>"$work/download.err" || failed=1
    end=$(date +%s.%N)
    # The go command downloads every other module of the graph when the upstream refuses one, and names it
    # in `-json`'s Error fields. The run straight from the upstream (each project's first) notes the versions
    # it refuses (a 403, 404 or 410: caddy's graph holds a zip this machine's module proxy answers 403 for);
    # every run may fail for those and for nothing else, so each downloads the very same rest of the graph.
    local errors
    errors=$(sed -n 's/^\t"Error": "\([^: ]*\): .*/\1/p' "$work/download.json" | sort -u)
    if [[ ! -e $work/refused && $proxy == "$upstream" ]]; then
        if awk '/^\t"Error": / && !/: (403|404|410) / { bad = 1 } END { exit !bad }' "$work/download.json"; then
            die "go mod download all straight from the upstream failed: $(grep '"Error"' "$work/download.json" | head -5)"
        fi
        echo "$errors" | sed '/^$/d' >"$work/refused"
        if [[ -s $work/refused ]]; then
            echo "graph.sh: the upstream refuses $(wc -l <"$work/refused") version(s) of this graph, left to fail in every run: $(tr '\n' ' ' <"$work/refused")" >&2
        fi
    fi
    if ((failed)) && { [[ -z $errors ]] || [[ -n $(comm -23 <(echo "$errors") "$work/refused") ]]; }; then
        die "go mod download all through $proxy failed: $(grep '"Error"' "$work/download.json" | head -5) $(tail -5 "$work/download.err")"
    fi
    # The graph's size, from the cache just filled (once is enough: every run fills the same files).
    {
        find "$cache/cache/download" -name '*.zip' | wc -l
        find "$cache/cache/download" -name '*.mod' | wc -l
        find "$cache/cache/download" -name '*.zip' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
    } >"$work/size"
    chmod -R u+w "$cache" && rm -rf "$cache"
    local after
    after=$(requests)
    echo "$(echo "$end - $start" | bc) $((after - before)) $before $after"
}

# Starts the Ferry binary $1 on an empty store (pinned as GRAPH_PIN says); sets ferry_pid and addr.
# Any further VAR=VALUE arguments are added to its environment.
start_ferry() {
    local binary=$1
    shift
    rm -rf "$work/store" "$work/ferry-work"
    env "$@" FERRY_LOG=${FERRY_LOG:-info,ferry::access=off} GOPROXY="$upstream" GOSUMDB="$gosumdb" \
        FERRY_WORK_DIR="$work/ferry-work" "${ferry_cpu[@]}" "$binary" --listen 127.0.0.1:0 \
        --storage "file://$work/store" 2>"$work/ferry.log" &
    ferry_pid=$!
    # Up to 60 s (a loaded machine starts it slowly), and no longer once its process is gone. Twice here a
    # Ferry printed nothing at all within 10 s, once within 60 s: the message below says which it was.
    for _ in $(seq 600); do
        grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break
        kill -0 "$ferry_pid" 2>/dev/null || break
        sleep 0.1
    done
    # `|| true`: with no address yet, grep's failure must reach the message below, not end the script under
    # `set -e` and pipefail without a word.
    addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2 || true)
    if [[ -z $addr ]]; then
        local state="gone"
        kill -0 "$ferry_pid" 2>/dev/null && state="still running"
        die "ferry did not start within 60 s (its process is $state); its log: $(cat "$work/ferry.log")"
    fi
}

# Starts Athens on an empty disk store in sync mode, its go command fetching from the upstream; sets
# athens_pid and athens_port.
start_athens_cold() {
    rm -rf "$work/athens-store" "$work/athens-goget"
    mkdir -p "$work/athens-store" "$work/athens-goget"
    athens_port=$("$target_dir/release/ferry-bench" free-port)
    athens_cpu=("${ferry_cpu[@]}")
    start_athens "$athens_port" "$work/athens.log" ATHENS_STORAGE_TYPE=disk \
        ATHENS_DISK_STORAGE_ROOT="$work/athens-store" ATHENS_GOGET_DIR="$work/athens-goget" \
        ATHENS_DOWNLOAD_MODE=sync ATHENS_GO_BINARY_ENV_VARS="GOPROXY=$upstream; GOSUMDB=$gosumdb" ||
        die "athens did not start"
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
    cp "$project/go.mod" "$work/go.mod.orig"
    cp "$project/go.sum" "$work/go.sum.orig"
    chmod -R u+w "$work/seed" && rm -rf "$work/seed"

    # Each run's seconds go in NAME, its upstream requests in NAME_reqs; a Ferry's whole life's in NAME_life.
    for v in directs colds warms bases nopfs athenss; do eval "$v=() ${v}_reqs=()"; done
    rm -f "$work"/kinds-* "$work/refused"
    colds_life=() nopfs_life=() athenss_life=()
    run() { # NAME PROXY [GOSUMDB]
        local name=$1 out secs reqs from to split
        out=$(download_all "$project" "$2" "${3:-}") || {
            [[ $name == athenss ]] && echo "graph.sh: athens' log ends with: $(tail -20 "$work/athens.log")" >&2
            exit 1
        }
        read -r secs reqs from to <<<"$out"
        echo "graph.sh: $module: $name ${secs}s, $reqs upstream requests" >&2
        eval "$name+=($secs) ${name}_reqs+=($reqs)"
        if [[ -n $delay ]]; then
            split=$(kinds "$from" "$to")
            echo "$split" >>"$work/kinds-$name"
            echo "graph.sh:   by kind: $(kinds_text "$split")" >&2
            if [[ -n ${GRAPH_LOG:-} ]]; then
                echo "# $module $name" >>"$GRAPH_LOG"
                sed -n "$((from + 1)),${to}p" "$requests_log" >>"$GRAPH_LOG"
            fi
        fi
    }
    for _ in $(seq "$runs"); do
        run directs "$upstream"
        if [[ -n $baseline ]]; then
            start_ferry "$baseline"
            run bases "http://$addr"
            stop_ferry
        fi
        if ((no_prefetch)); then
            before=$(requests)
            start_ferry "$target_dir/release/ferry" FERRY_PREFETCH_DEPTH=0
            run nopfs "http://$addr"
            stop_ferry
            nopfs_life+=($(($(requests) - before)))
        fi
        before=$(requests)
        start_ferry "$target_dir/release/ferry"
        run colds "http://$addr"
        run warms "http://$addr"
        stop_ferry
        colds_life+=($(($(requests) - before)))
        if [[ $with_athens == 1 ]]; then
            before=$(requests)
            start_athens_cold
            run athenss "http://127.0.0.1:$athens_port" "$athens_sumdb"
            stop_athens
            athenss_life+=($(($(requests) - before)))
        fi
    done
    direct=$(median "${directs[@]}")
    cold=$(median "${colds[@]}")
    warm=$(median "${warms[@]}")
    { read -r zips; read -r mods; read -r bytes; } <"$work/size"

    printf '%-45s %6d %6d %8.0f %8.1fs %8.1fs %8.1fs %6.2fx %6.2fx\n' "$module" "$zips" "$mods" \
        "$(echo "$bytes / 1000000" | bc -l)" "$direct" "$cold" "$warm" \
        "$(echo "$cold / $direct" | bc -l)" "$(echo "$warm / $direct" | bc -l)"
    printf '  cold/warm %.2fx; each run (s): upstream %s; cold %s; warm %s\n' "$(echo "$cold / $warm" | bc -l)" \
        "${directs[*]}" "${colds[*]}" "${warms[*]}"
    # Round by round, each cold run beside the warm one right after it (and the upstream's right before):
    # this machine's pace moves by up to 2x between minutes (gin's warm run took 5.7 s and 11.9 s in two
    # rounds of one invocation), so pairs are steadier than medians of each column.
    if ((runs > 1)); then
        pairs=() ups=()
        for i in "${!colds[@]}"; do
            pairs+=("$(printf '%.2f' "$(echo "${colds[i]} / ${warms[i]}" | bc -l)")")
            ups+=("$(printf '%.2f' "$(echo "${colds[i]} / ${directs[i]}" | bc -l)")")
        done
        printf '  round by round: cold/warm %s (median %.2fx); cold/upstream %s (median %.2fx)\n' \
            "${pairs[*]}" "$(median "${pairs[@]}")" "${ups[*]}" "$(median "${ups[@]}")"
    fi
    if [[ -n $delay && ${GRAPH_PIN:-} == 1 ]]; then
        # The go command reads the main module's requirements' go.mod files first, one at a time when pinned
        # (GOMAXPROCS 1), and no proxy sees the main go.mod: each is one upstream round trip cold, unless an
        # earlier go.mod required the same version and it was fetched ahead. So cold/warm's bound with this
        # delay: the floor when none of them can be foreseen (gin's), above it when some can (minio-go's).
        direct_reqs=$(awk '/^require \(/ { block = 1; next } block && /^\)/ { block = 0; next }
            block && NF >= 2 && $1 !~ /^\/\// { n++ } /^require [^(]/ { n++ } END { print n + 0 }' "$work/go.mod.orig")
        case $delay in *ms) delay_s=$(echo "${delay%ms} / 1000" | bc -l) ;; *s) delay_s=${delay%s} ;; *) delay_s=0 ;; esac
        printf '  cold/warm bound %.2fx: the main module'"'"'s %d requirements, one %s round trip each, one at a time (fewer where fetched ahead)\n' \
            "$(echo "1 + $direct_reqs * $delay_s / $warm" | bc -l)" "$direct_reqs" "$delay"
    fi
    if [[ -n $baseline ]]; then
        base=$(median "${bases[@]}")
        printf '%-45s baseline cold %.1fs (%.2fx the upstream); this build %.2fx the baseline\n' "$module" "$base" \
            "$(echo "$base / $direct" | bc -l)" "$(echo "$cold / $base" | bc -l)"
    fi
    if ((no_prefetch)); then
        nopf=$(median "${nopfs[@]}")
        printf '  prefetch off: cold %.1fs (%.2fx the upstream, %.2fx warm); prefetching on is %.2fx of it; each run (s): %s\n' \
            "$nopf" "$(echo "$nopf / $direct" | bc -l)" "$(echo "$nopf / $warm" | bc -l)" \
            "$(echo "$cold / $nopf" | bc -l)" "${nopfs[*]}"
    fi
    if [[ $with_athens == 1 ]]; then
        ath=$(median "${athenss[@]}")
        printf '  athens %s cold: %.1fs (%.2fx the upstream); ferry cold is %.2fx of it; each run (s): %s\n' \
            "$ATHENS_VERSION" "$ath" "$(echo "$ath / $direct" | bc -l)" "$(echo "$cold / $ath" | bc -l)" "${athenss[*]}"
    fi
    if [[ -n $delay ]]; then
        echo "  upstream requests (median per run): direct $(median "${directs_reqs[@]}");" \
            "ferry cold $(median "${colds_reqs[@]}"), warm $(median "${warms_reqs[@]}")," \
            "start to stop $(median "${colds_life[@]}")" \
            "$( ((no_prefetch)) && echo "; prefetch off: cold $(median "${nopfs_reqs[@]}"), start to stop $(median "${nopfs_life[@]}")")" \
            "$([[ $with_athens == 1 ]] && echo "; athens cold $(median "${athenss_reqs[@]}"), start to stop $(median "${athenss_life[@]}")")"
        echo "  upstream requests by kind (median per run; again: a path the run had asked already):"
        for name in directs bases nopfs colds warms athenss; do
            [[ -s $work/kinds-$name ]] || continue
            case $name in
            directs) label="direct" ;; bases) label="baseline cold" ;; nopfs) label="cold, prefetch off" ;;
            colds) label="ferry cold" ;; warms) label="ferry warm" ;; athenss) label="athens cold" ;;
            esac
            printf '    %-19s %s\n' "$label:" "$(kinds_text "$(column_medians <"$work/kinds-$name")")"
        done
    fi
done
