#!/usr/bin/env bash
# Idle resident size of `postern serve` with no configuration (issue 21: at most 15 MB), in the
# two states that matter for a server that mostly waits: just started, and idle again after it
# processed one message. Prints one markdown row per run (VmRSS, and its anonymous and
# file-backed parts, from /proc/PID/status).
#
#   bash bench/idle-rss.sh                   # 5 runs with target/release/postern (built if missing)
#   bash bench/idle-rss.sh --runs 3 --binary PATH --settle 10
#
# Without configuration postern listens on 127.0.0.1:2525 (LMTP) and 127.0.0.1:8080 (web): both
# must be free. Each run has a fresh data directory in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
binary=""
settle=8
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --settle) settle=$2; shift 2 ;;
        *) echo "idle-rss.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
if [ -z "$binary" ]; then
    binary="${CARGO_TARGET_DIR:-target}/release/postern"
    [ -x "$binary" ] || cargo build --release --locked -p postern
fi
binary=$(realpath "$binary")
name=idle-rss.sh
wait_seconds=20
reply_seconds=30
# shellcheck source=bench/one-message.sh
. bench/one-message.sh
require_free_ports

work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# field FIELD: the value in MB of FIELD (VmRSS, RssAnon, RssFile) of the server.
field() {
    awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"
}

echo "postern serve without configuration, $binary ($(du -m "$binary" | cut -f1) MB)"
# The layout of the code an idle server runs (crates/postern/build.rs) works only as far as the
# names in postern.order are this build's: after large changes, bench/symbol-order.sh again.
order=crates/postern/postern.order
if [ -f "$order" ] && command -v nm >/dev/null; then
    listed=$(wc -l <"$order")
    present=$(nm --defined-only "$binary" | awk 'NR == FNR { want[$0] = 1; next } ($3 in want)' "$order" - | wc -l)
    echo "symbol order: $present of the $listed functions in $order are in this binary"
fi
echo
echo "| run | after start MB (anon + file) | after one message, idle MB (anon + file) |"
echo "|-----|------------------------------|------------------------------------------|"
for run in $(seq 1 "$runs"); do
    dir="$work/run$run"
    mkdir -p "$dir"
    cd "$dir"
    to=$(prepare_instance)
    "$binary" serve >serve.log 2>&1 &
    pid=$!
    wait_for bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525'
    sleep "$settle"
    start="$(field VmRSS) ($(field RssAnon) + $(field RssFile))"
    lmtp "$to" "idle-rss-$RANDOM$RANDOM"
    wait_for issue_exists
    sleep "$settle"
    after="$(field VmRSS) ($(field RssAnon) + $(field RssFile))"
    echo "| $run | $start | $after |"
    kill "$pid"
    wait "$pid" || true
    pid=""
    cd - >/dev/null
done
