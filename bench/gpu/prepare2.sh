#!/bin/sh
# bench/gpu/prepare2.sh BUILD_DIR OUT_DIR - the second GPU check, built here: the CUDA
# lenet trainer (the sample's AdamW + cosine + augmentation recipe, trained and then
# evaluated from its checkpoint there), and the ResNet step-compare / timer programs.
set -eu
BUILD=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLC=$BUILD/compiler/mlc
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
cp /usr/lib/x86_64-linux-gnu/libz.a "$OUT/"
link() { # OBJ MAIN.c EXE API
    "$NVCC" -O2 -arch=sm_90 "$1" "$2" -I"$ROOT/runtime" -DMLC_MODEL_API="$4" -o "$3" \
        -L"$BUILD/runtime" -lmlcrt -lcublas "$OUT/libz.a" -lm -Xcompiler=-pthread
}
for m in lenet resnet; do
    "$MLC" "$ROOT/samples/$m.mdl" -o "$OUT/$m.cu" --target cuda
    "$NVCC" -O3 -std=c++17 -arch=sm_90 -c "$OUT/$m.cu" -I"$ROOT/runtime" -I"$OUT" -o "$OUT/$m.o"
done
link "$OUT/lenet.o" "$ROOT/templates/trainer_main.c" "$OUT/lenet_train" lenet_api
link "$OUT/resnet.o" "$ROOT/tests/compiler/gpu/step_compare.c" "$OUT/resnet_cmp" resnet_api
link "$OUT/resnet.o" "$ROOT/bench/step_timer.c" "$OUT/resnet_timer" resnet_api
"$MLC" "$ROOT/samples/resnet.mdl" -o "$OUT/resnet.c"
cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$OUT/resnet.c" "$ROOT/tests/compiler/gpu/step_compare.c" \
    -I"$ROOT/runtime" -I/usr/include/x86_64-linux-gnu/openblas-pthread -DMLC_MODEL_API=resnet_api \
    -o "$OUT/resnet_cmp_c" -L"$BUILD/runtime" -lmlcrt -lopenblas -lz -lm -pthread
"$OUT/resnet_cmp_c" 1 > "$OUT/resnet1.c.txt"
rm -f "$OUT"/*.o "$OUT"/*.cu "$OUT"/*.c "$OUT"/*.h "$OUT/resnet_cmp_c" "$OUT/libz.a"
strip "$OUT/lenet_train" "$OUT/resnet_cmp" "$OUT/resnet_timer"
echo "prepared in $OUT"
