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
for port in 2525 8080; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "symbol-order.sh: 127.0.0.1:$port is taken; postern without configuration needs it" >&2
        exit 69
    fi
done

work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# waits (at most 120 s: valgrind is slow) until `command` succeeds.
wait_for() {
    local tries=1200
    until "$@" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || { echo "symbol-order.sh: timed out waiting for: $*" >&2; exit 1; }
        sleep 0.1
    done
}

# lmtp TO: delivers one new-issue message to TO over LMTP, checking each reply code.
lmtp() {
    local to=$1 reply
    exec 3<>/dev/tcp/127.0.0.1/2525
    expect() {
        while IFS= read -r -t 120 reply <&3; do
            case "$reply" in
                "$1 "*) return 0 ;;
                "$1-"*) ;;
                *) echo "symbol-order.sh: LMTP said: $reply" >&2; exit 1 ;;
            esac
        done
        echo "symbol-order.sh: LMTP closed" >&2
        exit 1
    }
    expect 220
    printf 'LHLO order\r\n' >&3; expect 250
    printf 'MAIL FROM:<jake@example.com>\r\n' >&3; expect 250
    printf 'RCPT TO:<%s>\r\n' "$to" >&3; expect 250
    printf 'DATA\r\n' >&3; expect 354
    printf 'From: jake@example.com\r\nTo: %s\r\nSubject: Symbol order\r\nMessage-ID: <order@bench>\r\n\r\nOne message, then nothing.\r\n.\r\n' \
        "$to" >&3
    expect 250
    printf 'QUIT\r\n' >&3
    exec 3<&-
}

cd "$work"
"$binary" admin user add jake --email jake@example.com >/dev/null
"$binary" admin project add land/ooo >/dev/null
"$binary" admin project member add land/ooo jake developer >/dev/null
to=$("$binary" admin --json project show land/ooo --user jake \
    | sed -n 's/.*"new_issue": *"\([^"]*\)".*/\1/p')
echo "symbol-order.sh: starting postern serve under callgrind (slow)" >&2
valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/callgrind.%p" "$binary" serve >serve.log 2>&1 &
pid=$!
wait_for bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525'
sleep 5
callgrind_control --dump=started "$pid" >/dev/null
echo "symbol-order.sh: started; delivering one message" >&2
lmtp "$to"
wait_for bash -c '"$0" admin --json issue show land/ooo 1 >/dev/null' "$binary"
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
