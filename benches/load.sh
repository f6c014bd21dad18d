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
# ZIP_CONNECTIONS (16). Prints one table: requests/s, MB/s, p99 and each server's fraction of nginx, and the
# server's CPU time per request (its processes' user and system time over the run) and its fraction of nginx's.
# LOAD_NGINX_SENDFILE=both adds a third server, nginx with `sendfile off` (it then reads each file into a
# buffer and writes it, as Ferry does), over the same tree: the gap between the two nginx rows is what
# zero-copy is worth to nginx, the rest of its lead is everything else. LOAD_NGINX_SENDFILE=off runs that
# one in place of the usual nginx. LOAD_ONLY=REGEX runs only the targets whose names match (mod, info,
# zip-1MiB, zip-32MiB), e.g. LOAD_ONLY=zip.
# LOAD_ATHENS=1 adds Athens (benches/athens.sh: its pinned version, built into the tools directory when
# missing) over the same files: its disk store laid out from the tree with hard links, download mode `none`
# (it serves what it has and fetches nothing), logging errors only (access logs with LOAD_ACCESS_LOGS=1).
# LOAD_PIN=1 runs oha on CPU 0 and the servers on the others (taskset; nginx with as many workers as those
# CPUs, Ferry's runtime sizes itself to them), as when the clients are other machines: unpinned on 2 cores,
# which server oha's threads and the kernel's interrupts crowd decides as much as the servers' work.
# LOAD_SLICES=N (5) cuts each server's SECONDS on a target into N slices, the servers taking turns slice by
# slice (the first of each turn alternating), so that both meet the same moments of the machine: on this
# 2-core VM one server's requests/s moved from 1,700 to 3,600 a second within one 20 s run. The table adds
# the slices up, with the p99 of all their requests (oha's per-request records, read with the sqlite3
# command, installed from Debian's packages when missing). LOAD_SLICES=1: one run per server, as before.
# Both servers are stopped on exit. Absolute figures on a shared machine are noise; read the ratios.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

OHA_VERSION=1.16.0 # the newest; builds with rustc 1.95 (with its default features: without TLS it does not compile)
seconds=${1:-${LOAD_SECONDS:-5}}
slices=${LOAD_SLICES:-5}
[[ $slices =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: LOAD_SLICES is a count of slices, not $slices" >&2; exit 2; }
connections=${LOAD_CONNECTIONS:-64}
zip_connections=${ZIP_CONNECTIONS:-16}
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
# shellcheck source=benches/athens.sh
source "$repo/benches/athens.sh"

die() {
    echo "load.sh: $*" >&2
    exit 1
}

client_cpu=()
server_cpu=()
nginx_workers=auto
if [[ ${LOAD_PIN:-0} == 1 ]]; then
    cpus=$(nproc)
    ((cpus >= 2)) || die "LOAD_PIN=1 needs 2 CPUs, this machine has $cpus"
    client_cpu=(taskset -c 0)
    server_cpu=(taskset -c "1-$((cpus - 1))")
    nginx_workers=$((cpus - 1))
fi
athens_cpu=("${server_cpu[@]}")

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
nginx_pids=()
athens_pid=
cleanup() {
    [[ -n $ferry_pid ]] && { kill "$ferry_pid" && wait "$ferry_pid"; } 2>/dev/null || true
    [[ -n $athens_pid ]] && kill "$athens_pid" 2>/dev/null && { wait "$athens_pid" 2>/dev/null || true; }
    for pid in "${nginx_pids[@]}"; do { kill -QUIT "$pid" && wait "$pid"; } 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

ensure_oha
ensure_nginx
if ((slices > 1)) && ! command -v sqlite3 >/dev/null; then
    echo "load.sh: installing sqlite3 from Debian's packages (LOAD_SLICES reads oha's records with it)" >&2
    apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
fi
[[ ${LOAD_ATHENS:-0} == 1 ]] && ensure_athens
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
    nginx_access_log=on
fi
# Ferry, as deployed: the release binary over the store as a file:// store.
FERRY_LOG=$ferry_log "${server_cpu[@]}" "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage "file://$store" 2>"$work/ferry.log" &
ferry_pid=$!
for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
ferry_addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
[[ -n $ferry_addr ]] || die "ferry did not start: $(cat "$work/ferry.log")"

# nginx over the same directory; every path it writes is under $work (one directory per instance).
start_nginx() { # NAME SENDFILE: adds its pid to nginx_pids, its port in port_NAME (- as _)
    local name=$1 sendfile=$2 dir=$work/$1 port
    port=$("$bench" free-port)
    mkdir -p "$dir/logs" "$dir/tmp"
    local access_log=off
    [[ $nginx_access_log != off ]] && access_log=$dir/logs/access.log
    cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes $nginx_workers;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log $access_log;
    sendfile $sendfile;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    types { application/zip zip; application/json info; }
    default_type text/plain;
    server {
        listen 127.0.0.1:$port;
        root $store;
    }
}
CONF
    "${server_cpu[@]}" "$nginx" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
    nginx_pids+=($!)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    kill -0 "$!" 2>/dev/null || die "$name did not start: $(cat "$dir/logs/error.log")"
    printf -v "port_${name//-/_}" %s "$port"
}
servers=(ferry)
case ${LOAD_NGINX_SENDFILE:-on} in
on) start_nginx nginx on; servers+=(nginx) ;;
off) start_nginx nginx off; servers+=(nginx) ;;
both) start_nginx nginx on; start_nginx nginx-nosf off; servers+=(nginx nginx-nosf) ;;
*) die "LOAD_NGINX_SENDFILE is on, off or both, not ${LOAD_NGINX_SENDFILE}" ;;
esac

