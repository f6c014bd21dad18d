#!/usr/bin/env bash
# The one test command: installs what the tests need (Go, curl, an S3 server, a GCS emulator, Azurite, Redis, and
# helm and the checkers of deploy/), starts the servers on 127.0.0.1, runs every test in the workspace with those
# servers required, and stops them.
# Idempotent; works on a fresh machine (Go comes from Debian's packages when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_go() {
  if command -v go >/dev/null 2>&1; then return; fi
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; return; fi
  echo "scripts/test.sh: installing Go from Debian's packages" >&2
  apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
  command -v go >/dev/null || { echo "scripts/test.sh: Go is required and could not be installed" >&2; exit 1; }
}

# curl is the tests' second TLS and HTTP/2 client (Debian's is built with nghttp2).
ensure_curl() {
  if command -v curl >/dev/null 2>&1; then return; fi
  echo "scripts/test.sh: installing curl from Debian's packages" >&2
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
}

ensure_go
ensure_curl
echo "scripts/test.sh: $(go version)"
# Helm, the manifest and compose checker, systemd-analyze: what the deploy/ tests call (built once, cached).
scripts/deploy-tools.sh install
eval "$(scripts/deploy-tools.sh env)"
scripts/test-servers.sh start
trap 'scripts/test-servers.sh stop' EXIT
eval "$(scripts/test-servers.sh env)"
# A storage suite whose server is missing fails instead of skipping.
export FERRY_TEST_REQUIRE_SERVERS=1
# Every benchmark once (criterion's test mode, release build), so the benches always build and run; not a
# measurement. (`cargo test --all-targets` below runs them once more in the test profile, as plain tests.)
cargo bench -p ferry-benches -- --test
log=$(mktemp)
cargo test --workspace --all-targets 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
rm -f "$log"
