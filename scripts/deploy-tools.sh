#!/usr/bin/env bash
# The tools the deploy/ tests (proxy/tests/it/deploy.rs) call, installed offline-reproducibly:
#   - helm, built from its Go module (pinned) with `go install`;
#   - ferry-deploy-check (deploy/check/, its own go.mod pinning k8s.io/api, compose-go, BuildKit): strict
#     Kubernetes decoding of rendered manifests, the compose specification's loader, BuildKit's Dockerfile
#     parser;
#   - systemd-analyze, from Debian's systemd package when it is missing;
#   - govulncheck, built from its Go module (pinned), the client of the vulnerability database tests
#     (proxy/tests/it/vuln.rs).
#
#   scripts/deploy-tools.sh install   installs what is missing or out of date (idempotent; the first run
#                                     compiles helm and the checker: several minutes on 2 cores)
#   scripts/deploy-tools.sh env       prints FERRY_TEST_HELM, FERRY_TEST_DEPLOY_CHECK,
#                                     FERRY_TEST_SYSTEMD_ANALYZE and FERRY_TEST_GOVULNCHECK:
#                                     eval "$(scripts/deploy-tools.sh env)"
#
# Tools are cached in $FERRY_TOOLS_DIR (default ~/.cache/ferry-test-tools), like scripts/test-servers.sh's.
set -euo pipefail

HELM_VERSION=v3.19.0
GOVULNCHECK_VERSION=v1.1.4

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}

die() {
    echo "deploy-tools: $*" >&2
    exit 1
}

# The module version a Go binary was built from (`go version -m`), empty when it is missing.
built_version() {
    [[ -x $1 ]] || return 0
    go version -m "$1" 2>/dev/null | awk -v mod="$2" '$1 == "mod" && $2 == mod { print $3 }'
}

install_tools() {
    command -v go >/dev/null || die "go is needed to build helm and ferry-deploy-check"
    mkdir -p "$tools/bin"
    if [[ $(built_version "$tools/bin/helm" helm.sh/helm/v3) != "$HELM_VERSION" ]]; then
        echo "deploy-tools: building helm $HELM_VERSION into $tools (go install)" >&2
        GOBIN=$tools/bin GOFLAGS= GOTOOLCHAIN=local go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
    fi
    if [[ $(built_version "$tools/bin/govulncheck" golang.org/x/vuln) != "$GOVULNCHECK_VERSION" ]]; then
        echo "deploy-tools: building govulncheck $GOVULNCHECK_VERSION into $tools (go install)" >&2
        GOBIN=$tools/bin GOFLAGS= GOTOOLCHAIN=local \
            go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" >&2
    fi
    # Rebuilt when its source or pinned dependencies change: a marker names their checksum.
    local marker
    marker=$tools/bin/.ferry-deploy-check-$(cat "$repo"/deploy/check/go.mod "$repo"/deploy/check/go.sum \
        "$repo"/deploy/check/*.go | cksum | cut -d' ' -f1)
    if [[ ! -x $tools/bin/ferry-deploy-check || ! -e $marker ]]; then
        echo "deploy-tools: building ferry-deploy-check into $tools" >&2
        (cd "$repo/deploy/check" && GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
            go build -o "$tools/bin/ferry-deploy-check" .) >&2
        rm -f "$tools/bin"/.ferry-deploy-check-*
        touch "$marker"
    fi
    if ! command -v systemd-analyze >/dev/null; then
        echo "deploy-tools: installing systemd-analyze from Debian's packages" >&2
        apt-get update -qq && apt-get install -y -qq systemd >/dev/null
        command -v systemd-analyze >/dev/null || die "systemd-analyze could not be installed"
    fi
}

print_env() {
    # Only tools that are there: a missing one fails its tests under FERRY_TEST_REQUIRE_SERVERS=1.
    [[ -x $tools/bin/helm ]] && echo "export FERRY_TEST_HELM=$tools/bin/helm"
    [[ -x $tools/bin/govulncheck ]] && echo "export FERRY_TEST_GOVULNCHECK=$tools/bin/govulncheck"
    [[ -x $tools/bin/ferry-deploy-check ]] && echo "export FERRY_TEST_DEPLOY_CHECK=$tools/bin/ferry-deploy-check"
    if command -v systemd-analyze >/dev/null; then
        echo "export FERRY_TEST_SYSTEMD_ANALYZE=$(command -v systemd-analyze)"
    fi
    return 0
}

case ${1:-} in
install) install_tools ;;
env) print_env ;;
*) die "usage: $0 install|env" ;;
esac
