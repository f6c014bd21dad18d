#!/usr/bin/env bash
# `ferry mirror` of a real project's module graph against `go mod download all` straight from the upstream,
# then `ferry export` of what it stored and `ferry import` of that bundle into an empty store (MB/s).
#
#   benches/mirror.sh MODULE@VERSION [MODULE@VERSION ...]
#   e.g. benches/mirror.sh github.com/spf13/cobra@v1.8.1
#
# For each project: its go.mod and go.sum from the upstream (`go mod download -json`, the go.sum read from the
# module zip) in an otherwise empty main module, as benches/graph.sh does. Then, side by side: `go mod
# download all` with an empty module cache, and `ferry mirror go.mod` into an empty `file://` store (the
# release binary; Ferry's go gets this machine's GOPROXY and GOSUMDB); every zip the go command downloaded is
# compared byte for byte with the one the mirror stored (the store is in the GOPROXY layout of a module
# cache's cache/download). Then the store is exported and the bundle imported into another empty store,
# with the time and the rate import reports. The upstream is what `go env GOPROXY` names; it is reached, so
# this is not run by the test command. Absolute times on a shared machine are noise: read the ratio.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $# -gt 0 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
die() {
    echo "mirror.sh: $*" >&2
    exit 1
}
upstream=$(go env GOPROXY)
gosumdb=$(go env GOSUMDB)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$repo" && cargo build --release -q -p ferry --bin ferry)
ferry=$target_dir/release/ferry

seconds() { echo "$2 - $1" | bc; }

printf '%-40s %6s %8s %9s %9s %8s %9s %9s\n' project zips MB download mirror ratio export import
for target in "$@"; do
    module=${target%@*}
    project=$work/project
    rm -rf "$project" "$work/cache" "$work/a" "$work/b" "$work/work-a" "$work/work-b" "$work/seed"
    mkdir -p "$project"
    seed=$(env GOMODCACHE="$work/seed" GOPROXY="$upstream" GOFLAGS=-mod=mod go mod download -json "$target") ||
        die "cannot download $target: $seed"
    cp "$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$seed")" "$project/go.mod"
    zip=$(sed -n 's/^\t"Zip": "\(.*\)",$/\1/p' <<<"$seed")
    unzip -p "$zip" "$target/go.sum" >"$project/go.sum" 2>/dev/null || true
    chmod -R u+w "$work/seed" && rm -rf "$work/seed"

    start=$(date +%s.%N)
    (cd "$project" && env GOMODCACHE="$work/cache" GOPROXY="$upstream" GOSUMDB="$gosumdb" GOFLAGS=-mod=mod \
        GONOSUMDB= GOPRIVATE= GOTOOLCHAIN=local go mod download all) >&2 || die "go mod download all failed"
    direct=$(seconds "$start" "$(date +%s.%N)")

    start=$(date +%s.%N)
    env GOPROXY="$upstream" GOSUMDB="$gosumdb" FERRY_WORK_DIR="$work/work-a" FERRY_DOWNLOAD_MODE=sync \
        "$ferry" mirror --storage "file://$work/a" "$project/go.mod" >&2 || die "ferry mirror failed"
    mirror=$(seconds "$start" "$(date +%s.%N)")

    # Same bytes: every zip the go command downloaded is the mirror's.
    zips=0 bytes=0
    while IFS= read -r -d '' file; do
        relative=${file#"$work/cache/cache/download/"}
        cmp -s "$file" "$work/a/$relative" || die "$relative differs from the mirror's (or is missing)"
        zips=$((zips + 1))
        bytes=$((bytes + $(stat -c %s "$file")))
    done < <(find "$work/cache/cache/download" -name '*.zip' -print0)

    start=$(date +%s.%N)
    env GOPROXY="$upstream" GOSUMDB="$gosumdb" FERRY_WORK_DIR="$work/work-a" \
        "$ferry" export --storage "file://$work/a" --output "$work/bundle.tar.gz" >&2 || die "ferry export failed"
    exported=$(seconds "$start" "$(date +%s.%N)")
    start=$(date +%s.%N)
    said=$(env GOSUMDB="$gosumdb" GOPROXY=off FERRY_WORK_DIR="$work/work-b" FERRY_DOWNLOAD_MODE=none \
        "$ferry" import --storage "file://$work/b" --staging "$work" "$work/bundle.tar.gz") || die "ferry import failed"
    imported=$(seconds "$start" "$(date +%s.%N)")
    echo "$said" >&2

    printf '%-40s %6d %8.0f %8.1fs %8.1fs %7.2fx %8.1fs %8.1fs (%s)\n' "$module" "$zips" \
        "$(echo "$bytes / 1000000" | bc -l)" "$direct" "$mirror" "$(echo "$mirror / $direct" | bc -l)" \
        "$exported" "$imported" "$(grep -o '([^)]*/s)' <<<"$said" | tr -d '()')"
    chmod -R u+w "$work/cache" && rm -rf "$work/cache"
done
