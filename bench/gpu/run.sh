#!/bin/sh
# bench/gpu/run.sh DIR [PARTS] - on the GPU machine, over what bench/gpu/prepare.sh built into
# DIR, the parts listed in PARTS (default "1 2 3 4"):
# 1. each model's CUDA train steps, tensors and eval outputs against the C target's, to a
#    relative 2e-3 (cuBLAS and OpenBLAS sum in different orders), after 1 and after 5 steps,
#    beside the same count between two C builds whose only difference is rounding (FMA
#    contraction): training amplifies rounding, and Adam's first step moves each weight by
#    about lr * sign(gradient), so a gradient within rounding of zero can flip its update.
#    A model agrees when no line differs after 1 step, is within rounding when no more
#    differ than between the two C builds, and mismatches otherwise;
#    Also: each model's 5 steps replayed as CUDA graphs and launched one by one
#    (MLC_CUDA_GRAPHS=0) give the same bits; and batch sizes 1 to 13 in turn
#    (tests/compiler/gpu/batch_sizes.c, more graphs than the cache holds) against C, and
#    graphs against launches;
# 2. train-step times of the four samples: mlc's CUDA trainers (as CUDA graphs, and
#    launched one by one) against PyTorch eager on the same GPU (same model, batch, optimizer and random data; bench/torch_models.py), once
#    with PyTorch's defaults (cuDNN may use TF32), once in full FP32 as mlc computes and
#    once under autocast(bfloat16) with channels_last, and mlc built with --tf32 and with
#    --precision bf16 beside them, each (and FP32) also with --conv-algo implicit (lenet,
#    resnet20_cifar);
#    and the step's memory: mlc's arena against the caching allocator's peak in one step;
# 3. per-node GPU times, and the bandwidth of the largest fused elementwise kernels against
#    a device-to-device copy of the same bytes measured in the same process
#    (bench/gpu/kernel_profile.py); resnet20_cifar's bf16 step with im2col, implicit-GEMM
#    and cuDNN convolutions, and its FP32 step with implicit-GEMM and with cuDNN
#    convolutions, each convolution's time side by side;
# 4. the CUDA trainers on Fashion-MNIST: mlp and lenet with their samples' recipes, resnet
#    for 2 epochs, lenet's checkpoint evaluated again with `eval`.
# Everything goes to stdout; with $OUT set, also $OUT/gpu.log and the summary $OUT/gpu.md
# (bench/gpu/summary.py).
set -u
DIR=$(cd "$1" && pwd)
PARTS=${2:-1 2 3 4}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# the programs (prepare.sh packs them with xz); Python's tarfile where tar has no xz
if [ -f "$DIR/bins.tar.xz" ]; then
    tar xJf "$DIR/bins.tar.xz" -C "$DIR" 2>/dev/null ||
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$DIR/bins.tar.xz" "$DIR" ||
        { echo "run.sh: cannot unpack $DIR/bins.tar.xz" >&2; exit 1; }
fi
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# libcudnn for the --conv-algo cudnn builds: the toolkit's, else the one PyTorch's wheels
# bring (nvidia-cudnn-cu13)
if [ ! -e /usr/local/cuda/lib64/libcudnn.so.9 ]; then
    dnn=$(python3 -c 'import nvidia.cudnn as d; print(list(d.__path__)[0] + "/lib")' 2>/dev/null || true)
    [ -z "$dnn" ] || export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$dnn
