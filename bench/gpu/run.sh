#!/bin/sh
# bench/gpu/run.sh DIR - on the GPU machine, over what bench/gpu/prepare.sh built into DIR:
# 1. each sample's CUDA train steps and tensors against the C target's (DIR/*.c.txt),
#    to a relative 2e-3 (cuBLAS and OpenBLAS sum in different orders);
# 2. the CUDA lenet trainer, 2 epochs of Fashion-MNIST;
# 3. train-step times: mlc's CUDA trainers and PyTorch eager on the same GPU, same models,
#    batch and optimizer (bench/torch_models.py --device cuda).
# Writes everything to stdout and to $OUT (when set).
set -u
DIR=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi -L
status=0
for m in mlp lenet resnet resnet20_cifar layers; do
    "$DIR/${m}_cmp" > "$DIR/$m.cuda.txt" || { echo "$m: the CUDA program failed"; status=1; continue; }
    if paste -d' ' "$DIR/$m.c.txt" "$DIR/$m.cuda.txt" | awk -v m="$m" '
        function bad(a, b) { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b); return d > 2e-3 * s + 1e-5 }
        { n = NF / 2; for (i = 1; i <= n; i++) if ($i ~ /^-?[0-9]/ && bad($i, $(i + n))) { print m ": " $0; fail = 1 } }
        END { exit fail }'; then
        echo "$m: C and CUDA agree ($(grep -c . "$DIR/$m.c.txt") values), losses: $(grep '^loss' "$DIR/$m.cuda.txt" | awk '{printf "%s ", $3}')"
    else
        echo "$m: MISMATCH"; status=1
    fi
done
echo "--- lenet, CUDA trainer, 2 epochs"
"$DIR/lenet_train" --data "$DIR/data" --epochs 2
echo "--- train-step times on this GPU (median of 100 steps after 10 warm-up)"
for m in mlp lenet resnet resnet20_cifar; do
    "$DIR/${m}_timer" --steps 100
    python3 "$ROOT/bench/torch_models.py" "$m" --device cuda --steps 100 $( [ $m = resnet20_cifar ] && echo --batch 128 )
done
exit $status
