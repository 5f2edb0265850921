#!/bin/sh
# tests/compiler/gpu/trainer_on_host.sh BUILD_DIR - the CUDA trainers of mlp and lenet, built
# by host_cuda/build.sh to run on the CPU, against the C trainers `mlc build` makes, on a
# slice of Fashion-MNIST: the same epoch rows (loss, train, validation and test accuracy),
# within what the GEMMs' summation orders move; a checkpoint the CUDA trainer saved, read
# by both (`eval`); and the CUDA trainer resumed after its first epoch ends as the run
# without the stop does, bit for bit. So the trainer's whole path over a CUDA model runs:
# train steps replayed as CUDA graphs, the epoch's short last batch (a graph of its own),
# evaluation graphs, outputs for the accuracy, checkpoints, the step count restored into
# Adam's scalars; the same under --precision bf16, to a sample's tolerance; and the
# data-parallel CUDA trainers (--mpi) under mpirun, below. Exit 77
# (skipped) without the dataset; 1 on a difference.
set -eu
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $DATA: skipped"; exit 77; }
W=$(mktemp -d)
status=0
# rows A B [REL ABS]: what two trainers printed, their times and rates removed, agree
# within REL of each value (relative; 2e-3) plus ABS (0.0025: an accuracy's last digit, a
# sample or so of 500)
rows() {
    sed 's/ *time [0-9.]*s *[0-9]* samples\/s//' "$1" > "$1.rows"
    sed 's/ *time [0-9.]*s *[0-9]* samples\/s//' "$2" > "$2.rows"
    paste -d'\t' "$1.rows" "$2.rows" | awk -F'\t' -v rel="${3:-2e-3}" -v abs_="${4:-2.5e-3}" '
        function close_(a, b) { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b); return d <= rel * s + abs_ }
        { na = split($1, a, " "); nb = split($2, b, " ")
          if (na != nb) { print "differ: " $0; bad = 1; next }
          for (i = 1; i <= na; i++)
              if (a[i] ~ /^-?[0-9.]+$/ ? !close_(a[i], b[i]) : a[i] != b[i]) { print "differ: " $0; bad = 1; next } }
        END { exit bad }'
}
# Under --precision bf16 the CUDA trainers (rounded tensors stored as bfloat16, products on
# bf16 operands) are held to the C trainers (the same rounding, emulated) more loosely: a
# value on a rounding boundary may round the other way when only the order of a sum
# differs, and training carries that on, so an accuracy may be a sample away (0.0125: one
# of the 100 validation images, two of lenet's 200 test images). Resumed, they too end as
# without the stop, bit for bit.
for prec in fp32 bf16; do
    p='' tol='' what=''
    [ $prec = fp32 ] || p=_bf16 tol="2e-3 0.0125" what="--precision bf16: "
    for m in mlp lenet; do
        case $m in
        mlp) flags="--train-limit 1000 --val 200 --test-limit 500 --epochs 2 --batch 64" epoch1=13 ;; # 800 samples
        *) flags="--train-limit 400 --val 100 --test-limit 200 --epochs 2 --batch 64" epoch1=5 ;;   # 300
        esac
        "$BUILD/compiler/mlc" build "$ROOT/samples/$m.mdl" --precision $prec -o "$W/${m}_c$p" > /dev/null
        "$BUILD/compiler/mlc" "$ROOT/samples/$m.mdl" --target cuda --precision $prec -o "$W/$m$p.cu"
        [ $prec = fp32 ] || grep -q 'mlc_bf16 \*const t' "$W/$m$p.cu" || { echo "$m: nothing stored as bfloat16"; status=1; }
        sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/$m$p.cu" \
            "$ROOT/templates/trainer_main.c" "${m}_api" "$W/${m}_cuda$p"
        # shellcheck disable=SC2086
        "$W/${m}_c$p" --data "$DATA" $flags --threads 1 > "$W/$m$p.c.txt" 2>&1
        # shellcheck disable=SC2086
        "$W/${m}_cuda$p" --data "$DATA" $flags --save "$W/$m$p.ckpt" > "$W/$m$p.cuda.txt" 2>&1
        # shellcheck disable=SC2086
        if [ "$(grep -c '^epoch' "$W/$m$p.cuda.txt")" = 2 ] && rows "$W/$m$p.c.txt" "$W/$m$p.cuda.txt" $tol; then
            echo "$m: $what""the CUDA trainer's rows agree with the C trainer's (2 epochs)"
        else
            echo "$m: $what""the CUDA and C trainers DIFFER"; status=1
        fi
        "$W/${m}_c$p" eval "$W/$m$p.ckpt" --data "$DATA" --test-limit 500 > "$W/$m$p.eval_c.txt" 2>&1
        "$W/${m}_cuda$p" eval "$W/$m$p.ckpt" --data "$DATA" --test-limit 500 > "$W/$m$p.eval_cuda.txt" 2>&1
        # shellcheck disable=SC2086
        if rows "$W/$m$p.eval_c.txt" "$W/$m$p.eval_cuda.txt" $tol; then
            echo "$m: $what""the CUDA trainer's checkpoint evaluates alike in both ($(grep 'test accuracy' "$W/$m$p.eval_cuda.txt"))"
        else
            echo "$m: $what""the checkpoint's evaluations DIFFER"; status=1
        fi
        # stopped after epoch 1 (--max-steps: the schedule still spans both epochs), resumed:
        # the same last row as the run without the stop
        # shellcheck disable=SC2086
        "$W/${m}_cuda$p" --data "$DATA" $flags --max-steps $epoch1 --save "$W/$m$p.e1.ckpt" > /dev/null 2>&1
        # shellcheck disable=SC2086
        "$W/${m}_cuda$p" --data "$DATA" $flags --resume "$W/$m$p.e1.ckpt" > "$W/$m$p.resumed.txt" 2>&1
        a=$(grep '^epoch 2/2' "$W/$m$p.cuda.txt" | sed 's/ *time .*//')
        b=$(grep '^epoch 2/2' "$W/$m$p.resumed.txt" | sed 's/ *time .*//')
        if [ -n "$a" ] && [ "$a" = "$b" ]; then
            echo "$m: $what""resumed after epoch 1, the CUDA trainer ends as without the stop"
        else
            echo "$m: $what""resumed run DIFFERS: '$a' against '$b'"; status=1
        fi
    done
