#!/bin/sh
# tests/compiler/gpu/run_cuda_vs_c.sh [--on-host] BUILD_DIR [MODEL.mdl ...] - builds each
# model for the C and the CUDA target with step_compare.c and compares what they print
# after one train step (its loss, every persistent tensor's sum and sum of squares, the
# eval outputs) to a relative 2e-3 (cuBLAS and OpenBLAS sum in different orders). One
# step: training amplifies rounding, so after a few steps even two C builds that differ
# only in FMA contraction disagree (bench/gpu/run.sh measures that).
# Without --on-host it needs a GPU and nvcc. With --on-host the CUDA build runs on the CPU
# (host_cuda/: the generated .cu and runtime/kernels/cuda/ compiled by the host C++
# compiler against a CPU stand-in for the CUDA runtime and cuBLAS), so the CUDA target's
# host code and kernels are checked on any machine. STEPS (default 1): the train steps
# before the comparison; MLC_FLAGS: mlc flags for both targets (--precision bf16). Each
# CUDA build also runs with its steps as CUDA graphs (captured
# at the first step, replayed after) and launched one by one, which must agree bit for bit.
# Default models: lenet, the layers test model, resnet20_cifar, the token models (batched
# GEMMs: cublasSgemmStridedBatched) and seqops (layer and RMS norm, embedding, causal mask).
# Exit 1 on a mismatch.
set -eu
ON_HOST=0
[ "${1:-}" != --on-host ] || { ON_HOST=1; shift; }
BUILD=$(cd "$1" && pwd); shift
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
[ $# -gt 0 ] || set -- "$ROOT/samples/lenet.mdl" "$ROOT/tests/compiler/data/layers.mdl" "$ROOT/samples/resnet20_cifar.mdl" \
    "$ROOT/tests/compiler/data/token_mlp.mdl" "$ROOT/tests/compiler/data/token_attn.mdl" \
    "$ROOT/tests/compiler/data/seqops.mdl"
MLC=$BUILD/compiler/mlc
W=$(mktemp -d)
status=0
for mdl in "$@"; do
    name=$(sed -n 's/^model \([A-Za-z0-9_]*\).*/\1/p' "$mdl")
    # shellcheck disable=SC2086
    "$MLC" "$mdl" -o "$W/$name.c" ${MLC_FLAGS:-}
    # shellcheck disable=SC2086
    "$MLC" "$mdl" -o "$W/$name.cu" --target cuda ${MLC_FLAGS:-}
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$W/$name.c" "$ROOT/tests/compiler/gpu/step_compare.c" \
        -I"$ROOT/runtime" -I/usr/include/x86_64-linux-gnu/openblas-pthread -I"$W" -DMLC_MODEL_API="${name}_api" \
        -o "$W/${name}_c" -L"$BUILD/runtime" -lmlckernels -lmlcrt -lopenblas -lz -lm
    if [ $ON_HOST = 1 ]; then
        sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/$name.cu" \
            "$ROOT/tests/compiler/gpu/step_compare.c" "${name}_api" "$W/${name}_cuda"
        eager="env MLC_CUDA_GRAPHS=0 $W/${name}_cuda"
    else
        # the CUDA-graph build, and one that waits for each kernel (so that a fault names its
        # launch), which launches one by one
        for sync in "" -DMLC_CUDA_SYNC_CHECK; do
            /usr/local/cuda/bin/nvcc -O3 -std=c++17 -arch=native $sync "$W/$name.cu" \
                "$ROOT"/runtime/kernels/cuda/*.cu \
                "$ROOT/tests/compiler/gpu/step_compare.c" -I"$ROOT/runtime" -I"$W" -DMLC_MODEL_API="${name}_api" \
                -o "$W/${name}_cuda${sync:+_sync}" -L"$BUILD/runtime" -lmlcrt -lcublas -lz -lm
        done
        eager="$W/${name}_cuda_sync"
    fi
    "$W/${name}_c" "${STEPS:-1}" > "$W/$name.c.txt"
    "$W/${name}_cuda" "${STEPS:-1}" > "$W/$name.cuda.txt" 2> "$W/$name.cuda.err" || { cat "$W/$name.cuda.err" >&2; exit 1; }
    $eager "${STEPS:-1}" > "$W/$name.eager.txt"
    if paste -d' ' "$W/$name.c.txt" "$W/$name.cuda.txt" | awk -v m="$name" '
        function bad(a, b) { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b); return d > 2e-3 * s + 1e-5 }
        { n = NF / 2; for (i = 1; i <= n; i++) if ($i ~ /^-?[0-9]/ && bad($i, $(i + n))) { print m ": " $0; fail = 1 } }
        END { exit fail }'; then
        echo "$name: C and CUDA agree ($(grep -c . "$W/$name.c.txt") lines)"
    else
        echo "$name: MISMATCH (outputs in $W)"; status=1
    fi
    # CUDA graphs: captured (no note that they are off) and replayed to the same bits as
    # the launches one by one
    if grep -q 'CUDA graphs off' "$W/$name.cuda.err"; then
        echo "$name: $(grep 'CUDA graphs off' "$W/$name.cuda.err")"; status=1
    elif ! cmp -s "$W/$name.cuda.txt" "$W/$name.eager.txt"; then
        echo "$name: CUDA graphs and launches one by one DIFFER (outputs in $W)"; status=1
    fi
done
[ $status -ne 0 ] || rm -rf "$W"
exit $status
