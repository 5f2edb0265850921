#!/usr/bin/env bash
# bench/run.sh - train-step time of mlc's CPU trainers against PyTorch, side by side in
# one run on this machine: same model, batch, optimizer (Adam) and thread count, random
# data. Prints each side's median and the ratio mlc/PyTorch (below 1: mlc is faster), and
# writes the table to bench/results/steps.md. Timings only; nothing here is a test.
#
# usage: bench/run.sh [--threads N] [--steps N] [MODEL...]
#        (models: mlp lenet resnet resnet20_cifar; default all; --steps: per timing run,
#        default 200 for mlp, 50 for lenet, 15 for the ResNets)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 steps=
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(mlp lenet resnet resnet20_cifar)

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results
out=bench/results/steps.md
{
    echo "| model | batch | threads | mlc median ms | PyTorch median ms | mlc / PyTorch |"
    echo "|---|---|---|---|---|---|"
} > "$out"

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

for m in "${models[@]}"; do
    build/compiler/mlc "samples/$m.mdl" -o "$work/$m.c"
    cc -std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L "$work/$m.c" bench/step_timer.c \
        -Iruntime -I/usr/include/x86_64-linux-gnu/openblas-pthread -DMLC_MODEL_API="${m}_api" \
        -o "$work/$m" -Lbuild/runtime -lmlcrt -lopenblas -lz -lm -pthread
    n=$steps
    [ -n "$n" ] || case $m in mlp) n=200 ;; lenet) n=50 ;; *) n=15 ;; esac
    batch=$("$work/$m" --threads "$threads" --steps 1 --warmup 0 | field batch)
    # Alternate the two sides so drifting machine load hits both alike.
    mlc_runs=() torch_runs=()
    for rep in 1 2 3; do
        mlc_runs+=("$("$work/$m" --threads "$threads" --steps "$n" | field median_ms)")
        torch_runs+=("$(/usr/bin/python3 bench/torch_models.py "$m" --threads "$threads" --steps "$n" --batch "$batch" | field median_ms)")
    done
    med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
    a=$(med "${mlc_runs[@]}") b=$(med "${torch_runs[@]}")
    ratio=$(python3 -c "print(f'{$a / $b:.2f}')")
    echo "| $m | $batch | $threads | $a | $b | $ratio |" >> "$out"
    echo "$m: mlc ${a} ms, PyTorch ${b} ms per step (batch $batch, $threads threads): ratio $ratio (runs: mlc ${mlc_runs[*]}; torch ${torch_runs[*]})"
done
echo "table written to $out"
