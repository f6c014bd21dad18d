#!/usr/bin/env bash
# The ledger at scale: a file store of N generated versions (100,000 by default), indexed and queried.
#
#   benches/ledger.sh [VERSIONS=100000]
#
# Builds Ferry (release), writes a GOPROXY tree of VERSIONS versions (10 a module, each an .info and a
# .mod; no zips: a module cache holds many such versions, and the ledger's work does not depend on file
# sizes), then starts Ferry on it (download mode `none`, admin_listen on loopback) and measures:
#   - the walk that indexes a store without a ledger, until /catalog answers 200;
#   - a restart, which reads the ledger back from the store, until /catalog answers 200;
#   - a catalog page (pagesize=1000: the first, and one from the middle by its token) and an index page
#     (limit=2000: from the start, and from the middle), each the median of LEDGER_REPS (21) curl runs;
#   - the pages for people: the status page, a search and a module page (same medians);
#   - `ferry admin gc --dry-run` with gc.max_bytes at half the store (a plan over every version).
# Prints one line per figure. Ferry is stopped on exit. Absolute figures on a shared machine are noise.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
versions=${1:-100000}
reps=${LEDGER_REPS:-21}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

cargo build --release -p ferry --quiet
ferry=$target_dir/release/ferry
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && { kill "$pid" && wait "$pid"; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "writing $versions versions into $work/store"
python3 - "$work/store" "$versions" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    module, patch = f"example.com/gen/m{i // 10:06d}", i % 10
    d = os.path.join(root, module, "@v")
    if patch == 0:
        os.makedirs(d, exist_ok=True)
    base = os.path.join(d, f"v1.0.{patch}")
    with open(base + ".mod", "w") as f:
        f.write(f"module {module}\n\ngo 1.21\n")
    with open(base + ".info", "w") as f:
        f.write(f'{{"Version":"v1.0.{patch}","Time":"2026-01-01T00:00:00Z"}}\n')
EOF

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen=127.0.0.1:$(port)
admin=127.0.0.1:$(port)
start() {
    local started=$(date +%s.%N)
    FERRY_STORAGE=file://$work/store FERRY_DOWNLOAD_MODE=none FERRY_LISTEN=$listen FERRY_ADMIN_LISTEN=$admin \
        FERRY_WORK_DIR=$work/work FERRY_GC_MAX_BYTES=$(( versions * 40 )) FERRY_LOG=warn \
        "$ferry" >"$work/ferry.log" 2>&1 &
    pid=$!
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$listen/catalog?pagesize=1") == 200 ]]; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/ferry.log"; exit 1; }
        sleep 0.05
    done
    echo "$1: $(python3 -c "print(f'{$(date +%s.%N) - $started:.2f} s')")"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

median_ms() {
    local url=$1
    for _ in $(seq "$reps"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
        sort -n | awk '{a[NR]=$1} END {printf "%.1f ms\n", a[int((NR+1)/2)]*1000}'
}

start "start-up on a store without a ledger, until the walk has indexed it"
stop
sleep 3 # the last sync of the first run
start "restart, the ledger read back from the store"
middle_token=$(curl -s "http://$listen/catalog?pagesize=$(( versions / 2 ))" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
since=$(curl -s "http://$listen/index?limit=2000&since=1970-01-01T00:00:00Z" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["Timestamp"])')
echo "catalog, first page of 1000: $(median_ms "http://$listen/catalog?pagesize=1000")"
echo "catalog, a page of 1000 from the middle: $(median_ms "http://$listen/catalog?pagesize=1000&token=$middle_token")"
echo "index, first 2000: $(median_ms "http://$listen/index?limit=2000")"
echo "index, 2000 from the 2000th: $(median_ms "http://$listen/index?limit=2000&since=$since")"
# The pages for people, with some versions served first (the "recently requested" list reads them).
for i in $(seq 0 37 999); do curl -s -o /dev/null "http://$listen/example.com/gen/m$(printf %06d "$i")/@v/v1.0.1.info"; done
for page in / "/-/search?q=example.com/gen/m00500" /-/module/example.com/gen/m005000; do
    code=$(curl -s -o "$work/page.html" -w '%{http_code}' "http://$listen$page")
    [[ $code == 200 ]] && grep -q '</html>' "$work/page.html" || { echo "$page answered $code"; exit 1; }
done
grep -q 'id="store-versions">'"$versions"'<' <(curl -s "http://$listen/") || { echo "the status page does not say $versions versions"; exit 1; }
echo "status page /: $(median_ms "http://$listen/")"
echo "search page, prefix of 10 modules: $(median_ms "http://$listen/-/search?q=example.com/gen/m00500")"
echo "search page, no match: $(median_ms "http://$listen/-/search?q=example.com/none")"
echo "module page of 10 versions: $(median_ms "http://$listen/-/module/example.com/gen/m005000")"
started=$(date +%s.%N)
planned=$("$ferry" admin gc --dry-run --json --url "http://$admin" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["removed"], "versions", r["bytes"], "bytes")')
echo "gc --dry-run ($planned): $(python3 -c "print(f'{$(date +%s.%N) - $started:.2f} s')")"
