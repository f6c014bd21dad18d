#!/usr/bin/env bash
# What authentication and TLS cost a build fleet: `.mod` requests/s through Ferry (release build, the load
# harness's store) with oha at LOAD_CONNECTIONS (64) connections for SECONDS each, in eight set-ups:
#
#   plain                 no auth_file, plain HTTP/1.1 (the baseline)
#   plain-h2c             the same over HTTP/2 without TLS, to tell what HTTP/2 costs from what TLS costs
#   plain-jwt-sized       plain with a header Ferry ignores as long as the JWT's Authorization header: a JWT
#                         is about 900 bytes, which the kernel, hyper and oha handle on every request whatever
#                         Ferry does with it; jwt against this row is what verifying it costs
#   auth                  auth_file with a cost-10 bcrypt entry (`htpasswd -B -C 10`), the right password:
#                         after each connection's first request the check is remembered
#   bearer                a static bearer token of token_file (`ferry token create`), on the same server as
#                         auth: a SHA-256 of the token and a constant-time compare per request
#   jwt                   an RS256 JWT of an [[oidc]] issuer (a throw-away RSA key from openssl; discovery
#                         and JWKS served by python3's http.server), on the same server: verified once, then
#                         remembered until its exp
#   auth-wrong-password   the same file, one wrong password again and again: since wrong passwords are
#                         remembered too (issue 19), after its first check each request is a remembered 401;
#                         before that, every request cost a bcrypt check (28 requests/s at cost 10). A flood
#                         of different wrong passwords is benches/auth-flood.sh's
#   tls-auth-h1, -h2      TLS (a throw-away self-signed P-256 certificate from openssl) and auth, HTTP/1.1
#                         and HTTP/2
#
#   benches/auth.sh [SECONDS=5]        (AUTH_ROUNDS=5 rounds; the table gives each set-up's median)
#
# htpasswd comes from Debian's apache2-utils (installed when missing), oha from the tools directory (see
# load.sh). Prints requests/s, p99 and the fraction of the baseline, and the server's CPU time per request
# (user and system, from /proc) and its fraction of the baseline's: what a check costs Ferry itself, which
# moves far less than requests/s when other work shares the cores. Absolute figures on a shared machine
# are noise; read the ratios.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

seconds=${1:-${LOAD_SECONDS:-5}}
rounds=${AUTH_ROUNDS:-5}
connections=${LOAD_CONNECTIONS:-64}
tools=${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test-tools}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
oha_bin=$tools/bin/oha

die() {
    echo "auth.sh: $*" >&2
    exit 1
}

[[ -x $oha_bin ]] || die "oha is missing from $tools/bin: run benches/load.sh once (it installs it)"
if ! command -v htpasswd >/dev/null; then
    echo "auth.sh: installing htpasswd from Debian's apache2-utils" >&2
    apt-get update -qq && apt-get install -y -qq apache2-utils >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        { kill "$pid" && wait "$pid"; } 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p ferry --bin ferry -p ferry-benches --bin ferry-bench
"$target_dir/release/ferry-bench" tree "$work/store"
htpasswd -cbB -C 10 "$work/users" builder "correct-horse-battery" 2>/dev/null
token=$("$target_dir/release/ferry" token create --file "$work/tokens" --name bench 2>/dev/null)

