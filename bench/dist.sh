#!/usr/bin/env bash
# bench/dist.sh - data-parallel training on this machine's cores: for each sample, a
# trainer built with `mlc build --mpi`, run as 2 ranks x 1 thread (mpirun -np 2), with the
# gradient buckets all-reduced while the backward runs (the default) and after it
# (--no-overlap), against 1 process x 2 threads, on the same global batch (the sample's
# 64) of Fashion-MNIST. Per configuration: the mean train-step time (from rank 0's --log,
# steps after the 5th) and the time in collectives per step (the trainer's
# `data-parallel:` line: communication not hidden, plus waiting for the slower rank); and
# what the gradient all-reduce alone costs (bench/allreduce_time, the slab's bytes, 2
# ranks). The share of communication hidden behind the backward is
# 1 - (in collectives, overlap) / (in collectives, --no-overlap). Medians over --reps
# alternating runs. Writes bench/results/dist.md. Timings only; nothing here is a test.
# The machine is shared: compare rows of one run, and read them with its load.
#
# usage: bench/dist.sh [--reps N] [--steps-scale X] [MODEL...]   (models: mlp lenet resnet)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3 scale=1
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift 2 ;;
        --steps-scale) scale=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        mlp|lenet|resnet) models+=("$1"); shift ;;
        *) echo "bench/dist.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(mlp lenet resnet)
command -v mpirun >/dev/null || { echo "bench/dist.sh: error: no mpirun (Debian: openmpi-bin libopenmpi-dev)" >&2; exit 1; }
data=/usr/share/datasets/fashion-mnist
[ -r $data/train-images-idx3-ubyte.gz ] || { echo "bench/dist.sh: error: no Fashion-MNIST in $data" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe --bind-to none)
ninja -C build >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpicc -O2 bench/allreduce_time.c -o "$work/allreduce_time"
mkdir -p bench/results

# mean step time in ms over the steps after the 5th, from a --log CSV (seconds: column 8
# for classifiers)
step_ms() { awk -F, 'NR > 1 && $1 == "step" { n++; if (n == 5) t0 = $NF; if (n > 5) t1 = $NF } END { printf "%.3f", 1000 * (t1 - t0) / (n - 5) }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

out=bench/results/dist.md
{
    echo "# 2 ranks x 1 thread against 1 process x 2 threads ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Medians over $reps alternating runs; global batch 64 (32 per rank). Step: mean over the steps after the 5th."
    echo
    echo "| model | gradient bytes | 1 x 2 threads step ms | 2 x 1 thread step ms | same, --no-overlap | in collectives ms/step | same, --no-overlap | all-reduce alone ms | share hidden |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
for m in "${models[@]}"; do
    case $m in mlp) steps=200 ;; lenet) steps=60 ;; resnet) steps=20 ;; esac
    steps=$(awk -v s=$steps -v x=$scale 'BEGIN { v = s * x; printf "%d", (v > 10 ? v : 10) }')
    build/compiler/mlc build samples/$m.mdl -o "$work/$m" --mpi
    flags=(--data $data --train-limit $((steps * 64)) --test-limit 64 --epochs 1 --batch 64 --progress never)
    one=() two=() ser=() coll=() collser=()
    for r in $(seq "$reps"); do
        "$work/$m" "${flags[@]}" --threads 2 --log "$work/one.csv" > /dev/null
        one+=("$(step_ms "$work/one.csv")")
        "${mpirun[@]}" -np 2 "$work/$m" "${flags[@]}" --threads 1 --log "$work/two.csv" > "$work/two.out"
        two+=("$(step_ms "$work/two.csv")")
        coll+=("$(awk -v n=$steps '/^data-parallel:/ { printf "%.3f", 1000 * $4 / n }' "$work/two.out")")
        "${mpirun[@]}" -np 2 "$work/$m" "${flags[@]}" --threads 1 --no-overlap --log "$work/ser.csv" > "$work/ser.out"
        ser+=("$(step_ms "$work/ser.csv")")
        collser+=("$(awk -v n=$steps '/^data-parallel:/ { printf "%.3f", 1000 * $4 / n }' "$work/ser.out")")
    done
    bytes=$(awk '/^data-parallel:/ { print $(NF - 5) }' "$work/two.out")
    alone=$("${mpirun[@]}" -np 2 "$work/allreduce_time" "$bytes" 50 | awk '/allreduce_ms/ { print $2 }')
    o=$(printf '%s\n' "${one[@]}" | median) t=$(printf '%s\n' "${two[@]}" | median)
    sr=$(printf '%s\n' "${ser[@]}" | median)
    c=$(printf '%s\n' "${coll[@]}" | median) cs=$(printf '%s\n' "${collser[@]}" | median)
    hidden=$(awk -v c=$c -v s=$cs 'BEGIN { h = s > 0 ? 1 - c / s : 0; printf "%.0f%%", 100 * (h > 0 ? h : 0) }')
    echo "| $m | $bytes | $o | $t | $sr | $c | $cs | $alone | $hidden |" | tee -a "$out"
done
echo "wrote $out"
