/* ---- templates/cuda_prologue.cuh: the start of every CUDA model mlc emits ---- */
/* The generated .cu is C++ (nvcc); the runtime and the trainer's main() are C, so the
 * runtime's headers and everything they reference are given C linkage. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "mlcrt.h"
}
/* the model-independent kernels (libmlckernels_cuda), the CUDA and cuBLAS checks and the
 * grid sizes they share with the code below */
#include "kernels/mlc_kernels_cuda.h"

/* pow in double for once-per-step host scalars (Adam's bias corrections); the C target's
 * is in runtime/kernels/mlc_kernels.h */
[[maybe_unused]] static inline double mlc_pow_d(double b, double e) { return pow(b, e); }

/* ---- end of prologue ---- */