done
# Data parallel: the CUDA trainers built as `mlc build --target cuda --mpi` builds them
# (host_cuda/build.sh with MPI=1: templates/dist_nccl.c on the stand-in's NCCL over MPI),
# two ranks under mpirun, against the C trainer's two ranks: with a GPU each
# (MLC_HOST_GPUS=2), so the gradients are summed by NCCL in buckets as the backward ends
# them, and with one GPU for both, so they go through host memory over MPI. The models
# train with SGD here: Adam's step does not change with the gradient's scale, so a sum
# where the mean belongs would not show. bnnet adds --sync-bn: batch norm's figures summed
# over the ranks in the forward (host-staged on CUDA, docs/distributed.md)
if command -v mpirun > /dev/null && [ -f "$BUILD/runtime/libmlcrt_mpi.a" ]; then
    mpir="mpirun --oversubscribe --allow-run-as-root --bind-to none -np 2"
    cat > "$W/bnnet.mdl" << 'EOF'
model bnnet
input image: f32[B, 784]
input label: i32[B]
x = reshape(image, [B, 1, 28, 28])
x = max_pool2d(relu(batch_norm(conv2d(x, 8, 3, pad = 1, bias = false, name = "c1"), name = "bn1")), 2)
logits = dense(reshape(x, [B, 1568]), 10, name = "fc")
output logits
loss cross_entropy(logits, label)
train {
    batch     = 64
    optimizer = adam(lr = 1e-3)
}
EOF
    for m in mlp lenet bnnet; do
        src=$ROOT/samples/$m.mdl
        case $m in
        mlp) flags="--train-limit 1000 --val 200 --test-limit 500 --epochs 2 --batch 64" ;;
        lenet) flags="--train-limit 400 --val 100 --test-limit 200 --epochs 2 --batch 64" ;;
        *) flags="--train-limit 400 --val 100 --test-limit 200 --epochs 2 --batch 64 --sync-bn" src=$W/bnnet.mdl ;;
        esac
        sed 's/^\( *optimizer *=\).*/\1 sgd(lr = 0.02, momentum = 0.9)/' "$src" > "$W/${m}_sgd.mdl"
        "$BUILD/compiler/mlc" build "$W/${m}_sgd.mdl" --mpi -o "$W/${m}_c_mpi" > /dev/null
        "$BUILD/compiler/mlc" "$W/${m}_sgd.mdl" --target cuda -o "$W/${m}_sgd.cu"
        MPI=1 sh "$ROOT/tests/compiler/gpu/host_cuda/build.sh" "$ROOT" "$BUILD" "$W" "$W/${m}_sgd.cu" \
            "$ROOT/templates/trainer_main.c" "${m}_api" "$W/${m}_cuda_mpi"
        # shellcheck disable=SC2086
        $mpir "$W/${m}_c_mpi" --data "$DATA" $flags --threads 1 --progress never > "$W/$m.mpi_c.txt" 2>&1
        for gpus in 2 1; do
            # shellcheck disable=SC2086
            MLC_HOST_GPUS=$gpus MLC_HOST_NCCL_COUNT=1 $mpir -x MLC_HOST_GPUS -x MLC_HOST_NCCL_COUNT \
                "$W/${m}_cuda_mpi" --data "$DATA" $flags --progress never > "$W/$m.mpi_$gpus.txt" 2>&1 || :
            grep -E '^(epoch|test accuracy)' "$W/$m.mpi_c.txt" > "$W/$m.mpi_c.rows_in"
            grep -E '^(epoch|test accuracy)' "$W/$m.mpi_$gpus.txt" > "$W/$m.mpi_$gpus.rows_in"
            nccl=$(grep -c '^host_nccl: rank [01]: [1-9][0-9]* sums' "$W/$m.mpi_$gpus.txt" || :)
            path="NCCL (a GPU each)" want=2
            [ $gpus = 2 ] || path="MPI through host memory (one GPU shared)" want=0
            if [ "$nccl" != $want ]; then
                echo "$m: 2 ranks, $gpus GPUs: $nccl ranks summed over NCCL, not $want"; status=1
            elif [ "$(grep -c '^epoch' "$W/$m.mpi_$gpus.rows_in")" != 2 ]; then
                echo "$m: 2 ranks over $path: no 2 epoch rows"; status=1
            elif rows "$W/$m.mpi_c.rows_in" "$W/$m.mpi_$gpus.rows_in"; then
                echo "$m: 2 ranks, the gradients summed over $path: the C trainer's rows"
            else
                echo "$m: 2 ranks over $path: the CUDA and C trainers DIFFER"; status=1
            fi
        done
    done
else
    echo "no mpirun or libmlcrt_mpi: the data-parallel CUDA trainers not run"
fi
[ $status -ne 0 ] || rm -rf "$W"
[ $status -eq 0 ] || echo "outputs in $W"
exit $status
