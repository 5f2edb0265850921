#!/usr/bin/env bash
# bench/conv_algo.sh - a sample's train step with each --conv-algo, against the SGEMM rate
# measured right beside each run: the "effective" share of SGEMM that issue 18 counts
# (the direct convolution's FLOPs over the step's time, so Winograd can pass 100 %).
# Builds one trainer per model and algorithm (bench/step_timer.c), then runs them in
# turn, --rounds times, each after a short bench/sgemm_rate run, so drifting load hits
# all alike. Prints every run and, per model and algorithm, the median step, the median
# of its runs' shares of the SGEMM rate beside them (the best of 3 calls per size, the
# best size) and their share of the best rate of the whole script. mlc only: bench/run.sh
# is the side by side with PyTorch. Timings only; nothing here is a test.
#
# usage: bench/conv_algo.sh [--threads N] [--rounds N] [--steps N] [--algos "direct auto"] [MODEL...]
#   models: any samples/NAME (default: resnet resnet20_cifar)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 rounds=3 steps=30 algos="direct auto"
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --algos) algos=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench/conv_algo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) [ -f "samples/$1.mdl" ] || { echo "bench/conv_algo.sh: no samples/$1.mdl" >&2; exit 2; }
           models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(resnet resnet20_cifar)

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build -j2 >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
CFLAGS=(-std=c11 -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp -D_POSIX_C_SOURCE=200809L $blas_cflags -Iruntime)
LIBS=(-Lbuild/runtime -lmlckernels -lmlcrt -lopenblas -lz -lm -pthread)

cc "${CFLAGS[@]}" bench/sgemm_rate.c -o "$work/sgemm_rate" -Lbuild/runtime -lmlckernels -lopenblas -lm -pthread
for m in "${models[@]}"; do
    for a in $algos; do
        build/compiler/mlc "samples/$m.mdl" -o "$work/${m}_$a.c" --report --threads "$threads" --conv-algo "$a" \
            > "$work/${m}_$a.report"
        cc "${CFLAGS[@]}" "$work/${m}_$a.c" bench/step_timer.c -DMLC_MODEL_API="${m}_api" -o "$work/${m}_$a" "${LIBS[@]}"
    done
done

for r in $(seq "$rounds"); do
    for m in "${models[@]}"; do
        for a in $algos; do
            best=$("$work/sgemm_rate" --threads "$threads" --reps 3 |
                sed -n 's/.* best_gflops=\([0-9.]*\).*/\1/p' | sort -g | tail -1)
            line=$("$work/${m}_$a" --threads "$threads" --steps "$steps" --warmup 3)
            echo "round=$r model=$m algo=$a sgemm_best_gflops=$best $line" | tee -a "$work/runs.txt"
        done
    done
done

/usr/bin/env python3 - "$work" "$threads" <<'PY'
import re, statistics, sys
sys.path.insert(0, "bench")
from summary import parse_report
work, threads = sys.argv[1], sys.argv[2]
runs = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in open(f"{work}/runs.txt")]
peak = max(float(r["sgemm_best_gflops"]) for r in runs)
print(f"\n{threads} threads; SGEMM best of the script {peak:.1f} GFLOP/s; shares count the direct convolution's FLOPs")
print(f"{'model':<16}{'algo':<10}{'GFLOP':>8}{'median ms':>11}{'GFLOP/s':>9}{'% beside':>10}{'% best':>8}")
for key in dict.fromkeys((r["model"], r["algo"]) for r in runs):
    mine = [r for r in runs if (r["model"], r["algo"]) == key]
    flops = parse_report(f"{work}/{key[0]}_{key[1]}.report")["flops"]
    ms = statistics.median(float(r["median_ms"]) for r in mine)
    beside = statistics.median(flops / (float(r["median_ms"]) * 1e6) / float(r["sgemm_best_gflops"]) for r in mine)
    rate = flops / (ms * 1e6)
    print(f"{key[0]:<16}{key[1]:<10}{flops / 1e9:>8.3f}{ms:>11.2f}{rate:>9.1f}{100 * beside:>9.1f}%{100 * rate / peak:>7.1f}%")
PY
