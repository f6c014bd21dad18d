#!/usr/bin/env bash
# Smoke test against the real world (needs network; not part of the default test suite).
#
# Starts a release `ferry` on 127.0.0.1 (OS-picked port) with an empty temporary store. Ferry's `go`
# fetches from this machine's own upstream: `go env GOPROXY`, with `go env GOSUMDB`. A client `go` with
# an empty module cache then fetches a few public modules through Ferry, verifying their sums against the
# machine's checksum database, and builds a program from them. Prints what worked; stops Ferry.
#
# Usage: scripts/smoke-real-world.sh [MODULE@VERSION ...]
# SMOKE_GOSUMDB overrides the checksum database of both go commands (e.g. `off` where it is unreachable).
set -uo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(rsc.io/quote@v1.5.2 github.com/pkg/errors@v0.9.1 github.com/google/uuid@v1.6.0)
fi

upstream=$(go env GOPROXY)
sumdb=${SMOKE_GOSUMDB:-$(go env GOSUMDB)}
case "$upstream" in
  off | "") echo "go env GOPROXY is '$upstream': there is no upstream to fetch from" >&2; exit 2 ;;
esac

work=$(mktemp -d)
ferry_pid=
cleanup() {
  if [ -n "$ferry_pid" ]; then kill "$ferry_pid" 2>/dev/null; wait "$ferry_pid" 2>/dev/null; fi
  chmod -R u+w "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry || exit 1

# Ferry's go gets the machine's upstream and checksum database; nothing else of the machine's go env.
env GOPROXY="$upstream" GOSUMDB="$sumdb" \
  FERRY_STORAGE="file://$work/store" FERRY_WORK_DIR="$work/ferry-work" FERRY_DOWNLOAD_MODE=sync \
  ./target/release/ferry --listen 127.0.0.1:0 2> "$work/ferry.log" &
ferry_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listen=[0-9.:]*' "$work/ferry.log" 2>/dev/null | head -1 | cut -d= -f2)
  [ -n "$addr" ] && break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "ferry did not start:" >&2
  cat "$work/ferry.log" >&2
  exit 1
fi
echo "ferry on http://$addr, upstream $upstream, checksum database $sumdb"

# The client: an isolated go whose only proxy is Ferry; sums are checked against the checksum database.
client() {
  env -i PATH="$PATH" HOME="$work/client" GOPATH="$work/client/gopath" GOMODCACHE="$work/client/mod" \
    GOCACHE="$work/client/cache" GOPROXY="http://$addr" GOSUMDB="$sumdb" GOFLAGS=-mod=mod \
    GOTOOLCHAIN=local GOENV=off CGO_ENABLED=0 go "$@"
}
mkdir -p "$work/client" "$work/cwd"

failures=0
report() { # report NAME STATUS DETAIL
  if [ "$2" -eq 0 ]; then printf 'ok    %s  %s\n' "$1" "$3"; else printf 'FAIL  %s\n%s\n' "$1" "$3"; failures=$((failures + 1)); fi
}

for target in "${targets[@]}"; do
  out=$(cd "$work/cwd" && client mod download -json "$target" 2>&1)
  status=$?
  sum=$(printf '%s' "$out" | grep -o '"Sum": "[^"]*"' | cut -d'"' -f4)
  report "go mod download $target" "$status" "${sum:-$out}"
done

module=${targets[0]%@*}
out=$(cd "$work/cwd" && client list -m -versions "$module" 2>&1)
report "go list -m -versions $module (list)" $? "$out"
out=$(cd "$work/cwd" && client list -m "$module@latest" 2>&1)
report "go list -m $module@latest (query)" $? "$out"

if [ "$module" = rsc.io/quote ]; then
  mkdir -p "$work/app"
  printf 'module example.com/smoke\n\ngo 1.21\n\nrequire %s %s\n' "$module" "${targets[0]#*@}" > "$work/app/go.mod"
  printf 'package main\n\nimport (\n\t"fmt"\n\n\t"rsc.io/quote"\n)\n\nfunc main() { fmt.Println(quote.Hello()) }\n' > "$work/app/main.go"
  out=$(cd "$work/app" && client run . 2>&1)
  status=$?
  [ "$status" -eq 0 ] && out=$(printf '%s\n' "$out" | tail -1)
  report "go run of a program importing $module (checksum database: $sumdb)" "$status" "$out"
fi

echo "stored by ferry:"
(cd "$work/store" 2>/dev/null && find . -name '*.zip' | sed 's|^\./|  |' | sort)
if [ "$failures" -ne 0 ]; then
  echo "$failures failed; ferry's log:" >&2
  tail -20 "$work/ferry.log" >&2
  exit 1
fi
echo "all worked"
