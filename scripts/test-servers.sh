#!/usr/bin/env bash
# The real storage servers the tests run against, on 127.0.0.1 only:
#   - s3s-fs (an S3 server that checks SigV4 signatures), from crates.io with `cargo install`;
#   - fake-gcs-server (a GCS emulator), built from its Go module with the XML-API writes object_store uses
#     added (scripts/fake-gcs-server/);
#   - Azurite's blob service (an Azure Blob Storage emulator that checks SharedKey signatures), from npm with
#     `npm install --prefix`; its container is created by scripts/azurite/create-container.js;
#   - redis-server (the replicas' lease engine for a shared file store), from Debian's packages;
#   - and one tool, no server: Chromium (headless, from Debian's packages), the real browser the status
#     page's tests drive (FERRY_TEST_CHROMIUM).
#
#   scripts/test-servers.sh start   installs what is missing, starts all four on free ports, creates the
#                                   buckets and the container
#   scripts/test-servers.sh env     prints the FERRY_TEST_* variables: eval "$(scripts/test-servers.sh env)"
#   scripts/test-servers.sh stop    stops them (by PID) and removes their data
#
# Each subcommand is idempotent. Tools are cached in $FERRY_TOOLS_DIR (default ~/.cache/ferry-test-tools);
# state (data, logs, PIDs, env file) lives in $FERRY_TEST_STATE_DIR (default target/test-servers).
set -euo pipefail

S3S_FS_VERSION=0.14.1 # the newest s3s-fs that builds with rustc 1.95
FAKE_GCS_SERVER_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
state=${FERRY_TEST_STATE_DIR:-$repo/target/test-servers}
env_file=$state/env

s3_bucket=ferry-test
gcs_bucket=ferry-test
azure_container=ferry-test
azure_account=ferrytest

die() {
    echo "test-servers: $*" >&2
    exit 1
}

