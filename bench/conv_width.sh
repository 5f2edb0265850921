#!/usr/bin/env bash
# bench/conv_width.sh - the convolution kernels at each vector width on this machine:
# builds libmlckernels' sources at -DMLC_VEC_WIDTH=4, 8 and 16 (-march=native; a width
# the CPU lacks is emulated) and at -march=x86-64-v3, links bench/conv_rate.c with each,
# and runs them in turn, --rounds times, so drifting load hits all alike. Prints every
# line and, per width, layer and op, the median over the rounds of the runs' medians.
# Timings only; nothing here is a test.
#
# usage: bench/conv_width.sh [--threads N] [--rounds N] [--reps N] [--widths "4 8 16"]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 rounds=3 reps=10 widths="4 8 16"
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --widths) widths=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/conv_width.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
srcs=$(grep -o "kernels/c/[a-z_0-9]*\.c" runtime/meson.build | sort -u | sed 's|^|runtime/|')
[ -n "$srcs" ] || { echo "bench/conv_width.sh: no kernel sources found in runtime/meson.build" >&2; exit 1; }
build() { # name, flags...
    local name=$1; shift
    mkdir -p "$work/$name"
    for s in $srcs; do
        cc -std=c11 -O3 -fno-math-errno -fno-trapping-math -fopenmp -D_POSIX_C_SOURCE=200809L "$@" $blas_cflags \
            -Iruntime/kernels -c "$s" -o "$work/$name/$(basename "$s" .c).o"
    done
    cc -std=c11 -O3 -fopenmp -D_POSIX_C_SOURCE=200809L "$@" $blas_cflags -Iruntime bench/conv_rate.c \
        "$work/$name"/*.o -o "$work/conv_rate_$name" -lopenblas -lm
}
variants=()
for vw in $widths; do build "vw$vw" -march=native -DMLC_VEC_WIDTH="$vw"; variants+=("vw$vw"); done
build v3 -march=x86-64-v3; variants+=(v3)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) on $(nproc) cores"
for r in $(seq 1 "$rounds"); do
    for v in "${variants[@]}"; do
        "$work/conv_rate_$v" --threads "$threads" --reps "$reps" | sed "s/^/round=$r build=$v /" | tee -a "$work/all.txt"
    done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median over $rounds rounds of each run's median GFLOP/s (direct-convolution FLOPs), per layer and op:"
python3 - "$work/all.txt" "${variants[@]}" <<'PY'
import collections, re, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    runs[(f["layer"], f["op"], f["build"])].append(float(f["median_gflops"]))
builds = sys.argv[2:]
print(f"{'layer':<16}{'op':<8}" + "".join(f"{b:>8}" for b in builds))
for layer, op in sorted({(k[0], k[1]) for k in runs}):
    print(f"{layer:<16}{op:<8}" + "".join(f"{statistics.median(runs[(layer, op, b)]):>8.1f}" for b in builds))
PY
