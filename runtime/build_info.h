/* build_info.h - what a standalone trainer was built with, for its --version: the
 * kernels a C model runs on. libmlcrt has no link to the kernel library (it stays free of
 * OpenBLAS and OpenMP), so the trainer's main, which a C build compiles with
 * MLC_C_KERNELS and links with libmlckernels, hands their description over before
 * mlcrt_main. */
#ifndef MLCRT_BUILD_INFO_H
#define MLCRT_BUILD_INFO_H

#include <stdio.h>

#include "mlc_model.h"

/* The kernel library's vector width in floats and instruction set (mlc_kernels_vec_width,
 * mlc_kernels_isa); isa is kept, not copied */
void mlcrt_set_kernels(int vec_width, const char *isa);

/* --version: the model's name and target, its API version, and the kernels */
void mlcrt_print_version(FILE *out, const mlc_model_api *api);

#endif