if [[ ${LOAD_ATHENS:-0} == 1 ]]; then
    athens_tree "$store" "$work/athens-store"
    port_athens=$("$bench" free-port)
    athens_log_level=error
    [[ $nginx_access_log != off ]] && athens_log_level=info
    ATHENS_LOG_LEVEL=$athens_log_level start_athens "$port_athens" "$work/athens.log" ATHENS_STORAGE_TYPE=disk \
        ATHENS_DISK_STORAGE_ROOT="$work/athens-store" ATHENS_DOWNLOAD_MODE=none ATHENS_NETWORK_MODE=offline ||
        die "athens did not start"
    servers+=(athens)
fi

oha() { # CONNECTIONS URL [OHA ARGUMENTS]: one slice (all SECONDS unless LOAD_SLICES)
    "${client_cpu[@]}" "$tools/bin/oha" --no-tui --output-format json -z "$((seconds * 1000 / slices))ms" \
        -c "$1" "$2" "${@:3}"
}

# cpu_ticks SERVER: the CPU time (user and system, clock ticks) a server's processes have used: Ferry's,
# Athens's, or an nginx's master and workers. Over a run, the server's CPU per request: what it costs
# itself, which moves far less than requests/s when other work shares the cores.
cpu_ticks() {
    local pids=()
    case $1 in
    ferry) pids=("$ferry_pid") ;;
    athens) pids=("$athens_pid") ;;
    nginx) pids=("${nginx_pids[0]}") ;;
    nginx-nosf) pids=("${nginx_pids[1]}") ;;
    esac
    case $1 in nginx*) mapfile -t -O 1 pids < <(pgrep -P "${pids[0]}") ;; esac
    local pid total=0
    for pid in "${pids[@]}"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}

echo "load.sh: ${seconds}s per run$( ((slices > 1)) && echo " in $slices slices"); small files at $connections connections, zips at $zip_connections;" \
    "ferry on $ferry_addr, nginx $("$nginx" -v 2>&1 | sed 's/.*\///') (sendfile ${LOAD_NGINX_SENDFILE:-on}); $(nproc) cores${client_cpu:+, oha on CPU 0 and the servers on the others}" >&2
results=$work/results
mkdir -p "$results"
declare -A address=()
order=("${servers[@]}")
while read -r name path; do
    [[ $name =~ ${LOAD_ONLY:-.} ]] || continue
    c=$connections
    [[ $name == zip* ]] && c=$zip_connections
    # Back to back, so all see the same machine; which goes first rotates from one target to the next, and
    # from one slice to the next.
    declare -A ticks=()
    for server in "${order[@]}"; do
        if [[ $server == ferry ]]; then
            address[$server]=$ferry_addr
        else
            port_var=port_${server//-/_}
            address[$server]=127.0.0.1:${!port_var}
        fi
        curl -sf -o /dev/null "http://${address[$server]}$path" || die "$server does not serve $path"
        ticks[$server]=0
    done
    turn=("${order[@]}")
    for ((slice = 1; slice <= slices; slice++)); do
        for server in "${turn[@]}"; do
            before=$(cpu_ticks "$server")
            if ((slices == 1)); then
                oha "$c" "http://${address[$server]}$path" >"$results/$name.$server.json"
            else
                rm -f "$work/slice.db"
                oha "$c" "http://${address[$server]}$path" --db-url "$work/slice.db" \
                    >"$results/$name.$server.$slice.json" 2> >(grep -v '^Storing results to' >&2 || true)
                sqlite3 "$work/slice.db" 'SELECT duration FROM oha' >>"$results/$name.$server.durations"
            fi
            ticks[$server]=$((ticks[$server] + $(cpu_ticks "$server") - before))
        done
        turn=("${turn[@]:1}" "${turn[0]}")
    done
    for server in "${order[@]}"; do
        echo "${ticks[$server]} $(getconf CLK_TCK)" | awk '{ print $1 / $2 }' >"$results/$name.$server.cpu"
    done
    order=("${order[@]:1}" "${order[0]}")
done < <("$bench" targets)
"$bench" table "$results"
