#!/usr/bin/env bash
# bench/conv_width.sh - the convolution kernels at each vector width on this machine:
# builds libmlckernels' sources at -DMLC_VEC_WIDTH=4, 8 and 16 (-march=native; a width
# the CPU lacks is emulated) and at -march=x86-64-v3, links bench/conv_rate.c with each,
# and runs them in turn, --rounds times, so drifting load hits all alike. Prints every
# line and, per width and algorithm (direct, wino2: F(2x2, 3x3), wino4: F(4x4, 3x3) in a
# sample's rows of tiles, wino4g: F(4x4, 3x3) in groups of 8 samples),
# layer and op, the median over the rounds of the runs' medians.
# With --onednn, also oneDNN's convolutions on the same layers (bench/onednn_conv.c; needs
# Debian's libdnnl-dev), as the machine has them and limited to AVX2 (DNNL_MAX_CPU_ISA),
# with activations in mlc's NCHW layout and in oneDNN's blocked one: columns onednn/nchw,
# onednn/blocked, onednn_avx2/... Timings only; nothing here is a test.
#
# usage: bench/conv_width.sh [--threads N] [--rounds N] [--reps N] [--widths "4 8 16"] [--onednn]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 rounds=3 reps=10 widths="4 8 16" onednn=0
while [ $# -gt 0 ]; do
    case "$1" in
        --onednn) onednn=1; shift ;;
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
if [ "$onednn" = 1 ]; then
    [ -f /usr/include/dnnl.h ] || { echo "bench/conv_width.sh: --onednn needs oneDNN's headers (Debian: apt-get install libdnnl-dev)" >&2; exit 1; }
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L bench/onednn_conv.c -o "$work/conv_rate_onednn" -ldnnl
    printf '#!/bin/sh\nDNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 exec "%s" "$@"\n' "$work/conv_rate_onednn" \
        > "$work/conv_rate_onednn_avx2"
    chmod +x "$work/conv_rate_onednn_avx2"
    variants+=(onednn onednn_avx2)
fi
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
    if "median_gflops" not in f:  # oneDNN without a Winograd convolution here
        continue
    build = f["build"] + "/" + f.get("algo", f.get("layout"))  # mlc's algorithms, oneDNN's layouts
    runs[(f["layer"], f["op"], build)].append(float(f["median_gflops"]))
builds = [b for v in sys.argv[2:] for b in sorted({k[2] for k in runs if k[2].split("/")[0] == v})]
w = max(8, max(len(b) for b in builds) + 1)
print(f"{'layer':<16}{'op':<8}" + "".join(f"{b:>{w}}" for b in builds))
for layer, op in sorted({(k[0], k[1]) for k in runs}):
    cell = lambda r: f"{statistics.median(r):>{w}.1f}" if r else f"{'-':>{w}}"
    print(f"{layer:<16}{op:<8}" + "".join(cell(runs.get((layer, op, b))) for b in builds))
PY