install_tools() {
    mkdir -p "$tools/bin"
    if ! "$tools/bin/s3s-fs" --version 2>/dev/null | grep -qx "s3s-fs $S3S_FS_VERSION"; then
        command -v cargo >/dev/null || die "cargo is needed to install s3s-fs"
        echo "test-servers: installing s3s-fs $S3S_FS_VERSION into $tools" >&2
        cargo install --locked --quiet --force --version "$S3S_FS_VERSION" --features binary \
            --root "$tools" s3s-fs >&2
    fi
    # fake-gcs-server is built from its module source with Ferry's XML-API writes added (see
    # scripts/fake-gcs-server/); a marker file records which version and which additions the binary has.
    # The binary's name carries the version and a checksum of the additions, so worktrees with different
    # additions each keep theirs instead of rebuilding over each other's.
    local additions=$repo/scripts/fake-gcs-server
    gcs_bin=$tools/bin/fake-gcs-server-$FAKE_GCS_SERVER_VERSION-$(cat "$additions"/* | cksum | cut -d' ' -f1)
    if [[ ! -x $gcs_bin ]]; then
        command -v go >/dev/null || die "go is needed to build fake-gcs-server"
        echo "test-servers: building fake-gcs-server $FAKE_GCS_SERVER_VERSION into $tools" >&2
        local source build
        source=$(go mod download -json "github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -d $source ]] || die "go mod download gave no source directory for fake-gcs-server"
        build=$(mktemp -d)
        cp -R "$source/." "$build"
        chmod -R u+w "$build"
        cp "$additions/xml_writes.go" "$build/fakestorage/"
        (cd "$build" && git apply "$additions/register-xml-writes.patch" &&
            go build -o "$gcs_bin.partial" .) >&2
        mv "$gcs_bin.partial" "$gcs_bin"
        rm -rf "$build"
    fi
    # Redis from Debian's packages: the package lists are updated once, before the first install.
    if ! command -v redis-server >/dev/null; then
        echo "test-servers: installing redis-server from Debian's packages" >&2
        apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    fi
    command -v redis-server >/dev/null || die "redis-server is needed (apt-get install redis-server)"
    # Chromium from Debian's packages, for the status page's browser tests.
    if ! command -v chromium >/dev/null; then
        echo "test-servers: installing chromium from Debian's packages" >&2
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    fi
    command -v chromium >/dev/null || die "chromium is needed (apt-get install chromium)"
    # Azurite, pinned, in a directory of its own version: installing again is a no-op.
    if [[ ! -x $tools/azurite-$AZURITE_VERSION/node_modules/.bin/azurite-blob ]]; then
        if ! command -v npm >/dev/null; then
            echo "test-servers: installing node and npm from Debian's packages" >&2
            apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
        fi
        command -v npm >/dev/null || die "npm (and node) are needed to install Azurite"
        echo "test-servers: installing azurite $AZURITE_VERSION into $tools" >&2
        npm install --prefix "$tools/azurite-$AZURITE_VERSION" --no-audit --no-fund --loglevel=error \
            "azurite@$AZURITE_VERSION" >&2
    fi
}

# Whether something accepts connections on 127.0.0.1:$1.
port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nothing listens on (checked, then handed to the server at once).
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! port_answers "$port"; then
            echo "$port"
            return
        fi
    done
    die "found no free port"
}

running() {
    local pid_file=$state/$1.pid
    [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

wait_for() {
    local name=$1 port=$2
    for _ in $(seq 300); do
        if port_answers "$port"; then
            return
        fi
        running "$name" || die "$name exited at start; see $state/$name.log"
        sleep 0.1
    done
    die "$name does not answer on 127.0.0.1:$port after 30 s; see $state/$name.log"
}

random_hex() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

start() {
    if running s3 && running gcs && running azure && running redis && [[ -f $env_file ]]; then
        echo "test-servers: already running (state in $state)" >&2
        return
    fi
    stop_servers
    install_tools
    mkdir -p "$state"

    local s3_port s3_access s3_secret
    s3_port=$(free_port)
    s3_access=ferry-test-$(random_hex)
    s3_secret=$(random_hex)
    # s3s-fs serves each directory under its root as a bucket.
    mkdir -p "$state/s3-data/$s3_bucket"
    "$tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3_port" \
        --access-key "$s3_access" --secret-key "$s3_secret" \
        "$state/s3-data" >"$state/s3.log" 2>&1 &
    echo $! >"$state/s3.pid"

    local gcs_port
    gcs_port=$(free_port)
    # The filesystem backend serves each directory under its root as a bucket (and keeps large zips off
    # the heap).
    mkdir -p "$state/gcs-data/$gcs_bucket"
    "$gcs_bin" -scheme http -host 127.0.0.1 -port "$gcs_port" \
        -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" \
        -backend filesystem -filesystem-root "$state/gcs-data" -log-level warn \
        >"$state/gcs.log" 2>&1 &
    echo $! >"$state/gcs.pid"

    # object_store reads an emulator's address and "no OAuth" from the service-account file.
    cat >"$state/gcs-service-account.json" <<EOF
{"gcs_base_url": "http://127.0.0.1:$gcs_port", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}
EOF

    # Azurite with one account of its own (a random key, so signatures are really checked), the blob
    # service only, path-style URLs (http://127.0.0.1:PORT/ACCOUNT/CONTAINER), no telemetry.
    local azure_port azure_key
    azure_port=$(free_port)
    azure_key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
    mkdir -p "$state/azure-data"
    AZURITE_ACCOUNTS="$azure_account:$azure_key" \
        "$tools/azurite-$AZURITE_VERSION/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$azure_port" --location "$state/azure-data" \
        --skipApiVersionCheck --loose --disableTelemetry --disableProductStyleUrl --silent \
        >"$state/azure.log" 2>&1 &
    echo $! >"$state/azure.pid"

    # Redis on loopback, nothing persisted; the tests start their own from the same binary to stop it.
    local redis_port
    redis_port=$(free_port)
    mkdir -p "$state/redis-data"
    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "$state/redis-data" --daemonize no >"$state/redis.log" 2>&1 &
    echo $! >"$state/redis.pid"

    wait_for redis "$redis_port"
    wait_for s3 "$s3_port"
    wait_for gcs "$gcs_port"
    wait_for azure "$azure_port"
    node "$repo/scripts/azurite/create-container.js" "http://127.0.0.1:$azure_port/$azure_account" \
        "$azure_account" "$azure_key" "$azure_container" ||
        die "could not create the Azurite container; see $state/azure.log"

    cat >"$env_file" <<EOF
export FERRY_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export FERRY_TEST_S3_BUCKET=$s3_bucket
export FERRY_TEST_S3_ACCESS_KEY_ID=$s3_access
export FERRY_TEST_S3_SECRET_ACCESS_KEY=$s3_secret
export FERRY_TEST_GCS_ENDPOINT=http://127.0.0.1:$gcs_port
export FERRY_TEST_GCS_BUCKET=$gcs_bucket
export FERRY_TEST_GCS_SERVICE_ACCOUNT=$state/gcs-service-account.json
export FERRY_TEST_AZURE_ENDPOINT=http://127.0.0.1:$azure_port
export FERRY_TEST_AZURE_CONTAINER=$azure_container
export FERRY_TEST_AZURE_ACCOUNT=$azure_account
export FERRY_TEST_AZURE_KEY=$azure_key
export FERRY_TEST_REDIS_URL=redis://127.0.0.1:$redis_port
export FERRY_TEST_REDIS_SERVER=$(command -v redis-server)
export FERRY_TEST_CHROMIUM=$(command -v chromium)
EOF
    echo "test-servers: s3s-fs on 127.0.0.1:$s3_port, fake-gcs-server on 127.0.0.1:$gcs_port," \
        "Azurite on 127.0.0.1:$azure_port, redis-server on 127.0.0.1:$redis_port" >&2
}

stop_servers() {
    local name pid
    for name in s3 gcs azure redis; do
        if [[ -f $state/$name.pid ]]; then
            pid=$(cat "$state/$name.pid")
            if kill "$pid" 2>/dev/null; then
                for _ in $(seq 50); do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.1
                done
                kill -9 "$pid" 2>/dev/null || true
            fi
            rm -f "$state/$name.pid"
        fi
    done
    rm -rf "$state/s3-data" "$state/gcs-data" "$state/azure-data" "$state/redis-data" "$env_file"
}

case ${1:-} in
start) start ;;
stop) stop_servers ;;
env)
    [[ -f $env_file ]] || die "not started; run $0 start"
    cat "$env_file"
    ;;
*) die "usage: $0 start|stop|env" ;;
esac
