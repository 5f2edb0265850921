#!/bin/sh
# bench/gpu/prepare.sh BUILD_DIR OUT_DIR - builds, here (CUDA toolkit, no GPU needed),
# everything bench/gpu/run.sh runs on the GPU machine, so that machine's few minutes go to
# running it. OUT_DIR gets, per model:
#   NAME_cmp      the CUDA build of tests/compiler/gpu/step_compare.c, and NAME.c1.txt,
#                 NAME.c5.txt, what the C target's build of it printed here after 1 and 5
#                 steps (run.sh compares), and NAME.fma1.txt, NAME.fma5.txt, the same
#                 from a C build with FMA contraction;
# per sample (mlp, lenet, resnet, resnet20_cifar):
#   NAME_timer    the CUDA train step timed by bench/step_timer.c;
#   NAME_prof     the same model instrumented by bench/gpu/kernel_profile.py;
#   NAME.arena    the CUDA plan's arena bytes (mlc --report);
#   NAME_tf32_timer  (lenet and the ResNets) the step timer of a build with --tf32;
#   NAME_bf16_timer  (mlp, lenet, resnet20_cifar) the step timer of a build with
#                 --precision bf16, whose CUDA-against-C comparison is NAME_bf16_cmp (the
#                 C side built with --precision bf16 too);
#   NAME_bf16d_timer (lenet, resnet20_cifar) the same with --conv-algo cudnn, compared
#                 as NAME_bf16d_cmp;
#   NAME_bf16i_timer (lenet, resnet20_cifar) the same with --conv-algo implicit (the
#                 implicit-GEMM tensor-core convolutions), compared as NAME_bf16i_cmp;
#   NAME_tf32i_timer, NAME_fp32i_timer (lenet, resnet20_cifar) --conv-algo implicit with
#                 --tf32, and in FP32; NAME_tf32d_timer, NAME_fp32d_timer the same with
#                 --conv-algo cudnn (linked with libcudnn);
#   mlp_lt_timer, lenet_lt_timer: the step timers of builds with --cublaslt (bias and
#                 ReLU in cuBLASLt's epilogue), mlp's compared as mlp_lt_cmp;
#   resnet20_cifar_bf16_prof, resnet20_cifar_bf16i_prof, resnet20_cifar_bf16d_prof: the bf16
#                 step profiled per node with im2col, implicit-GEMM and cuDNN
#                 convolutions, resnet20_cifar_fp32i_prof,
#                 resnet20_cifar_fp32d_prof: the FP32 step with implicit-GEMM and with cuDNN
#                 convolutions, and NAME.convs, their convolutions as --report lists them
#                 (run.sh's per-layer tables);
# per model of $batches: NAME_bs, the CUDA build of tests/compiler/gpu/batch_sizes.c
#                 (batch sizes 1 to 13, more graphs than the cache holds), and
#                 NAME.bs_c.txt, what the C build of it printed here;
# the CUDA trainers mlp_train, lenet_train, resnet_train and resnet_tf32_train, and
# data/ (Fashion-MNIST). The programs travel packed in OUT_DIR/bins.tar.xz (the device
# tool carries at most 64 MiB). The models compared are the samples, test models that
# cover the CUDA kernels the middle end emits (layers; poolrelu: the 2x2 max-pool backward
# in place; convepi: conv epilogues, grouped and strided convs; convimpl_epi_i: the
# epilogue steps the implicit-GEMM kernels run in their store, FP32; convimpl_epi_d: the
# same model's convolutions on cuDNN, bias, residual and ReLU in its fused call), resnet planned at
# its --mem-budget floor (recomputed convs and batch norms), as resnet_mb, and three
# samples under --precision bf16 (NAME_bf16).
set -eu
BUILD=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
find "$OUT" -maxdepth 1 -type f -delete
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLC=$BUILD/compiler/mlc
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
# The GPU machine's generation: built here, where there is no GPU to ask (H100/H200: sm_90).
CUDA_ARCH=${CUDA_ARCH:-sm_90}
BLAS=-I/usr/include/x86_64-linux-gnu/openblas-pthread
samples="mlp lenet resnet resnet20_cifar"
bf16="mlp_bf16 lenet_bf16 resnet20_cifar_bf16 lenet_bf16i resnet20_cifar_bf16i lenet_bf16d resnet20_cifar_bf16d"
# --cublaslt's builds (mlp's also compared with C)
lt="mlp_lt lenet_lt"
models="$samples layers poolrelu convepi convimpl_epi_i convimpl_epi_d resnet_mb $bf16 mlp_lt"
tf32="lenet resnet resnet20_cifar"
tf32i="lenet resnet20_cifar"
# the builds profiled per node: each convolution's time with either algorithm, in bf16
# (im2col, implicit) and in FP32 (implicit, cuDNN; their .cu files come from the tf32i loop)
convprof="resnet20_cifar_bf16 resnet20_cifar_bf16i resnet20_cifar_bf16d resnet20_cifar_fp32i resnet20_cifar_fp32d"
# models without Winograd layers on the C side, whose rounding 18 steps would spread
batches="mlp layers poolrelu convepi"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp /usr/lib/x86_64-linux-gnu/libz.a "$W/"
mdl() {
    case $1 in
    resnet_mb) echo "$ROOT/samples/resnet.mdl" ;;
    *_bf16) echo "$ROOT/samples/${1%_bf16}.mdl" ;;
    *_bf16i) echo "$ROOT/samples/${1%_bf16i}.mdl" ;;
    *_bf16d) echo "$ROOT/samples/${1%_bf16d}.mdl" ;;
    *_fp32i) echo "$ROOT/samples/${1%_fp32i}.mdl" ;;
    *_fp32d) echo "$ROOT/samples/${1%_fp32d}.mdl" ;;
    *_lt) echo "$ROOT/samples/${1%_lt}.mdl" ;;
    layers|poolrelu|convepi) echo "$ROOT/tests/compiler/data/$1.mdl" ;;
    convimpl_epi_[id]) echo "$ROOT/tests/compiler/data/convimpl_epi.mdl" ;;
    *) echo "$ROOT/samples/$1.mdl" ;;
    esac
}
api() { sed -n 's/^model \([A-Za-z0-9_]*\).*/\1_api/p' "$(mdl "$1")"; }

