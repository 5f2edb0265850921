#!/bin/sh
# tests/compiler/gpu/run_cuda_vs_c.sh [--on-host] BUILD_DIR [MODEL.mdl ...] - builds each
# model for the C and the CUDA target with step_compare.c and compares what they print
# after one train step (its loss, every persistent tensor's sum, sum of squares and sum of
# magnitudes, the eval outputs) to a relative TOL, 2e-3 unless set (cuBLAS and OpenBLAS
# sum in different orders; compare_steps.awk says relative to what). One
# step: training amplifies rounding, so after a few steps even two C builds that differ
# only in FMA contraction disagree (bench/gpu/run.sh measures that).
# Without --on-host it needs a GPU and nvcc. With --on-host the CUDA build runs on the CPU
# (host_cuda/: the generated .cu and runtime/kernels/cuda/ compiled by the host C++
# compiler against a CPU stand-in for the CUDA runtime and cuBLAS), so the CUDA target's
# host code and kernels are checked on any machine. STEPS (default 1): the train steps
# before the comparison; MLC_FLAGS: mlc flags for both targets (--precision bf16),
# CUDA_FLAGS: for the CUDA target only (--tf32, --conv-algo implicit). Each
# CUDA build also runs with its steps as CUDA graphs (captured
# at the first step, replayed after) and launched one by one, which must agree bit for bit
# (on the stand-in, the latter with blocks and threads run in the reverse order:
# host_cuda.cpp's MLC_HOST_REVERSE); on the stand-in, the most device memory the model
# held must be what mlc --report says.
# Default models: lenet, the layers test model, resnet20_cifar, the token models (batched
# GEMMs: cublasSgemmStridedBatched) and seqops (layer and RMS norm, embedding, causal mask).
# MAIN=batch_sizes runs batch_sizes.c instead of step_compare.c (batch sizes 1 to 13 in
# turn, forwards and eval losses between: more graphs than the cache holds), with the C
# build's convolutions direct, as the CUDA target's are: a Winograd layer's other
# rounding grows over its 18 steps. Exit 1 on a mismatch.
set -eu
ON_HOST=0
[ "${1:-}" != --on-host ] || { ON_HOST=1; shift; }
BUILD=$(cd "$1" && pwd); shift
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
[ $# -gt 0 ] || set -- "$ROOT/samples/lenet.mdl" "$ROOT/tests/compiler/data/layers.mdl" "$ROOT/samples/resnet20_cifar.mdl" \
    "$ROOT/tests/compiler/data/token_mlp.mdl" "$ROOT/tests/compiler/data/token_attn.mdl" \
    "$ROOT/tests/compiler/data/seqops.mdl"
MLC=$BUILD/compiler/mlc
MAIN=${MAIN:-step_compare}
C_FLAGS=
[ "$MAIN" = step_compare ] || C_FLAGS="--conv-algo direct"
W=$(mktemp -d)
status=0
for mdl in "$@"; do
    name=$(sed -n 's/^model \([A-Za-z0-9_]*\).*/\1/p' "$mdl")
    # shellcheck disable=SC2086
    "$MLC" "$mdl" -o "$W/$name.c" ${MLC_FLAGS:-} $C_FLAGS
    # shellcheck disable=SC2086
    "$MLC" "$mdl" -o "$W/$name.cu" --target cuda ${MLC_FLAGS:-} ${CUDA_FLAGS:-}
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$W/$name.c" "$ROOT/tests/compiler/gpu/$MAIN.c" \
        -I"$ROOT/runtime" -I/usr/include/x86_64-linux-gnu/openblas-pthread -I"$W" -DMLC_MODEL_API="${name}_api" \
        -o "$W/${name}_c" -L"$BUILD/runtime" -lmlckernels -lmlcrt -lopenblas -lz -lm
    if [ $ON_HOST = 1 ]; then
        sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/$name.cu" \
            "$ROOT/tests/compiler/gpu/$MAIN.c" "${name}_api" "$W/${name}_cuda"
        # launched one by one, and blocks and threads run in the reverse order (a race
        # between them shows as other bits)
        eager="env MLC_CUDA_GRAPHS=0 MLC_HOST_REVERSE=1 $W/${name}_cuda"
    else
        # the CUDA-graph build, and one that waits for each kernel (so that a fault names its
        # launch), which launches one by one
        for sync in "" -DMLC_CUDA_SYNC_CHECK; do
            /usr/local/cuda/bin/nvcc -O3 -std=c++17 -arch=native $sync "$W/$name.cu" \
                "$ROOT"/runtime/kernels/cuda/*.cu \
                "$ROOT/tests/compiler/gpu/$MAIN.c" -I"$ROOT/runtime" -I"$W" -DMLC_MODEL_API="${name}_api" \
                -o "$W/${name}_cuda${sync:+_sync}" -L"$BUILD/runtime" -lmlcrt -lcublasLt -lcublas -lz -lm
        done
        eager="$W/${name}_cuda_sync"
    fi
    "$W/${name}_c" "${STEPS:-1}" > "$W/$name.c.txt"
    MLC_HOST_CUDA_PEAK=1 "$W/${name}_cuda" "${STEPS:-1}" > "$W/$name.cuda.txt" 2> "$W/$name.cuda.err" ||
        { cat "$W/$name.cuda.err" >&2; exit 1; }
    $eager "${STEPS:-1}" > "$W/$name.eager.txt"
    if paste -d' ' "$W/$name.c.txt" "$W/$name.cuda.txt" |
        awk -v name="$name" -v tol="${TOL:-2e-3}" -f "$ROOT/tests/compiler/gpu/compare_steps.awk"; then
        echo "$name: C and CUDA agree ($(grep -c . "$W/$name.c.txt") lines)"
    else
        echo "$name: MISMATCH (outputs in $W)"; status=1
    fi
    # on the CPU stand-in, which counts the device memory: what mlc --report says the model
    # allocates, give or take the few bytes of its scalar table
    if [ $ON_HOST = 1 ] && [ "$MAIN" = step_compare ]; then
        # shellcheck disable=SC2086
        said=$("$MLC" "$mdl" --target cuda --report ${MLC_FLAGS:-} ${CUDA_FLAGS:-} |
            sed -n 's/^device memory (B = [0-9]*): [^(]*(\([0-9]*\) bytes).*/\1/p')
        took=$(sed -n 's/^host_cuda: peak device memory \([0-9]*\) bytes$/\1/p' "$W/$name.cuda.err")
        if [ -z "$said" ] || [ -z "$took" ] || [ "$took" -lt "$said" ] || [ "$took" -gt $((said + 65536)) ]; then
            echo "$name: --report says ${said:-nothing} bytes of device memory, the model took ${took:-?}"; status=1
        else
            echo "$name: device memory as --report says ($said bytes; the stand-in saw $took)"
        fi
    fi
    # CUDA graphs: captured (no note that they are off) and replayed to the same bits as
    # the launches one by one
    if grep -q 'CUDA graphs off' "$W/$name.cuda.err"; then
        echo "$name: $(grep 'CUDA graphs off' "$W/$name.cuda.err")"; status=1
    elif ! cmp -s "$W/$name.cuda.txt" "$W/$name.eager.txt"; then
        echo "$name: CUDA graphs and launches one by one$([ $ON_HOST = 0 ] || echo ', blocks and threads in reverse order,') DIFFER (outputs in $W)"
        status=1
    fi
done
[ $status -ne 0 ] || rm -rf "$W"
exit $status
