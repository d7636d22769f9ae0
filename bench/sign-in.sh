#!/usr/bin/env bash
# The sign-in benchmark (issue "safe to expose"): `postern serve` with its default hashing gate
# (one argon2 slot per CPU, 8 waiting places per CPU, 503 beyond), 50 clients signing in at
# once from 50 loopback addresses, 4 times each. Prints throughput, p50/p95/max latency, how
# many 503s were retried, the password checks counted by /metrics and the server's peak RSS.
#
#   bash bench/sign-in.sh
#
# A debug build, as the tests use it: argon2 and blake2 are built with opt-level 3 in the dev
# profile (root Cargo.toml), so the hashing measured is the optimised one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
exec cargo test --locked -p postern --test cli -- sign_in::sign_in_bench --ignored --nocapture --exact