# The OIDC issuer: an RSA key, its JWKS and discovery document as files served by python3, and one JWT.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
issuer_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
issuer=http://127.0.0.1:$issuer_port
mkdir -p "$work/issuer/.well-known"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/issuer.pem" 2>/dev/null
modulus=$(openssl rsa -in "$work/issuer.pem" -noout -modulus | cut -d= -f2 | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' | b64url)
printf '{"keys":[{"kty":"RSA","kid":"bench","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$modulus" >"$work/issuer/jwks"
printf '{"issuer":"%s","jwks_uri":"%s/jwks"}' "$issuer" "$issuer" >"$work/issuer/.well-known/openid-configuration"
python3 -m http.server --bind 127.0.0.1 --directory "$work/issuer" "$issuer_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "$issuer/jwks" >/dev/null && break; sleep 0.1; done
printf '[[oidc]]\nissuer = "%s"\naudience = "bench"\n' "$issuer" >"$work/ferry.toml"
jwt_input="$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url).$(printf '{"iss":"%s","aud":"bench","sub":"bench-job","exp":%d}' "$issuer" $(($(date +%s) + 86400)) | b64url)"
jwt="$jwt_input.$(printf '%s' "$jwt_input" | openssl dgst -sha256 -sign "$work/issuer.pem" | b64url)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
path=/example.com/small/@v/v1.0.0.mod

# start_ferry NAME [FERRY_*=value ...]: Ferry over the store with those variables; its address in $work/NAME.addr.
start_ferry() {
    local name=$1
    shift
    env FERRY_LOG=info,ferry::access=off FERRY_DOWNLOAD_MODE=none FERRY_WORK_DIR="$work/$name-work" "$@" \
        "$target_dir/release/ferry" \
        --listen 127.0.0.1:0 --storage "file://$work/store" 2>"$work/$name.log" &
    pids+=($!)
    echo $! >"$work/$name.pid"
    for _ in $(seq 100); do grep -q "ferry is serving" "$work/$name.log" 2>/dev/null && break; sleep 0.1; done
    grep -o 'listen=[0-9.:]*' "$work/$name.log" | head -1 | cut -d= -f2 >"$work/$name.addr"
    [[ -s $work/$name.addr ]] || die "ferry did not start: $(cat "$work/$name.log")"
}

# cpu_ticks SERVER: the CPU time the server's process has used (user and system, all threads), in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$(cat "$work/$1.pid")/stat"
}

# run NAME ROUND EXPECTED-STATUS URL [oha options]: one oha run; its requests/s, p99 and the server's CPU
# microseconds per request appended to $work/NAME. CPU per request is what a check costs the server itself:
# unlike requests/s it hardly moves when other work shares the cores (this machine's builds).
run() {
    local name=$1 round=$2 status=$3 url=$4
    shift 4
    local out=$work/$name.$round.json server=plain
    case $name in auth | bearer | jwt | auth-wrong-password) server=auth ;; tls-*) server=tls ;; esac
    local before
    before=$(cpu_ticks "$server")
    "$oha_bin" --no-tui --output-format json -z "${seconds}s" -c "$connections" "$@" "$url" >"$out"
    local seen
    seen=$(jq -r '.statusCodeDistribution | keys | join(",")' "$out")
    [[ $seen == "$status" ]] || die "$name: expected only $status answers, got $seen"
    # oha cuts the requests in flight when its duration ends: not a fault; anything else is.
    local errors
    errors=$(jq -r '(.errorDistribution // {}) | keys | map(select(. != "aborted due to deadline")) | join(",")' "$out")
    [[ -z $errors ]] || die "$name: errors: $errors"
    local ticks=$(($(cpu_ticks "$server") - before)) hz
    hz=$(getconf CLK_TCK)
    jq -r --argjson ticks "$ticks" --argjson hz "$hz" \
        '"\(.summary.requestsPerSec) \(.latencyPercentiles.p99 * 1000) \($ticks / $hz * 1e6 / (.summary.total * .summary.requestsPerSec))"' \
        "$out" >>"$work/$name"
}