fi
LOG=${OUT:-$DIR}/gpu.log
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
run() { "$@" 2>&1 | tee -a "$LOG"; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
say "device $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader)"
status=0

if part 1; then
say "=== 1. CUDA against C"
# ndiff A B: how many lines of two step_compare outputs differ by more than a relative $tol
# (tests/compiler/gpu/compare_steps.awk); the lines in compare.err
ndiff() {
    paste -d' ' "$1" "$2" | awk -v name=line -v tol="$tol" -f "$ROOT/tests/compiler/gpu/compare_steps.awk" \
        > "$DIR/compare.err" || :
    grep -c . "$DIR/compare.err" || :
}
for f in "$DIR"/*.c1.txt; do
    m=$(basename "$f" .c1.txt)
    # bf16's tolerance (docs/precision.md): half a bfloat16 step
    case $m in *_bf16 | *_bf16i | *_bf16d) tol=4e-3 ;; *) tol=2e-3 ;; esac
    if ! timeout 120 "$DIR/${m}_cmp" 1 > "$DIR/$m.cuda1.txt" 2>"$DIR/$m.cuda.err" ||
       ! timeout 120 "$DIR/${m}_cmp" 5 > "$DIR/$m.cuda5.txt" 2>>"$DIR/$m.cuda.err"; then
        say "compare $m FAILED: $(tail -3 "$DIR/$m.cuda.err")"; status=1; continue
    fi
    # the same steps launched one by one: the CUDA graphs' replays must give the same bits
    MLC_CUDA_GRAPHS=0 timeout 120 "$DIR/${m}_cmp" 5 > "$DIR/$m.eager5.txt" 2>>"$DIR/$m.cuda.err"
    if grep -q 'CUDA graphs off' "$DIR/$m.cuda.err" || ! cmp -s "$DIR/$m.cuda5.txt" "$DIR/$m.eager5.txt"; then
        say "graphs $m DIFFER from the launches one by one $(grep 'CUDA graphs off' "$DIR/$m.cuda.err")"; status=1
    else
        say "graphs $m same_bits"
    fi
    d1=$(ndiff "$DIR/$m.c1.txt" "$DIR/$m.cuda1.txt")
    sed "s/^/$m step 1 differs: /" "$DIR/compare.err" | head -8 >> "$LOG"
    d5=$(ndiff "$DIR/$m.c5.txt" "$DIR/$m.cuda5.txt")
    fma1=$(ndiff "$DIR/$m.c1.txt" "$DIR/$m.fma1.txt")
    fma5=$(ndiff "$DIR/$m.c5.txt" "$DIR/$m.fma5.txt")
    lines=$(grep -c . "$DIR/$m.c5.txt")
    losses=$(grep '^loss' "$DIR/$m.cuda5.txt" | awk '{printf "%s,", $3}')
    closs=$(grep '^loss' "$DIR/$m.c5.txt" | awk '{printf "%s,", $3}')
    if [ "$d1" = 0 ]; then verdict=agree
    elif [ "$d1" -le "$fma1" ]; then verdict=within_rounding
    else verdict=MISMATCH; status=1
    fi
    say "compare $m $verdict lines=$lines step1_differ=$d1 fma_step1_differ=$fma1 step5_differ=$d5 fma_step5_differ=$fma5 losses=$losses c_losses=$closs"
done
# batch sizes 1 to 13 (tests/compiler/gpu/batch_sizes.c): against the C build, and the
# CUDA graphs against the launches one by one, bit for bit
tol=2e-3
for f in "$DIR"/*.bs_c.txt; do
    [ -f "$f" ] || continue
    m=$(basename "$f" .bs_c.txt)
    if ! timeout 120 "$DIR/${m}_bs" > "$DIR/$m.bs_cuda.txt" 2>"$DIR/$m.bs.err" ||
       ! MLC_CUDA_GRAPHS=0 timeout 120 "$DIR/${m}_bs" > "$DIR/$m.bs_eager.txt" 2>>"$DIR/$m.bs.err"; then
        say "batches $m FAILED: $(tail -3 "$DIR/$m.bs.err")"; status=1; continue
    fi
    d=$(ndiff "$f" "$DIR/$m.bs_cuda.txt")
    sed "s/^/$m batches differ: /" "$DIR/compare.err" | head -8 >> "$LOG"
    same=same_bits
    cmp -s "$DIR/$m.bs_cuda.txt" "$DIR/$m.bs_eager.txt" || { same=GRAPHS_DIFFER; status=1; }
    [ "$d" = 0 ] || status=1
    say "batches $m lines_differ=$d graphs_vs_launches=$same"
done
fi



if part 2; then
say "=== 2. train-step times and memory"
for m in mlp lenet resnet resnet20_cifar; do
    line=$(timeout 120 "$DIR/${m}_timer" --steps 200 --warmup 20)
    say "mlc $line arena_bytes=$(cat "$DIR/$m.arena")"
    say "mlc_nographs $(MLC_CUDA_GRAPHS=0 timeout 120 "$DIR/${m}_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_tf32_timer" ] && say "mlc_tf32 $(timeout 120 "$DIR/${m}_tf32_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_bf16_timer" ] && say "mlc_bf16 $(timeout 120 "$DIR/${m}_bf16_timer" --steps 200 --warmup 20)"
    # --conv-algo implicit against im2col (the rows beside), for conv-algo auto's rule
    [ -x "$DIR/${m}_bf16i_timer" ] && say "mlc_bf16i $(timeout 120 "$DIR/${m}_bf16i_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_bf16d_timer" ] && say "mlc_bf16d $(timeout 120 "$DIR/${m}_bf16d_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_tf32i_timer" ] && say "mlc_tf32i $(timeout 120 "$DIR/${m}_tf32i_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_fp32i_timer" ] && say "mlc_fp32i $(timeout 120 "$DIR/${m}_fp32i_timer" --steps 200 --warmup 20)"
    # --conv-algo cudnn against implicit and im2col (the rows beside)
    [ -x "$DIR/${m}_tf32d_timer" ] && say "mlc_tf32d $(timeout 120 "$DIR/${m}_tf32d_timer" --steps 200 --warmup 20)"
    [ -x "$DIR/${m}_fp32d_timer" ] && say "mlc_fp32d $(timeout 120 "$DIR/${m}_fp32d_timer" --steps 200 --warmup 20)"
    # --cublaslt against cuBLAS and an epilogue kernel (the first row), for its default
    [ -x "$DIR/${m}_lt_timer" ] && say "mlc_lt $(timeout 120 "$DIR/${m}_lt_timer" --steps 200 --warmup 20)"
    batch=$(echo "$line" | field batch)
    set -- --optimizer "$(echo "$line" | field opt)" --lr "$(echo "$line" | field lr)" \
        --momentum "$(echo "$line" | field momentum)" --betas "$(echo "$line" | field beta1)" "$(echo "$line" | field beta2)" \
        --eps "$(echo "$line" | field eps)" --weight-decay "$(echo "$line" | field wd)"
    for tf in "" --no-tf32 --bf16; do
        timeout 180 python3 "$ROOT/bench/torch_models.py" "$m" --device cuda --batch "$batch" --steps 200 --warmup 20 \
            --memory $tf "$@" 2>"$DIR/torch.err" | sed 's/^/torch /' | tee -a "$LOG" || { tail -5 "$DIR/torch.err" | tee -a "$LOG"; status=1; }
    done
done

fi

if part 3; then
say "=== 3. per-node GPU time and elementwise bandwidth"
for m in lenet resnet resnet20_cifar mlp resnet20_cifar_bf16 resnet20_cifar_bf16i resnet20_cifar_bf16d resnet20_cifar_fp32i \
    resnet20_cifar_fp32d; do
    [ -x "$DIR/${m}_prof" ] || continue
    say "profile $m"
    timeout 120 "$DIR/${m}_prof" --steps 23 --warmup 0 2>&1 | sed "s/^/$m /" >> "$LOG" || status=1
    # the convolutions as mlc --report lists them, for the per-layer table (summary.py)
    [ -f "$DIR/$m.convs" ] && sed "s/^/$m convs/" "$DIR/$m.convs" >> "$LOG"
    grep "^$m \(kernel\|copy\|profile\)" "$LOG" | tail -14
done

fi

if part 4; then
say "=== 4. CUDA trainers on Fashion-MNIST"
say "--- mlp (the sample's recipe)"
run timeout 150 "$DIR/mlp_train" --data "$DIR/data"
say "--- lenet (the sample's recipe), checkpoint, eval"
run timeout 200 "$DIR/lenet_train" --data "$DIR/data" --save "$DIR/lenet.ckpt"
run timeout 60 "$DIR/lenet_train" eval "$DIR/lenet.ckpt" --data "$DIR/data"
say "--- resnet (2 epochs)"
run timeout 200 "$DIR/resnet_train" --data "$DIR/data" --epochs 2
say "--- resnet built with --tf32 (2 epochs)"
run timeout 200 "$DIR/resnet_tf32_train" --data "$DIR/data" --epochs 2
fi
[ -n "${OUT:-}" ] && python3 "$ROOT/bench/gpu/summary.py" "$LOG" > "$OUT/gpu.md" && cat "$OUT/gpu.md"
say "status $status"
exit $status
