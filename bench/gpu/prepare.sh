#!/bin/sh
# bench/gpu/prepare.sh BUILD_DIR OUT_DIR - builds, here (CUDA toolkit, no GPU needed),
# everything bench/gpu/run.sh runs on the GPU machine, so that machine's few minutes go to
# running it. OUT_DIR gets, per model:
#   NAME_cmp      the CUDA build of tests/compiler/gpu/step_compare.c, and NAME.c.txt, what
#                 the C target's build of it printed here (run.sh compares the two);
# per sample (mlp, lenet, resnet, resnet20_cifar):
#   NAME_timer    the CUDA train step timed by bench/step_timer.c;
#   NAME_prof     the same model instrumented by bench/gpu/kernel_profile.py;
#   NAME.arena    the CUDA plan's arena bytes (mlc --report);
# the CUDA trainers mlp_train, lenet_train and resnet_train (templates/trainer_main.c), and
# data/ (Fashion-MNIST). The programs travel packed in OUT_DIR/bins.tar.gz (the device
# tool carries at most 64 MiB). The models compared are the samples, test models that
# cover the CUDA kernels the middle end emits (layers; poolrelu: the 2x2 max-pool backward
# in place; convepi: conv epilogues, grouped and strided convs), resnet planned at its
# --mem-budget floor (recomputed convs and batch norms), as resnet_mb, and the ResNets with
# SGD in place of Adam (NAME_sgd; why: below).
set -eu
BUILD=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
find "$OUT" -maxdepth 1 -type f -delete
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLC=$BUILD/compiler/mlc
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
BLAS=-I/usr/include/x86_64-linux-gnu/openblas-pthread
samples="mlp lenet resnet resnet20_cifar"
models="$samples layers poolrelu convepi resnet_mb resnet_sgd resnet20_cifar_sgd resnet_mb_sgd"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp /usr/lib/x86_64-linux-gnu/libz.a "$W/"
mdl() {
    case $1 in
    *_sgd) echo "$W/$1.mdl" ;;
    resnet_mb) echo "$ROOT/samples/resnet.mdl" ;;
    layers|poolrelu|convepi) echo "$ROOT/tests/compiler/data/$1.mdl" ;;
    *) echo "$ROOT/samples/$1.mdl" ;;
    esac
}
# Adam's first steps move each weight by about lr * sign(gradient), so where a gradient is
# within rounding of zero the two targets can step opposite ways: the ResNets' weights then
# differ by more than the comparison allows although their losses agree. The _sgd variants,
# whose updates are proportional to the gradients, compare the gradients themselves.
for m in resnet resnet20_cifar resnet_mb; do
    sed 's/optimizer *= *adam([^)]*)/optimizer = sgd(lr = 0.05, momentum = 0.9)/' "$(mdl $m)" > "$W/${m}_sgd.mdl"
done
api() { sed -n 's/^model \([A-Za-z0-9_]*\).*/\1_api/p' "$(mdl "$1")"; }

# resnet_mb*: planned at the floor that mlc reports for each target's plan
flags() { # MODEL TARGET
    case $1 in
    resnet_mb*)
        f=$("$MLC" "$(mdl "$1")" --target "$2" --mem-budget 1K 2>&1 | sed -n 's/.*arena down to \([0-9]*\) bytes.*/\1/p')
        [ -n "$f" ] || { echo "prepare.sh: no --mem-budget floor in mlc's message" >&2; exit 1; }
        echo "--mem-budget $f" ;;
    esac
}

for m in $models; do
    # shellcheck disable=SC2046
    "$MLC" "$(mdl $m)" -o "$W/$m.cu" --target cuda $(flags $m cuda)
    # shellcheck disable=SC2046
    "$MLC" "$(mdl $m)" -o "$W/$m.c" $(flags $m c)
done
for m in $samples; do
    python3 "$ROOT/bench/gpu/kernel_profile.py" "$W/$m.cu" -o "$W/${m}_prof.cu"
    "$MLC" "$(mdl $m)" --target cuda --report | sed -n 's/^totals: arena .*(\([0-9]*\) bytes.*/\1/p' | head -1 > "$OUT/$m.arena"
done

# The .cu files compile slowly (ResNet: a minute each): two at a time.
objs="$models $(for m in $samples; do echo "${m}_prof"; done)"
set -- $objs
while [ $# -gt 0 ]; do
    "$NVCC" -O3 -std=c++17 -arch=sm_90 -c "$W/$1.cu" -I"$ROOT/runtime" -o "$W/$1.o" &
    if [ $# -gt 1 ]; then
        "$NVCC" -O3 -std=c++17 -arch=sm_90 -c "$W/$2.cu" -I"$ROOT/runtime" -o "$W/$2.o" &
        shift
    fi
    shift
    wait
done
link() { # OBJ MAIN.c EXE API
    "$NVCC" -O2 -arch=sm_90 "$1" "$2" -I"$ROOT/runtime" -DMLC_MODEL_API="$4" -o "$3" \
        -L"$BUILD/runtime" -lmlcrt -lcublas "$W/libz.a" -lm -Xcompiler=-pthread
}
for m in $models; do
    link "$W/$m.o" "$ROOT/tests/compiler/gpu/step_compare.c" "$OUT/${m}_cmp" "$(api $m)"
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$W/$m.c" "$ROOT/tests/compiler/gpu/step_compare.c" \
        -I"$ROOT/runtime" $BLAS -DMLC_MODEL_API="$(api $m)" -o "$W/${m}_cmp_c" -L"$BUILD/runtime" -lmlcrt -lopenblas -lz -lm
    OMP_NUM_THREADS=2 "$W/${m}_cmp_c" > "$OUT/$m.c.txt"
done
for m in $samples; do
    link "$W/$m.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_timer" "$(api $m)"
    link "$W/${m}_prof.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_prof" "$(api $m)"
done
for m in mlp lenet resnet; do
    link "$W/$m.o" "$ROOT/templates/trainer_main.c" "$OUT/${m}_train" "$(api $m)"
done
strip "$OUT"/*_cmp "$OUT"/*_timer "$OUT"/*_prof "$OUT"/*_train
# The device tool carries at most 64 MiB; the programs shrink about 5x in a tarball.
(cd "$OUT" && tar czf bins.tar.gz *_cmp *_timer *_prof *_train && rm -f *_cmp *_timer *_prof *_train)
mkdir -p "$OUT/data"
cp /usr/share/datasets/fashion-mnist/*.gz "$OUT/data/"
du -sh "$OUT"
echo "prepared in $OUT"
