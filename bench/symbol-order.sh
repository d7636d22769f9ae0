#!/usr/bin/env bash
# Writes crates/postern/postern.order: the functions an idle `postern serve` runs, first those
# of starting, then those of taking one message in and going idle again. The release link
# (crates/postern/build.rs) places them together at the front of `.text`, so the code a waiting
# server has touched sits on a few pages instead of being spread over the whole binary, where
# each function touched keeps a page (and the kernel's fault-around its neighbours) resident.
#
#   bash bench/symbol-order.sh [--binary PATH]
#
# Runs the release binary under valgrind's callgrind (Debian package `valgrind`), in the scenario
# of bench/idle-rss.sh (no configuration, one message over LMTP), and reads the names of the
# functions that ran from callgrind's two dumps. Symbol names carry a hash of their crate and
# types, so a list made from an older build still matches most functions of a newer one; lld
# skips names it does not find. Run it again after large changes; bench/idle-rss.sh shows the
# effect. Needs 127.0.0.1:2525 and :8080 free.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        *) echo "symbol-order.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
if [ -z "$binary" ]; then
    binary="${CARGO_TARGET_DIR:-target}/release/postern"
    [ -x "$binary" ] || cargo build --release --locked -p postern
fi
binary=$(realpath "$binary")
command -v valgrind >/dev/null || { echo "symbol-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 69; }
name=symbol-order.sh
# valgrind is slow.
wait_seconds=120
reply_seconds=120
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

cd "$work"
to=$(prepare_instance)
echo "symbol-order.sh: starting postern serve under callgrind (slow)" >&2
valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/callgrind.%p" "$binary" serve >serve.log 2>&1 &
pid=$!
wait_for bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525'
sleep 5
callgrind_control --dump=started "$pid" >/dev/null
echo "symbol-order.sh: started; delivering one message" >&2
lmtp "$to" order
wait_for issue_exists
sleep 5
kill -TERM "$pid"
wait "$pid" || true
served=$pid
pid=""

# Each dump names the functions that ran since the previous one ("fn=" lines); those of the
# start come first, then the new ones of the message. Only functions of the binary's own code
# are kept (not the C library's, nor addresses without a name).
dumps=("$work/callgrind.$served.1" "$work/callgrind.$served")
nm --defined-only "$binary" | awk '$2 ~ /^[tTwW]$/ { print $3 }' >"$work/defined"
awk 'FILENAME == ARGV[1] { defined[$0] = 1; next }
     /^fn=/ { name = substr($0, 4); if ((name in defined) && !(name in seen)) { seen[name] = 1; print name } }' \
    "$work/defined" "${dumps[@]}" >"$work/order"
count=$(wc -l <"$work/order")
[ "$count" -gt 1000 ] || { echo "symbol-order.sh: only $count functions recorded" >&2; exit 1; }
mv "$work/order" "$root/crates/postern/postern.order"
echo "symbol-order.sh: wrote crates/postern/postern.order ($count functions)" >&2
