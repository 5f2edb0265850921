#!/bin/sh
# bench/gpu/run2.sh DIR - on the GPU machine, over what bench/gpu/prepare2.sh built:
# lenet's full recipe (10 epochs, AdamW + cosine + augmentation) with a checkpoint, then
# `eval` of that checkpoint; one ResNet train step against the C target's; ResNet step time.
set -u
DIR=$(cd "$1" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi -L
echo "--- lenet, CUDA trainer, the sample's recipe"
"$DIR/lenet_train" --data "$DIR/data" --save "$DIR/lenet.ckpt"
echo "--- eval of the checkpoint"
"$DIR/lenet_train" eval "$DIR/lenet.ckpt" --data "$DIR/data"
echo "--- resnet: one train step, CUDA vs C (relative 2e-3)"
"$DIR/resnet_cmp" 1 > "$DIR/resnet1.cuda.txt"
paste -d' ' "$DIR/resnet1.c.txt" "$DIR/resnet1.cuda.txt" | awk '
    function bad(a, b) { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a) + (b < 0 ? -b : b); return d > 2e-3 * s + 1e-5 }
    { n = NF / 2; for (i = 1; i <= n; i++) if ($i ~ /^-?[0-9]/ && bad($i, $(i + n))) { print "differs: " $0; fail++ } }
    END { print (fail ? fail " lines differ" : "all " NR " lines agree") }'
grep '^loss' "$DIR/resnet1.cuda.txt"
echo "--- resnet step time (CUDA)"
"$DIR/resnet_timer" --steps 50
