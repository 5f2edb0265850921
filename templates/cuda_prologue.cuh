/* ---- templates/cuda_prologue.cuh: the start of every CUDA model mlc emits ---- */
/* The generated .cu is C++ (nvcc); the runtime and the trainer's main() are C, so the
 * runtime's headers and everything they reference are given C linkage. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "mlcrt.h"
}

/* pow in double for once-per-step host scalars (Adam's bias corrections); the C target's
 * is in runtime/kernels/mlc_kernels.h */
[[maybe_unused]] static inline double mlc_pow_d(double b, double e) { return pow(b, e); }

/* Every CUDA and cuBLAS call is checked; a failure names the generated file and line
 * and aborts (a half-run training step leaves nothing worth saving). */
#define MLC_CUDA_CHECK(call)                                                                \
    do {                                                                                    \
        const cudaError_t mlc_err_ = (call);                                                \
        if (mlc_err_ != cudaSuccess) {                                                      \
            fprintf(stderr, "%s:%d: CUDA error: %s (%s) in %s\n", __FILE__, __LINE__,      \
                    cudaGetErrorString(mlc_err_), cudaGetErrorName(mlc_err_), #call);       \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

#define MLC_CUBLAS_CHECK(call)                                                              \
    do {                                                                                    \
        const cublasStatus_t mlc_st_ = (call);                                              \
        if (mlc_st_ != CUBLAS_STATUS_SUCCESS) {                                             \
            fprintf(stderr, "%s:%d: cuBLAS error: %s (%d) in %s\n", __FILE__, __LINE__,     \
                    cublasGetStatusString(mlc_st_), (int)mlc_st_, #call);                   \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* After every kernel launch: a bad launch configuration shows up here. Compile with
 * -DMLC_CUDA_SYNC_CHECK to also wait for each kernel, so a fault names its launch. */
#ifdef MLC_CUDA_SYNC_CHECK
#define MLC_LAUNCH_CHECK(stream)                                                            \
    do {                                                                                    \
        MLC_CUDA_CHECK(cudaGetLastError());                                                 \
        MLC_CUDA_CHECK(cudaStreamSynchronize(stream));                                      \
    } while (0)
#else
#define MLC_LAUNCH_CHECK(stream)                                                            \
    do {                                                                                    \
        (void)(stream);                                                                     \
        MLC_CUDA_CHECK(cudaGetLastError());                                                 \
    } while (0)
#endif

/* Threads per block, and blocks for n work items: every kernel is a grid-stride loop,
 * so the grid is capped and never empty. */
#define MLC_BLOCK 256
static inline unsigned mlc_grid(long n) {
    long b = (n + MLC_BLOCK - 1) / MLC_BLOCK;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536;
    return (unsigned)b;
}

/* Blocks for n work items of a block each (capped: the kernels loop over their items).
 * Only models with row reductions (a cross-entropy) launch such kernels: an autoencoder
 * does not, and nvcc -Werror rejects an unreferenced static function. */
[[maybe_unused]] static inline unsigned mlc_blocks(long n) {
    if (n < 1) n = 1;
    if (n > 65536) n = 65536;
    return (unsigned)n;
}

/* cublasSgemm's alpha and beta (host pointer mode). */
static const float mlc_one = 1.0f, mlc_zero = 0.0f;
/* ---- end of prologue ---- */
