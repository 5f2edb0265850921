#!/bin/sh
# tests/bench/kernel_profile_check.sh MLC SOURCE_ROOT - bench/gpu/kernel_profile.py reads the
# generated CUDA's launch functions by their nodes' comments, and the GPU script needs it
# where no test would otherwise run it: on mlp (GEMMs, fused kernels, one multi-tensor Adam
# update) and resnet (convolutions, batch norm) it must mark every node region of the train
# step in order, pause before the staging copies and end the step; with nvcc, mlp's
# instrumented file must compile.
set -eu
MLC=$1 ROOT=$2
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for m in mlp resnet; do
    "$MLC" "$ROOT/samples/$m.mdl" --target cuda -o "$W/$m.cu"
    python3 "$ROOT/bench/gpu/kernel_profile.py" "$W/$m.cu" -o "$W/${m}_prof.cu"
    marks=$(grep -c '^    prof_mark([0-9]' "$W/${m}_prof.cu")
    last=$(grep -o '^    prof_mark([0-9][0-9]*' "$W/${m}_prof.cu" | tail -1 | tr -dc 0-9)
    [ "$marks" -gt 5 ] && [ "$last" -eq $((marks - 1)) ] || { echo "$m: $marks marks, the last $last"; exit 1; }
    [ "$(grep -c '^    prof_pause(stream);' "$W/${m}_prof.cu")" = 1 ] || { echo "$m: no single prof_pause"; exit 1; }
    grep -q '^    prof_mark(-1, stream, 0);' "$W/${m}_prof.cu" || { echo "$m: the step never ends"; exit 1; }
    echo "$m: $marks node regions marked"
done
if [ -x /usr/local/cuda/bin/nvcc ]; then
    /usr/local/cuda/bin/nvcc -std=c++17 -arch=sm_90 -c "$W/mlp_prof.cu" -I"$ROOT/runtime" -o "$W/mlp_prof.o"
    echo "mlp: the instrumented file compiles with nvcc"
fi