# resnet_mb*: planned at the floor that mlc reports for each target's plan; *_bf16:
# --precision bf16 on both targets; *_bf16i, *_bf16d: also --conv-algo implicit, cudnn on CUDA; *_i:
# --conv-algo implicit on CUDA; *_d: --conv-algo cudnn on CUDA
flags() { # MODEL TARGET
    case $1 in
    *_bf16) echo "--precision bf16" ;;
    *_bf16i) if [ "$2" = cuda ]; then echo "--precision bf16 --conv-algo implicit"; else echo "--precision bf16"; fi ;;
    *_bf16d) if [ "$2" = cuda ]; then echo "--precision bf16 --conv-algo cudnn"; else echo "--precision bf16"; fi ;;
    *_lt) if [ "$2" = cuda ]; then echo "--cublaslt"; fi ;;
    *_i | *_fp32i) if [ "$2" = cuda ]; then echo "--conv-algo implicit"; fi ;;
    *_d | *_fp32d) if [ "$2" = cuda ]; then echo "--conv-algo cudnn"; fi ;;
    resnet_mb*)
        f=$("$MLC" "$(mdl "$1")" --target "$2" --mem-budget 1K 2>&1 | sed -n 's/.*arena down to \([0-9]*\) bytes.*/\1/p')
        [ -n "$f" ] || { echo "prepare.sh: no --mem-budget floor in mlc's message" >&2; exit 1; }
        echo "--mem-budget $f" ;;
    esac
}

for m in $models; do
    # (assigned first: a failure inside $(...) in an argument list would not stop the script)
    fcuda=$(flags $m cuda) && fc=$(flags $m c) || exit 1
    # shellcheck disable=SC2086
    "$MLC" "$(mdl $m)" -o "$W/$m.cu" --target cuda $fcuda
    # shellcheck disable=SC2086
    "$MLC" "$(mdl $m)" -o "$W/$m.c" $fc
