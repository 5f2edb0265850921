#!/bin/sh
# tests/compiler/gpu/host_cuda/build.sh ROOT BUILD W MODEL.cu MAIN.c API EXE - builds a
# generated .cu with a C main (step_compare.c, templates/trainer_main.c) into a program that
# runs on the CPU: each CUDA source has `kernel<<<cfg>>>(args)` rewritten to
# `mlc_host_launch(kernel, cfg)(args)` (cuda_runtime.h here) and is compiled by the host C++
# compiler against this directory's stand-ins for the CUDA runtime and cuBLAS. The kernel
# library (runtime/kernels/cuda/) and the stand-in are compiled once per W.
set -eu
ROOT=$1 BUILD=$2 W=$3 MODEL=$4 MAIN=$5 API=$6 EXE=$7
HERE=$ROOT/tests/compiler/gpu/host_cuda
for src in "$MODEL" "$ROOT"/runtime/kernels/cuda/*.cu "$HERE/host_cuda.cpp"; do
    obj="$W/host_lib_$(basename "$src" | sed 's/\.[a-z]*$//').o"
    [ "$src" != "$MODEL" ] || obj="$W/host_model.o"
    [ "$obj" = "$W/host_model.o" ] || [ ! -f "$obj" ] || continue
    sed 's/\([A-Za-z_][A-Za-z_0-9]*\)<<<\(.*\)>>>(/mlc_host_launch(\1, \2)(/' "$src" > "$W/host.cpp"
    opt=-O1; [ "${src##*/}" != host_cuda.cpp ] || opt=-O2 # its GEMMs take most of the time
    ${CXX:-c++} -std=c++17 $opt -w -DMLC_GRID_MAX=3 -I"$HERE" -I"$ROOT/runtime" -I"$ROOT/runtime/kernels/cuda" \
        -I"$(dirname "$MODEL")" -c "$W/host.cpp" -o "$obj"
done
cc -std=c11 -O1 -c "$MAIN" -I"$ROOT/runtime" -DMLC_MODEL_API="$API" -o "$W/host_main.o.tmp"
${CXX:-c++} "$W"/host_lib_*.o "$W/host_model.o" "$W/host_main.o.tmp" -o "$EXE" -L"$BUILD/runtime" -lmlcrt -lz -lm -pthread
rm "$W/host_model.o" "$W/host_main.o.tmp"
