#!/usr/bin/env bash
# Silent sockets against a health check: the connection-flood goal of the hardening work.
#
#   benches/silent.sh [SOCKETS=5000] [CHECKS=20]
#
# Builds Ferry (release), starts it on 127.0.0.1 (memory store, default settings), opens SOCKETS TCP
# connections that never send a byte, then times CHECKS `GET /healthz` on fresh connections while they stay
# open, and prints the slowest and the median. Ferry is stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sockets=${1:-5000}
checks=${2:-20}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

work=$(mktemp -d)
ferry_pid=
cleanup() {
    [[ -n $ferry_pid ]] && { kill "$ferry_pid" && wait "$ferry_pid"; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry --bin ferry
FERRY_DOWNLOAD_MODE=none "$target_dir/release/ferry" --listen 127.0.0.1:0 --storage memory:// \
    2>"$work/ferry.log" &
ferry_pid=$!
for _ in $(seq 100); do grep -q "ferry is serving" "$work/ferry.log" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" | head -1 | cut -d= -f2)
[[ -n $addr ]] || { echo "silent.sh: ferry did not start: $(cat "$work/ferry.log")" >&2; exit 1; }

python3 - "$addr" "$sockets" "$checks" "$ferry_pid" <<'PY'
import resource, socket, statistics, sys, time
addr, sockets, checks, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
silent = []
for _ in range(sockets):
    s = socket.create_connection((host, int(port)))
    silent.append(s)
open_fds = sum(1 for _ in __import__("os").scandir(f"/proc/{pid}/fd"))
times = []
for _ in range(checks):
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    times.append((time.monotonic() - started) * 1000)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
print(f"silent.sh: {sockets} silent sockets open (ferry holds {open_fds} descriptors); "
      f"{checks} health checks on fresh connections: median {statistics.median(times):.2f} ms, "
      f"slowest {max(times):.2f} ms")
PY