done
for m in $tf32; do
    "$MLC" "$(mdl $m)" -o "$W/${m}_tf32.cu" --target cuda --tf32
done
"$MLC" "$(mdl lenet_lt)" -o "$W/lenet_lt.cu" --target cuda --cublaslt
for m in $tf32i; do
    "$MLC" "$(mdl $m)" -o "$W/${m}_tf32i.cu" --target cuda --tf32 --conv-algo implicit
    "$MLC" "$(mdl $m)" -o "$W/${m}_fp32i.cu" --target cuda --conv-algo implicit
    "$MLC" "$(mdl $m)" -o "$W/${m}_tf32d.cu" --target cuda --tf32 --conv-algo cudnn
    "$MLC" "$(mdl $m)" -o "$W/${m}_fp32d.cu" --target cuda --conv-algo cudnn
done
for m in $samples; do
    python3 "$ROOT/bench/gpu/kernel_profile.py" "$W/$m.cu" -o "$W/${m}_prof.cu"
    "$MLC" "$(mdl $m)" --target cuda --report | sed -n 's/^totals: arena .*(\([0-9]*\) bytes.*/\1/p' | head -1 > "$OUT/$m.arena"
done
for m in $convprof; do
    python3 "$ROOT/bench/gpu/kernel_profile.py" "$W/$m.cu" -o "$W/${m}_prof.cu"
    fcuda=$(flags $m cuda) || exit 1
    # shellcheck disable=SC2086
    "$MLC" "$(mdl $m)" --target cuda $fcuda --report | grep '^  train ' > "$OUT/$m.convs"
done

