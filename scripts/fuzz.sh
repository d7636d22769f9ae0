#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), one after another, and prints the
# executions and crashes per target. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Not part of .ci/run: CI has no nightly guarantee.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Seeds in fuzz/seeds/<target>/ (most are links to fixtures in testdata/, so a fixture is kept
# once) are copied into the working corpus fuzz/corpus/<target>/ first
# (the corpus grows across runs and is not kept in git); crashes land in
# fuzz/artifacts/<target>/. A crash found becomes a regression test in the owning crate.
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# One build for all targets, so the time per target is fuzzing only.
cargo +nightly fuzz build

logs="$root/fuzz/artifacts/logs"
mkdir -p "$logs"
summary=()
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    if [ -d "seeds/$target" ]; then
        cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
    fi
    before=$(find "artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    log="$logs/$target.log"
    echo "== $target: ${seconds}s"
    # -rss_limit_mb and -timeout make memory blow-ups and stalls findings too; -max_len lets
    # inputs grow to 64 KiB so size-dependent slowness can show.
    if cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        result="ok"
    else
        result="FAILED (see $log)"
        status=1
    fi
    after=$(find "artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    summary+=("$(printf '%-18s %12s execs  %3d new findings  %s' "$target" "${execs:-?}" "$((after - before))" "$result")")
done

echo
echo "target             executions        findings"
printf '%s\n' "${summary[@]}"
exit "$status"
