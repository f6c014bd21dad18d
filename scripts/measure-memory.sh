#!/usr/bin/env bash
# Measures Ferry's peak resident memory while it serves one large module zip to many clients at once.
# Usage: scripts/measure-memory.sh [ZIP_MIB=256] [CLIENTS=16] [STORAGE_URL]
# With no STORAGE_URL, a temporary file:// store is used. Prints the peak RSS (VmHWM) of the ferry process.
set -euo pipefail
cd "$(dirname "$0")/.."
zip_mib=${1:-256}
clients=${2:-16}
work=$(mktemp -d)
trap 'kill "${ferry_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release -q -p ferry
store="$work/store"
version_dir="$store/example.com/big/@v"
mkdir -p "$version_dir"
# A real module zip of incompressible data, built with Python's zipfile (stored, not deflated).
python3 - "$version_dir/v1.0.0.zip" "$zip_mib" <<'PY'
import os, sys, zipfile
path, mib = sys.argv[1], int(sys.argv[2])
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    z.writestr("example.com/big@v1.0.0/go.mod", "module example.com/big\n")
    with z.open("example.com/big@v1.0.0/blob.bin", "w", force_zip64=True) as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
PY
printf 'module example.com/big\n' > "$version_dir/v1.0.0.mod"
printf '{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}\n' > "$version_dir/v1.0.0.info"
zip_bytes=$(stat -c %s "$version_dir/v1.0.0.zip")

storage=${3:-file://$store}
./target/release/ferry --listen 127.0.0.1:0 --storage "$storage" 2> "$work/ferry.log" &
ferry_pid=$!
for _ in $(seq 50); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$ferry_pid/status")

start=$(date +%s.%N)
pids=()
for i in $(seq "$clients"); do
  curl -sf -o /dev/null -w '%{size_download}\n' "http://$addr/example.com/big/@v/v1.0.0.zip" > "$work/client.$i" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)

for i in $(seq "$clients"); do
  got=$(cat "$work/client.$i")
  [ "$got" = "$zip_bytes" ] || { echo "client $i got $got bytes, want $zip_bytes" >&2; exit 1; }
done
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ferry_pid/status")
total_mib=$(echo "$zip_bytes * $clients / 1048576" | bc)
echo "zip: $zip_bytes bytes; clients: $clients; storage: ${storage%%://*}://"
echo "served ${total_mib} MiB in ${elapsed}s"
echo "ferry RSS before: $((rss_before / 1024)) MiB; peak RSS (VmHWM) during: $((peak_kib / 1024)) MiB"
