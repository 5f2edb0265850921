#!/bin/sh
# tests/compiler/gpu/host_cuda/build.sh ROOT BUILD W MODEL.cu MAIN.c API EXE - builds a
# generated .cu with a C main (step_compare.c, templates/trainer_main.c) into a program that
# runs on the CPU: each CUDA source has `kernel<<<cfg>>>(args)` (or `kernel<T, U><<<...`: a
# template's launch names its arguments) rewritten to `mlc_host_launch((kernel), cfg)(args)` (cuda_runtime.h here) and is compiled by the host C++
# compiler against this directory's stand-ins for the CUDA runtime, cuBLAS and cuDNN. The kernel
# library (runtime/kernels/cuda/) and the stand-in are compiled once per W. With MPI=1 the
# program is a CUDA trainer built as `mlc build --target cuda --mpi` builds one: its main
# with MLC_MPI and MLC_MPI_CUDA, templates/dist_nccl.c (compiled as C, as nvcc does) on
# host_nccl.cpp's NCCL over MPI, and libmlcrt_mpi. A MAIN.cpp is compiled as C++, with the
# model's directory on its include path (its NAME.h).
set -eu
ROOT=$1 BUILD=$2 W=$3 MODEL=$4 MAIN=$5 API=$6 EXE=$7
HERE=$ROOT/tests/compiler/gpu/host_cuda
for src in "$MODEL" "$ROOT"/runtime/kernels/cuda/*.cu "$HERE/host_cuda.cpp" "$HERE/host_cudnn.cpp"; do
    obj="$W/host_lib_$(basename "$src" | sed 's/\.[a-z]*$//').o"
    [ "$src" != "$MODEL" ] || obj="$W/host_model.o"
    [ "$obj" = "$W/host_model.o" ] || [ ! -f "$obj" ] || continue
    sed 's/\([A-Za-z_][A-Za-z_0-9]*\(<[A-Za-z_0-9, ]*>\)\{0,1\}\)<<<\(.*\)>>>(/mlc_host_launch((\1), \3)(/' "$src" \
        > "$W/host.cpp"
    opt=-O1 # the stand-in's GEMMs and convolutions take most of the time
    case ${src##*/} in host_cuda.cpp | host_cudnn.cpp) opt=-O2 ;; esac
    ${CXX:-c++} -std=c++17 $opt -w -DMLC_GRID_MAX=3 -I"$HERE" -I"$ROOT/runtime" -I"$ROOT/runtime/kernels/cuda" \
        -iquote "$(dirname "$MODEL")" -c "$W/host.cpp" -o "$obj"
done
if [ "${MPI:-0}" = 1 ]; then
    mpi_cc=$(mpicc -showme:compile) mpi_ld=$(mpicc -showme:link)
    # shellcheck disable=SC2086
    cc -std=c11 -O1 -c "$ROOT/templates/dist_nccl.c" -I"$HERE" -I"$ROOT/runtime" $mpi_cc -o "$W/host_mpi_dist.o"
    # shellcheck disable=SC2086
    ${CXX:-c++} -std=c++17 -O1 -w -c "$HERE/host_nccl.cpp" -I"$HERE" $mpi_cc -o "$W/host_mpi_nccl.o"
    # shellcheck disable=SC2086
    cc -std=c11 -O1 -c "$MAIN" -I"$ROOT/runtime" -DMLC_MODEL_API="$API" -DMLC_MPI -DMLC_MPI_CUDA $mpi_cc \
        -o "$W/host_main.o.tmp"
    # shellcheck disable=SC2086
    ${CXX:-c++} "$W"/host_lib_*.o "$W/host_model.o" "$W/host_main.o.tmp" "$W/host_mpi_dist.o" "$W/host_mpi_nccl.o" \
        -o "$EXE" -L"$BUILD/runtime" -lmlcrt_mpi -lmlcrt -lz -lm -pthread $mpi_ld
else
    case $MAIN in
    *.cpp) # a C++ caller that includes the model's header as it is (create_fails_on_host.sh)
        ${CXX:-c++} -std=c++17 -O1 -Wall -Wextra -Werror -c "$MAIN" -I"$ROOT/runtime" -iquote "$(dirname "$MODEL")" \
            -o "$W/host_main.o.tmp" ;;
    *) cc -std=c11 -O1 -c "$MAIN" -I"$ROOT/runtime" -DMLC_MODEL_API="$API" -o "$W/host_main.o.tmp" ;;
    esac
    ${CXX:-c++} "$W"/host_lib_*.o "$W/host_model.o" "$W/host_main.o.tmp" -o "$EXE" -L"$BUILD/runtime" -lmlcrt -lz -lm \
        -pthread
fi
rm "$W/host_model.o" "$W/host_main.o.tmp"
