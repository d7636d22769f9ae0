#!/usr/bin/env bash
# The intake benchmark (issue "mail sources"): postern serve against a private Dovecot, and
# mail_room side by side when Debian's ruby-mail-room is installed. Prints markdown tables.
#
#   bash bench/intake.sh                 # 2 000 small + 200 × 1 MB messages, 50 latency samples
#   bash bench/intake.sh --small 500 --large 50 --no-mail-room
#   bash bench/intake.sh --companion      # GitLab companion mode vs mail_room, webhook to a local sink
#
# Each drain runs twice, under the default sender-authentication policy (dmarc) and with it off.
#
# Needs dovecot-imapd (and openssl); scripts/test.sh installs them. mail_room is optional:
#   apt-get install -y ruby-mail-room ruby-faraday   (faraday: its postback delivery)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p postern -p postern-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/postern-bench" --postern "$target/release/postern" "$@"