# The .cu files compile slowly (ResNet: a minute each): two at a time.
objs="$models $(for m in $samples $convprof; do echo "${m}_prof"; done) $(for m in $tf32; do echo "${m}_tf32"; done)
$(for m in $tf32i; do echo "${m}_tf32i ${m}_fp32i ${m}_tf32d ${m}_fp32d"; done) lenet_lt"
set -- $objs
while [ $# -gt 0 ]; do
    "$NVCC" -O3 -std=c++17 -arch="$CUDA_ARCH" -c "$W/$1.cu" -I"$ROOT/runtime" -o "$W/$1.o" &
    if [ $# -gt 1 ]; then
        "$NVCC" -O3 -std=c++17 -arch="$CUDA_ARCH" -c "$W/$2.cu" -I"$ROOT/runtime" -o "$W/$2.o" &
        shift
    fi
    shift
    wait
done
# the CUDA kernel library (runtime/kernels/cuda/), for the same architecture
"$NVCC" -lib -O3 -std=c++17 -arch="$CUDA_ARCH" "$ROOT"/runtime/kernels/cuda/*.cu -o "$W/libmlckernels_cuda.a"
link() { # OBJ MAIN.c EXE API (MLC_STEP_TIMER_CUDA: step_timer.c without the C kernel library)
    # libcudnn for the --conv-algo cudnn builds alone (their objects name cudnnCreate)
    dnn=; if nm -u "$1" | grep -q cudnnCreate; then dnn=-lcudnn; fi
    "$NVCC" -O2 -arch="$CUDA_ARCH" "$1" "$2" -I"$ROOT/runtime" -DMLC_MODEL_API="$4" -DMLC_STEP_TIMER_CUDA -o "$3" \
        -L"$W" -lmlckernels_cuda -L"$BUILD/runtime" -lmlcrt $dnn -lcublasLt -lcublas "$W/libz.a" -lm -Xcompiler=-pthread
}
# What the C target prints after 1 and after 5 steps; and, as the yardstick for how far
# rounding alone moves 5 steps of training, the same C built with FMA contraction
# (different rounding, same arithmetic; the model's own loops only: the kernel library
# libmlckernels is compiled once, without contraction): NAME.c1.txt, NAME.c5.txt, NAME.fma1.txt, NAME.fma5.txt.
for m in $models; do
    link "$W/$m.o" "$ROOT/tests/compiler/gpu/step_compare.c" "$OUT/${m}_cmp" "$(api $m)"
    for v in c fma; do
        flags="-std=c11 -O2"
        [ $v = fma ] && flags="-std=gnu11 -O2 -march=native -ffp-contract=fast"
        # shellcheck disable=SC2086
        cc $flags -fopenmp -D_POSIX_C_SOURCE=200809L "$W/$m.c" "$ROOT/tests/compiler/gpu/step_compare.c" \
            -I"$ROOT/runtime" $BLAS -DMLC_MODEL_API="$(api $m)" -o "$W/${m}_$v" -L"$BUILD/runtime" -lmlckernels -lmlcrt -lopenblas -lz -lm
    done
    OMP_NUM_THREADS=2 "$W/${m}_c" 1 > "$OUT/$m.c1.txt"
    OMP_NUM_THREADS=2 "$W/${m}_c" 5 > "$OUT/$m.c5.txt"
    OMP_NUM_THREADS=2 "$W/${m}_fma" 1 > "$OUT/$m.fma1.txt"
    OMP_NUM_THREADS=2 "$W/${m}_fma" 5 > "$OUT/$m.fma5.txt"
done
for m in $batches; do
    link "$W/$m.o" "$ROOT/tests/compiler/gpu/batch_sizes.c" "$OUT/${m}_bs" "$(api $m)"
    cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L "$W/$m.c" "$ROOT/tests/compiler/gpu/batch_sizes.c" \
        -I"$ROOT/runtime" $BLAS -DMLC_MODEL_API="$(api $m)" -o "$W/${m}_bs_c" -L"$BUILD/runtime" -lmlckernels -lmlcrt \
        -lopenblas -lz -lm
    OMP_NUM_THREADS=2 "$W/${m}_bs_c" > "$OUT/$m.bs_c.txt"
done
for m in $samples; do
    link "$W/$m.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_timer" "$(api $m)"
done
for m in $samples $convprof; do
    link "$W/${m}_prof.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_prof" "$(api $m)"
done
for m in $tf32; do
    link "$W/${m}_tf32.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_tf32_timer" "$(api $m)"
done
for m in $tf32i; do
    link "$W/${m}_tf32i.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_tf32i_timer" "$(api $m)"
    link "$W/${m}_fp32i.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_fp32i_timer" "$(api $m)"
    link "$W/${m}_tf32d.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_tf32d_timer" "$(api $m)"
    link "$W/${m}_fp32d.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_fp32d_timer" "$(api $m)"
done
for m in $bf16 $lt; do
    link "$W/$m.o" "$ROOT/bench/step_timer.c" "$OUT/${m}_timer" "$(api $m)"
done
for m in mlp lenet resnet; do
    link "$W/$m.o" "$ROOT/templates/trainer_main.c" "$OUT/${m}_train" "$(api $m)"
done
link "$W/resnet_tf32.o" "$ROOT/templates/trainer_main.c" "$OUT/resnet_tf32_train" resnet_api
strip "$OUT"/*_cmp "$OUT"/*_bs "$OUT"/*_timer "$OUT"/*_prof "$OUT"/*_train
# The device tool carries at most 64 MiB, the checkout included. Each program holds its
# own copy of the kernel library (most of its 2-7 MB), which gzip's 32 KiB window cannot
# see twice: xz with a dictionary as large as all of them stores it about once (on
# 2026-12-07: 142 MB of programs, 34 MB as .tar.gz, 5.0 MB as .tar.xz).
(cd "$OUT" && tar cf - *_cmp *_bs *_timer *_prof *_train | xz -T2 -9 --lzma2=preset=9,dict=192MiB > bins.tar.xz &&
    rm -f *_cmp *_bs *_timer *_prof *_train)
mkdir -p "$OUT/data"
cp /usr/share/datasets/fashion-mnist/*.gz "$OUT/data/"
du -sh "$OUT"
echo "prepared in $OUT"
