#!/usr/bin/env bash
# Ferry and nginx side by side over the very same store directory, under the same load.
#
#   benches/load.sh [SECONDS=5]
#
# Builds Ferry (release), writes a GOPROXY tree of fixture modules (ten small versions, a 1 MiB and a 32 MiB
# zip; the tree is also a Ferry file store), serves it with Ferry and with nginx (Debian's package,
# `sendfile on`, non-daemon, its own config/pid/log/temp paths under a temporary directory), both on
# 127.0.0.1, and drives each with oha (installed into the tools directory when missing) for SECONDS per
# target and server (LOAD_ACCESS_LOGS=1: with access logs): `.mod` and `.info` at LOAD_CONNECTIONS (64) connections, the zips at
# ZIP_CONNECTIONS (16). Prints one table: requests/s, MB/s, p99 and Ferry's fraction of nginx.
# Both servers are stopped on exit. Absolute figures on a shared machine are noise; read the ratios.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

OHA_VERSION=1.16.0 # the newest; builds with rustc 1.95 (with its default features: without TLS it does not compile)
seconds=${1:-${LOAD_SECONDS:-5}}
connections=${LOAD_CONNECTIONS:-64}
zip_connections=${ZIP_CONNECTIONS:-16}
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

die() {
    echo "load.sh: $*" >&2
    exit 1
}

ensure_oha() {
    if ! "$tools/bin/oha" --version 2>/dev/null | grep -q " $OHA_VERSION"; then
        echo "load.sh: installing oha $OHA_VERSION into $tools (a few minutes)" >&2
        cargo install --locked --quiet --force --version "$OHA_VERSION" --root "$tools" oha >&2
    fi
}

ensure_nginx() {
    if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        echo "load.sh: installing nginx from Debian's packages" >&2
        apt-get update -qq && apt-get install -y -qq nginx >/dev/null
    fi
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
}

work=$(mktemp -d)
ferry_pid=
nginx_pid=
cleanup() {
    [[ -n $ferry_pid ]] && kill "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null
    [[ -n $nginx_pid ]] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ensure_oha
ensure_nginx
cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench
bench="$target_dir/release/ferry-bench"
store=$work/store
"$bench" tree "$store"
# nginx's workers run as nobody when started by root: the store must be readable by them.
chmod 755 "$work"

# Neither server logs requests unless LOAD_ACCESS_LOGS=1 (then both do, to files under $work).
ferry_log=info,ferry::access=off
nginx_access_log=off
if [[ ${LOAD_ACCESS_LOGS:-0} == 1 ]]; then
    ferry_log=info
    nginx_access_log=$work/nginx/logs/access.log
fi
# Ferry, as deployed: the release binary over the store as a file:// store.
FERRY_LOG=$ferry_log "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage "file://$store" 2>"$work/ferry.log" &
ferry_pid=$!
for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
ferry_addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
[[ -n $ferry_addr ]] || die "ferry did not start: $(cat "$work/ferry.log")"

# nginx over the same directory; every path it writes is under $work.
nginx_port=$("$bench" free-port)
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log $nginx_access_log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    types { application/zip zip; application/json info; }
    default_type text/plain;
    server {
        listen 127.0.0.1:$nginx_port;
        root $store;
    }
}
CONF
"$nginx" -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break; sleep 0.1; done
kill -0 "$nginx_pid" 2>/dev/null || die "nginx did not start: $(cat "$work/nginx/logs/error.log")"

oha() {
    "$tools/bin/oha" --no-tui --output-format json -z "${seconds}s" -c "$1" "$2"
}

echo "load.sh: ${seconds}s per run; small files at $connections connections, zips at $zip_connections;" \
    "ferry on $ferry_addr, nginx $("$nginx" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$nginx_port; $(nproc) cores" >&2
results=$work/results
mkdir -p "$results"
order=(ferry nginx)
while read -r name path; do
    c=$connections
    [[ $name == zip* ]] && c=$zip_connections
    # Back to back, so both see the same machine; which goes first alternates from one target to the next.
    for server in "${order[@]}"; do
        addr=$ferry_addr
        [[ $server == nginx ]] && addr=127.0.0.1:$nginx_port
        curl -sf -o /dev/null "http://$addr$path" || die "$server does not serve $path"
        oha "$c" "http://$addr$path" >"$results/$name.$server.json"
    done
    order=("${order[1]}" "${order[0]}")
done < <("$bench" targets)
"$bench" table "$results"
