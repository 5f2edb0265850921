#!/bin/sh
# bench/gpu/prepare.sh BUILD_DIR OUT_DIR - builds, here (CUDA toolkit, no GPU), everything
# bench/gpu/run.sh runs on a machine with a GPU, so that machine's time goes to running:
# for each sample, the CUDA step-compare program (tests/compiler/gpu/step_compare.c), the
# CUDA step timer (bench/step_timer.c), the CUDA lenet trainer; and, run here, the C
# step-compare outputs the CUDA ones are compared with. OUT_DIR also gets libz.a (the
# GPU machine may lack zlib's development files) and must hold data/ (Fashion-MNIST).
set -eu
BUILD=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLC=$BUILD/compiler/mlc
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
BLAS=-I/usr/include/x86_64-linux-gnu/openblas-pthread
cp /usr/lib/x86_64-linux-gnu/libz.a "$OUT/"
models="mlp lenet resnet resnet20_cifar layers"
mdl() { [ "$1" = layers ] && echo "$ROOT/tests/compiler/data/layers.mdl" || echo "$ROOT/samples/$1.mdl"; }
for m in $models; do
    "$MLC" "$(mdl $m)" -o "$OUT/$m.cu" --target cuda
    "$MLC" "$(mdl $m)" -o "$OUT/$m.c"
done
# The .cu files compile slowly (ResNet: a minute each); two at a time.
for m in $models; do
    "$NVCC" -O3 -std=c++17 -arch=sm_90 -c "$OUT/$m.cu" -I"$ROOT/runtime" -I"$OUT" -o "$OUT/$m.o" &
    [ "$m" = lenet ] || [ "$m" = resnet20_cifar ] && wait
done
wait
link() { # link OBJ MAIN.c EXE API
    "$NVCC" -O2 -arch=sm_90 "$1" "$2" -I"$ROOT/runtime" -DMLC_MODEL_API="$4" -o "$3" \
        -L"$BUILD/runtime" -lmlcrt -lcublas "$OUT/libz.a" -lm
}
for m in $models; do
    link "$OUT/$m.o" "$ROOT/tests/compiler/gpu/step_compare.c" "$OUT/${m}_cmp" "${m}_api"
    [ "$m" = layers ] || link "$OUT/$m.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_timer" "${m}_api"
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$OUT/$m.c" "$ROOT/tests/compiler/gpu/step_compare.c" \
        -I"$ROOT/runtime" $BLAS -DMLC_MODEL_API="${m}_api" -o "$OUT/${m}_cmp_c" -L"$BUILD/runtime" -lmlcrt -lopenblas -lz -lm
    "$OUT/${m}_cmp_c" > "$OUT/$m.c.txt"
done
link "$OUT/lenet.o" "$ROOT/templates/trainer_main.c" "$OUT/lenet_train" lenet_api
rm -f "$OUT"/*.o "$OUT"/*_cmp_c
echo "prepared in $OUT"