# All three servers run at once, so every set-up sees the same machine; each round runs every set-up back to
# back, in an order that rotates from round to round, and the table gives each set-up's median round. Every
# round starts its servers afresh: two processes of the same binary differ by up to a tenth in CPU per request
# (where their threads and memory land), which one pair of processes would carry into every round.
start_servers() {
    local pid
    for pid in "${pids[@]:1}"; do { kill "$pid" && wait "$pid"; } 2>/dev/null || true; done
    pids=("${pids[0]}")
    start_ferry plain
    start_ferry auth FERRY_AUTH_FILE="$work/users" FERRY_TOKEN_FILE="$work/tokens" FERRY_CONFIG="$work/ferry.toml"
    start_ferry tls FERRY_AUTH_FILE="$work/users" FERRY_TLS_CERT="$work/cert.pem" FERRY_TLS_KEY="$work/key.pem"
    plain=$(cat "$work/plain.addr") auth=$(cat "$work/auth.addr") tls=$(cat "$work/tls.addr")
    # Each server's first requests (connections, the first bcrypt check, the JWT's verification) go before
    # the measured runs.
    "$oha_bin" --no-tui -z 1s -c "$connections" "http://$plain$path" >/dev/null
    "$oha_bin" --no-tui -z 1s -c "$connections" -a "$credentials" "http://$auth$path" >/dev/null
    "$oha_bin" --no-tui -z 1s -c "$connections" -H "Authorization: Bearer $jwt" "http://$auth$path" >/dev/null
    "$oha_bin" --no-tui -z 1s -c "$connections" -a "$credentials" --insecure "https://$tls$path" >/dev/null
}
credentials=builder:correct-horse-battery
padding=$(printf 'x%.0s' $(seq ${#jwt}))
setups=(plain plain-h2c plain-jwt-sized auth bearer jwt tls-auth-h1 tls-auth-h2)
one() {
    case $1 in
    plain) run plain "$2" 200 "http://$plain$path" ;;
    plain-h2c) run plain-h2c "$2" 200 "http://$plain$path" --http2 ;;
    plain-jwt-sized) run plain-jwt-sized "$2" 200 "http://$plain$path" -H "X-Padding: $padding" ;;
    auth) run auth "$2" 200 "http://$auth$path" -a "$credentials" ;;
    bearer) run bearer "$2" 200 "http://$auth$path" -H "Authorization: Bearer $token" ;;
    jwt) run jwt "$2" 200 "http://$auth$path" -H "Authorization: Bearer $jwt" ;;
    tls-auth-h1) run tls-auth-h1 "$2" 200 "https://$tls$path" -a "$credentials" --insecure ;;
    tls-auth-h2) run tls-auth-h2 "$2" 200 "https://$tls$path" -a "$credentials" --insecure --http2 ;;
    esac
}
for round in $(seq "$rounds"); do
    start_servers
    for i in "${!setups[@]}"; do
        one "${setups[$(((i + round) % ${#setups[@]}))]}" "$round"
    done
done
# One round is plenty.
run auth-wrong-password 1 401 "http://$auth$path" -a builder:wrong

echo "auth.sh: $rounds rounds of ${seconds}s per set-up, $connections connections, $(nproc) cores; .mod requests; medians"
median() { sort -n -k"${2:-1},${2:-1}" "$1" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }
read -r base _ <<<"$(median "$work/plain")"
read -r _ _ base_cpu <<<"$(median "$work/plain" 3)"
printf '%-22s %12s %10s %12s %14s %12s\n' set-up requests/s p99-ms of-plain cpu-us/request cpu-of-plain
for name in "${setups[@]}" auth-wrong-password; do
    read -r rps p99 _ <<<"$(median "$work/$name")"
    read -r _ _ cpu <<<"$(median "$work/$name" 3)"
    printf '%-22s %12.0f %10.2f %12.3f %14.2f %12.3f\n' "$name" "$rps" "$p99" "$(echo "$rps / $base" | bc -l)" \
        "$cpu" "$(echo "$cpu / $base_cpu" | bc -l)"
done
# A JWT against the plain request of its size: what verifying it costs, apart from what its size costs.
read -r sized _ <<<"$(median "$work/plain-jwt-sized")"
read -r _ _ sized_cpu <<<"$(median "$work/plain-jwt-sized" 3)"
read -r jwt_rps _ <<<"$(median "$work/jwt")"
read -r _ _ jwt_cpu <<<"$(median "$work/jwt" 3)"
printf '%-22s %12s %10s %12.3f %14s %12.3f\n' "jwt of plain-jwt-sized" "" "" "$(echo "$jwt_rps / $sized" | bc -l)" \
    "" "$(echo "$jwt_cpu / $sized_cpu" | bc -l)"
