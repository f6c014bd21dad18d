# Athens, the peer, for the benches that run it beside Ferry (sourced by benches/load.sh and benches/graph.sh).
#
#   ensure_athens       sets $athens to Athens ATHENS_VERSION's proxy binary in the tools directory
#                       ($FERRY_TOOLS_DIR, default ~/.cache/ferry-test-tools), building it when missing
#   athens_env ...      the environment every Athens run shares (port, logging), then the caller's own
#
# `go install github.com/gomods/athens/cmd/proxy@VERSION` does not work behind a proxy that refuses the
# `@v/list` its deprecation check reads, so the build goes through a throwaway main module that requires
# Athens at the pinned version and builds its command from there (about 5 minutes the first time).
ATHENS_VERSION=v0.18.0

ensure_athens() {
    local tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
    athens=$tools/bin/athens-$ATHENS_VERSION
    [[ -x $athens ]] && return
    echo "athens.sh: building Athens $ATHENS_VERSION into $tools (about 5 minutes the first time)" >&2
    local build
    build=$(mktemp -d)
    mkdir -p "$tools/bin"
    printf 'module athensbuild\n\ngo 1.24\n\nrequire github.com/gomods/athens %s\n' "$ATHENS_VERSION" >"$build/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/gomods/athens/cmd/proxy"\n' >"$build/tools.go"
    if ! (cd "$build" && GOFLAGS=-mod=mod go mod tidy >&2 &&
        go build -o "$athens.tmp" github.com/gomods/athens/cmd/proxy >&2); then
        rm -rf "$build" "$athens.tmp"
        echo "athens.sh: building Athens $ATHENS_VERSION failed" >&2
        return 1
    fi
    mv "$athens.tmp" "$athens"
    rm -rf "$build"
}

# Runs Athens on 127.0.0.1:PORT with the given extra VAR=VALUE settings, logging to LOG; sets athens_pid.
# The array athens_cpu, when set, goes before the binary (e.g. taskset). Waits until it answers; returns
# non-zero (the log printed) when it does not start.
start_athens() { # PORT LOG VAR=VALUE...
    local port=$1 log=$2
    shift 2
    env ATHENS_PORT="127.0.0.1:$port" ATHENS_LOG_LEVEL=${ATHENS_LOG_LEVEL:-error} ATHENS_LOG_FORMAT=plain \
        GO_ENV=production ATHENS_TRACE_EXPORTER= ATHENS_STATS_EXPORTER= "$@" \
        ${athens_cpu[@]+"${athens_cpu[@]}"} "$athens" >"$log" 2>&1 &
    athens_pid=$!
    local _
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
        kill -0 "$athens_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "athens did not start: $(cat "$log")" >&2
    return 1
}

# Lays the GOPROXY tree SRC out as Athens' disk store DST (ROOT/<module path>/<version>/{go.mod,
# source.zip, <version>.info}, as its pkg/storage/fs saver writes it) with hard links: both serve the same
# bytes, and Athens never writes to the tree.
athens_tree() { # SRC DST
    local src=$1 dst=$2 info dir version module
    while IFS= read -r info; do
        dir=$(dirname "$info")
        version=$(basename "$info" .info)
        module=${dir#"$src"/}
        module=${module%/@v}
        mkdir -p "$dst/$module/$version"
        ln "$info" "$dst/$module/$version/$version.info"
        ln "$dir/$version.mod" "$dst/$module/$version/go.mod"
        ln "$dir/$version.zip" "$dst/$module/$version/source.zip"
    done < <(find "$src" -path '*/@v/*.info' -type f)
}
