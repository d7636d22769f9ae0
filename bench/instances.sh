#!/usr/bin/env bash
# The multi-instance benchmark (issue 19, item 6): several `postern serve` on one private
# PostgreSQL and one private Dovecot. Prints markdown tables:
#   - throughput with 1, 2 and 3 standalone instances draining one pre-loaded IMAP folder, with
#     CPU seconds per message of postern, of PostgreSQL and of the rest of the machine;
#   - takeover: SIGKILL of a companion-mode instance holding claims, 20 times, and the time until
#     another process delivers what it had claimed (p50/p95/max).
#
#   bash bench/instances.sh                          # 3 000 messages × 1, 2, 3 instances; 20 kills
#   bash bench/instances.sh --messages 1000 --counts 1,2 --kills 5
#   bash bench/instances.sh --no-takeover            # throughput only (or --no-throughput)
#   bash bench/instances.sh --help                   # every option
#
# Needs dovecot-imapd and PostgreSQL's server binaries (scripts/test.sh installs them).
# POSTERN_BENCH_KEEP=1 keeps each instance's directory and serve.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p postern -p postern-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/postern-bench" --postern "$target/release/postern" --instances "$@"
