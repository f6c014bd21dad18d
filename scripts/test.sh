#!/usr/bin/env bash
# The one test command: makes sure what the tests need is installed, then runs every test in the workspace.
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

ensure_go
echo "scripts/test.sh: $(go version)"
cargo test --workspace --all-targets
