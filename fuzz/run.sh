#!/usr/bin/env bash
# fuzz/run.sh - builds the libFuzzer harnesses (clang, ASan + UBSan, in build-fuzz/) and
# runs each for SECONDS (default 20) on one core, from its seed corpus; new inputs go to
# build-fuzz/corpus/NAME (the repository's seeds are only read). Prints one line per
# harness with its execution count; exits non-zero on the first finding (the crashing
# input is left as build-fuzz/crash-*). fuzz/README.md says how to run a long campaign.
#
#   fuzz/run.sh [SECONDS] [mdl compile idx cifar ckpt text]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
harnesses=("${@:-mdl compile idx cifar ckpt text}")
read -r -a harnesses <<< "${harnesses[*]}"

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-fuzz $(printf 'fuzz/fuzz_%s ' "${harnesses[@]}") >/dev/null

# the seeds of each harness: its own folder, and for .mdl the samples and test models
seeds() {
    case "$1" in
    mdl | compile) echo fuzz/corpus/mdl samples tests/compiler/data tests/compiler/errors ;;
    *) echo "fuzz/corpus/$1" ;;
    esac
}

total=0
for h in "${harnesses[@]}"; do
    mkdir -p "build-fuzz/corpus/$h"
    log="build-fuzz/fuzz_$h.log"
    # halt_on_error: a UBSan report is a finding, as an ASan one is
    if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "build-fuzz/fuzz/fuzz_$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=build-fuzz/ -print_final_stats=1 \
        "build-fuzz/corpus/$h" $(seeds "$h") >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz_$h: FINDING (log: $log)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz_$h: ${runs:-0} executions in ${secs} s, no findings"
    total=$((total + ${runs:-0}))
done
echo "fuzz: $total executions in all"
