# Sourced by bench/idle-rss.sh and bench/symbol-order.sh: both start `postern serve` without
# configuration in a fresh directory and give it one new-issue message over LMTP. The caller
# sets `name` (its name, for messages), `binary`, `wait_seconds` (how long to wait for the server
# to start or finish the message) and `reply_seconds` (for each LMTP reply): more under valgrind.

# Postern without configuration listens on 127.0.0.1:2525 (LMTP) and 127.0.0.1:8080 (web).
require_free_ports() {
    local port
    for port in 2525 8080; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$name: 127.0.0.1:$port is taken; postern without configuration needs it" >&2
            exit 69
        fi
    done
}

# wait_for COMMAND...: waits (at most `wait_seconds`) until COMMAND succeeds.
wait_for() {
    local tries=$((wait_seconds * 10))
    until "$@" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || { echo "$name: timed out waiting for: $*" >&2; exit 1; }
        sleep 0.1
    done
}

# prepare_instance: in the current directory, a user jake, developer of land/ooo; prints his
# new-issue address.
prepare_instance() {
    "$binary" admin user add jake --email jake@example.com >/dev/null
    "$binary" admin project add land/ooo >/dev/null
    "$binary" admin project member add land/ooo jake developer >/dev/null
    "$binary" admin --json project show land/ooo --user jake \
        | sed -n 's/.*"new_issue": *"\([^"]*\)".*/\1/p'
}

# lmtp TO MESSAGE_ID: delivers one new-issue message to TO over LMTP, checking each reply code.
lmtp() {
    local to=$1 message_id=$2 reply
    exec 3<>/dev/tcp/127.0.0.1/2525
    expect() {
        while IFS= read -r -t "$reply_seconds" reply <&3; do
            case "$reply" in
                "$1 "*) return 0 ;;
                "$1-"*) ;;
                *) echo "$name: LMTP said: $reply" >&2; exit 1 ;;
            esac
        done
        echo "$name: LMTP closed" >&2
        exit 1
    }
    expect 220
    printf 'LHLO bench\r\n' >&3; expect 250
    printf 'MAIL FROM:<jake@example.com>\r\n' >&3; expect 250
    printf 'RCPT TO:<%s>\r\n' "$to" >&3; expect 250
    printf 'DATA\r\n' >&3; expect 354
    printf 'From: jake@example.com\r\nTo: %s\r\nSubject: One message\r\nMessage-ID: <%s@bench>\r\n\r\nOne message, then nothing.\r\n.\r\n' \
        "$to" "$message_id" >&3
    expect 250
    printf 'QUIT\r\n' >&3
    exec 3<&-
}

# issue_exists: the message became issue 1 of land/ooo.
issue_exists() {
    "$binary" admin --json issue show land/ooo 1 >/dev/null
}
