#!/usr/bin/env bash
# Client compatibility: drives sfmtls-server with jsforce, a real third-party
# Salesforce client from the npm registry (version pinned in package.json and
# package-lock.json beside this script).
#
# Registered in ctest as compat_jsforce. Reads SFMTLS_SERVER_BIN, SFMTLS_CA_BIN
# and SFMTLS_SOURCE_DIR (set by ctest, as for e2e_server). It installs the
# pinned packages with `npm ci` when node_modules is missing or older than
# package-lock.json (once for every build tree), starts two throwaway servers
# (port 0, temporary state dirs, --ephemeral, an admin token of its own):
#   A  the defaults (REST MUTUAL_AUTHENTICATION_FAILED answered with 401)
#   B  --mutual-auth-failed-status 403 (the setting for jsforce users, whose
#      username/password connections log in again on every 401)
# runs jsforce.test.js with node's built-in test runner, and stops both
# servers on every way out.
#
# Environment (optional): SFMTLS_COMPAT_READY_TIMEOUT, seconds to wait for a
# server's ready line (default 120: a sanitizer build starts slowly).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${SFMTLS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
server_bin="${SFMTLS_SERVER_BIN:-$src/build/dev/server/sfmtls-server}"
ready_timeout="${SFMTLS_COMPAT_READY_TIMEOUT:-120}"

die() {
    echo "run-jsforce: $*" >&2
    exit 1
}

# ---- node and npm ----
command -v node >/dev/null 2>&1 ||
    die "node is not installed (Node.js 18 or newer is needed; scripts/install-deps installs it)"
command -v npm >/dev/null 2>&1 ||
    die "npm is not installed (it comes with Node.js; scripts/install-deps installs it)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] 2>/dev/null || die "node $(node --version) is too old: Node.js 18 or newer is needed"
[ -x "$server_bin" ] || die "no server binary at $server_bin (set SFMTLS_SERVER_BIN)"

# ---- the pinned client, installed once ----
# A lock (when flock exists) keeps two suites running at once from installing
# into the same folder together; the second then finds it up to date.
install_modules() {
    if [ ! -f "$here/node_modules/.package-lock.json" ] ||
        [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
        echo "run-jsforce: npm ci in $here"
        (cd "$here" && npm ci --no-audit --no-fund) || die "npm ci failed in $here"
    fi
}
lock="${TMPDIR:-/tmp}/sfmtls-compat-npm-$(printf '%s' "$here" | cksum | cut -d' ' -f1).lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$lock"
    flock 9
    install_modules
    flock -u 9
    exec 9>&-
else
    install_modules
fi

# ---- the servers ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sfmtls-compat-XXXXXX")"
pids=()                  # servers still to stop
declare -A pid mtls std  # by server name: process id, the ready line's URLs
failed=1

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "$failed" -ne 0 ]; then
        for f in "$tmp"/*.stderr; do
            [ -s "$f" ] || continue
            echo "---- end of $(basename "$f") ----" >&2
            tail -n 40 "$f" >&2
        done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

admin_token="compat-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

# Every server flag also reads an SFMTLS_* variable, and ctest sets some of
# those names for us: the servers get an environment without them.
server_env=(env)
while IFS= read -r name; do
    server_env+=(-u "$name")
done < <(compgen -e | grep '^SFMTLS_' || true)

# alive PID: the process runs (a child that exited stays a zombie until it is
# waited for, and kill -0 still finds it).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# start_server NAME ARGS...: starts one server in the background.
start_server() {
    local name="$1"
    shift
    "${server_env[@]}" "$server_bin" \
        --fixtures "$src/fixtures/default-org.json" \
        --state-dir "$tmp/$name-state" --ephemeral \
        --bind 127.0.0.1 --mtls-port 0 --port 0 \
        --admin-token "$admin_token" --log-format text "$@" \
        </dev/null >"$tmp/$name.stdout" 2>"$tmp/$name.stderr" &
    pid[$name]=$!
    pids+=("$!")
}

# wait_ready NAME: waits for NAME's ready line; sets mtls[NAME] and std[NAME].
wait_ready() {
    local name="$1" line re deadline
    re='^sfmtls ready mtls=(https://127\.0\.0\.1:[0-9]+) standard=(https://127\.0\.0\.1:[0-9]+)$'
    deadline=$((SECONDS + ready_timeout))
    while :; do
        line="$(head -n 1 "$tmp/$name.stdout" 2>/dev/null || true)"
        if [[ "$line" =~ $re ]]; then
            mtls[$name]="${BASH_REMATCH[1]}"
            std[$name]="${BASH_REMATCH[2]}"
            return 0
        fi
        alive "${pid[$name]}" || die "server $name exited before it was ready (stdout: ${line:-nothing})"
        [ "$SECONDS" -lt "$deadline" ] || die "server $name sent no ready line in ${ready_timeout}s (stdout: ${line:-nothing})"
        sleep 0.1
    done
}

start_server a
start_server b --mutual-auth-failed-status 403
wait_ready a
wait_ready b
echo "run-jsforce: server A mtls=${mtls[a]} standard=${std[a]}; server B mtls=${mtls[b]} standard=${std[b]}"

# ---- the test ----
set +e
(
    cd "$here" &&
        COMPAT_SOURCE_DIR="$src" \
            COMPAT_ADMIN_TOKEN="$admin_token" \
            COMPAT_A_MTLS_URL="${mtls[a]}" COMPAT_A_STANDARD_URL="${std[a]}" COMPAT_A_STATE_DIR="$tmp/a-state" \
            COMPAT_B_MTLS_URL="${mtls[b]}" COMPAT_B_STANDARD_URL="${std[b]}" COMPAT_B_STATE_DIR="$tmp/b-state" \
            node --test --test-reporter=spec jsforce.test.js
)
rc=$?
set -e

# Stop both servers as SIGTERM asks (finish, exit 0). A server that died
# during the run, or exits non-zero (a sanitizer build reports there), fails
# the run even if every jsforce case passed.
for name in a b; do
    p="${pid[$name]}"
    if ! alive "$p"; then
        server_rc=0
        wait "$p" || server_rc=$?
        echo "run-jsforce: server $name died during the run (exit status $server_rc)" >&2
        rc=1
        continue
    fi
    kill -TERM "$p" 2>/dev/null || true
    deadline=$((SECONDS + 60))
    while alive "$p" && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if alive "$p"; then
        echo "run-jsforce: server $name did not stop within 60s of SIGTERM" >&2
        kill -KILL "$p" 2>/dev/null || true
        rc=1
    fi
    server_rc=0
    wait "$p" || server_rc=$?
    if [ "$server_rc" -ne 0 ]; then
        echo "run-jsforce: server $name exited with $server_rc after SIGTERM" >&2
        rc=1
    fi
done
pids=()
failed=$rc
exit "$rc"
