/* mlc_kernels_cuda.h - the API of libmlckernels_cuda, the CUDA kernels that do not depend
 * on a model: the convolution's gathers around cuBLAS (cuda/conv.cu), pooling
 * (cuda/pool.cu) and the batch-norm sums (cuda/norm.cu), each a host launcher that a
 * generated .cu calls with the node's geometry and buffers (device memory), on the
 * model's stream. Also what those launchers and the generated host code share: the
 * checks of CUDA and cuBLAS calls and the grid sizes of grid-stride kernels.
 *
 * Not here: the device functions generated kernels call (Philox for dropout, attention's
 * block functions, MLC_ROW_THREADS), which must be in the generated file's own
 * translation unit (NVRTC, no -rdc): the emitter pastes them (mlc_philox.h,
 * templates/cuda_attention.cuh, templates/cuda_device.cuh).
 *
 * CUDA C++ (nvcc) only. `mlc build --target cuda` compiles the cuda/ sources with the model, for
 * the architectures of --cuda-arch; meson builds them as libmlckernels_cuda when nvcc is
 * found. The geometry structs are the C kernels' (mlc_geom.h). Every kernel is a
 * grid-stride loop whose sums run in a fixed order, each written by one thread: results
 * do not depend on scheduling. */
#ifndef MLC_KERNELS_CUDA_H
#define MLC_KERNELS_CUDA_H

#include <stdio.h>
#include <stdlib.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "mlc_bf16.h"
#include "mlc_conv_tiles.h"
#include "mlc_geom.h"

/* Every CUDA and cuBLAS call is checked; a failure names the file and line and aborts (a
 * half-run training step leaves nothing worth saving). */
#define MLC_CUDA_CHECK(call)                                                                                        \
    do {                                                                                                            \
        const cudaError_t mlc_err_ = (call);                                                                        \
        if (mlc_err_ != cudaSuccess) {                                                                              \
            fprintf(stderr, "%s:%d: CUDA error: %s (%s) in %s\n", __FILE__, __LINE__, cudaGetErrorString(mlc_err_), \
                    cudaGetErrorName(mlc_err_), #call);                                                             \
            abort();                                                                                                \
        }                                                                                                           \
    } while (0)

#define MLC_CUBLAS_CHECK(call)                                                          \
    do {                                                                                \
        const cublasStatus_t mlc_st_ = (call);                                          \
        if (mlc_st_ != CUBLAS_STATUS_SUCCESS) {                                         \
            fprintf(stderr, "%s:%d: cuBLAS error: %s (%d) in %s\n", __FILE__, __LINE__, \
                    cublasGetStatusString(mlc_st_), (int)mlc_st_, #call);               \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* After every kernel launch: a bad launch configuration shows up here. Compile with
 * -DMLC_CUDA_SYNC_CHECK to also wait for each kernel, so a fault names its launch (mlc
 * build compiles the library with the model's flags, so both get it). */
#ifdef MLC_CUDA_SYNC_CHECK
#define MLC_LAUNCH_CHECK(stream)                       \
    do {                                               \
        MLC_CUDA_CHECK(cudaGetLastError());            \
        MLC_CUDA_CHECK(cudaStreamSynchronize(stream)); \
    } while (0)
#else
#define MLC_LAUNCH_CHECK(stream)            \
    do {                                    \
        (void)(stream);                     \
        MLC_CUDA_CHECK(cudaGetLastError()); \
    } while (0)
#endif

/* Threads per block, and blocks for n work items: every kernel is a grid-stride loop,
 * so the grid is capped and never empty. The CPU's stand-in for the GPU
 * (tests/compiler/gpu/host_cuda/) caps it at a few blocks: any cap gives the same results. */
#define MLC_BLOCK 256
#ifndef MLC_GRID_MAX
#define MLC_GRID_MAX 65536
#endif
[[maybe_unused]] static inline unsigned mlc_grid(long n) {
    long b = (n + MLC_BLOCK - 1) / MLC_BLOCK;
    if (b < 1) b = 1;
    if (b > MLC_GRID_MAX) b = MLC_GRID_MAX;
    return (unsigned)b;
}

/* Blocks for n work items of a block each (capped: the kernels loop over their items).
 * Only models with row reductions (a cross-entropy) launch such kernels: an autoencoder
 * does not, and nvcc -Werror rejects an unreferenced static function. */
[[maybe_unused]] static inline unsigned mlc_blocks(long n) {
    if (n < 1) n = 1;
    if (n > MLC_GRID_MAX) n = MLC_GRID_MAX;
    return (unsigned)n;
}

/* cublasSgemm's alpha and beta (host pointer mode). */
static const float mlc_one = 1.0f, mlc_zero = 0.0f;

/* What the operands of a GEMM (mlc_gemm) or a convolution's GEMMs hold, its `bf16` mode:
 * floats (MLC_FP32); floats that are all bfloat16 values (MLC_BF16_VALUES: --precision
 * bf16 rounded them, compiler/passes/precision.c); or bfloat16 values stored as mlc_bf16
 * (MLC_BF16_STORED, mlc_bf16.h: the memory plan stores them in 2 bytes,
 * compiler/targets/cuda/bf16_storage.c). The output is floats in every mode. MLC_TF32
 * (floats, products on TF32 tensor cores) is for the implicit-GEMM convolutions and
 * mlc_gemm_bias: mlc_gemm's TF32 is the cuBLAS handle's math mode (--tf32). */
enum { MLC_FP32 = 0, MLC_BF16_VALUES = 1, MLC_BF16_STORED = 2, MLC_TF32 = 3 };

/* C = op(A) op(B) in column-major order, as cublasSgemm. In the bf16 modes the tensor
 * cores' bf16 products with FP32 sums compute the products SGEMM would on those values
 * (CUBLAS_COMPUTE_32F_FAST_16BF converts float operands to bf16, which changes none of
 * them), at the tensor cores' rate; the sums in their order. A and B are float arrays,
 * or mlc_bf16 arrays in MLC_BF16_STORED. */
[[maybe_unused]] static inline cublasStatus_t mlc_gemm(cublasHandle_t h, int bf16, cublasOperation_t ta,
                                                       cublasOperation_t tb, int m, int n, int k, const void *A,
                                                       int lda, const void *B, int ldb, float *C, int ldc) {
    if (bf16 == MLC_FP32)
        return cublasSgemm(h, ta, tb, m, n, k, &mlc_one, (const float *)A, lda, (const float *)B, ldb, &mlc_zero, C,
                           ldc);
    const cudaDataType_t t = bf16 == MLC_BF16_STORED ? CUDA_R_16BF : CUDA_R_32F;
    return cublasGemmEx(h, ta, tb, m, n, k, &mlc_one, A, t, lda, B, t, ldb, &mlc_zero, C, CUDA_R_32F, ldc,
                        bf16 == MLC_BF16_STORED ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF,
                        CUBLAS_GEMM_DEFAULT);
}

/* mlc_gemm over `count` products whose matrices lie sa, sb, sc elements apart (a stride of
 * 0: one matrix they share), as cublasSgemmStridedBatched. */
[[maybe_unused]] static inline cublasStatus_t mlc_gemm_strided(cublasHandle_t h, int bf16, cublasOperation_t ta,
                                                               cublasOperation_t tb, int m, int n, int k, const void *A,
                                                               int lda, long long sa, const void *B, int ldb,
                                                               long long sb, float *C, int ldc, long long sc,
                                                               int count) {
    if (bf16 == MLC_FP32)
        return cublasSgemmStridedBatched(h, ta, tb, m, n, k, &mlc_one, (const float *)A, lda, sa, (const float *)B, ldb,
                                         sb, &mlc_zero, C, ldc, sc, count);
    const cudaDataType_t t = bf16 == MLC_BF16_STORED ? CUDA_R_16BF : CUDA_R_32F;
    return cublasGemmStridedBatchedEx(
        h, ta, tb, m, n, k, &mlc_one, A, t, lda, sa, B, t, ldb, sb, &mlc_zero, C, CUDA_R_32F, ldc, sc, count,
        bf16 == MLC_BF16_STORED ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT);
}

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a GEMM and its epilogue in one (cuda/gemm_lt.cu, --cublaslt): C = op(A) op(B) +
 * bias, column-major as mlc_gemm (mode: its modes, or MLC_TF32 for floats whose products
 * may round to TF32), bias one float per row of C (a row-major output's column), then
 * max(., 0) with relu; by cuBLASLt's epilogue on handle lt, with ws (ws_bytes) as its
 * workspace; where cuBLASLt offers no algorithm, by mlc_gemm on h and a kernel. ---- */
cublasStatus_t mlc_gemm_bias(cublasHandle_t h, cublasLtHandle_t lt, cudaStream_t stream, int mode, int relu,
                             cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                             const void *B, int ldb, const float *bias, float *C, int ldc, void *ws, size_t ws_bytes);

/* ---- convolution (cuda/conv.cu), NCHW: im2col / col2im gathers around strided-batched
 * cuBLAS GEMMs over the samples. The batch B goes in chunks of at most nc samples (the
 * compiler sizes nc so that a chunk's scratch fits its workspace, compiler/targets/cuda/
 * conv.c); ws is that scratch (NULL where the op needs none: 1x1, stride 1, no padding).
 * Chunks change no result: samples are independent, and the weight gradient's slots are
 * added in sample order. bf16: what the two operands hold (mlc_gemm's modes: floats,
 * bfloat16 values in floats, or mlc_bf16 arrays, whose columns are then mlc_bf16 too);
 * in the bf16 modes the GEMMs run on the tensor cores' bf16 products. The output is
 * floats. ---- */

/* y = conv(x, w); ws: nc*K*P floats (K = C/G*KH*KW, P = Ho*Wo). */
void mlc_cuda_conv2d_fwd(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                         const void *w, float *y, float *ws, long nc, int bf16);
/* dx = the input gradient of dy; ws: nc*K*P floats. */
void mlc_cuda_conv2d_bwd_data(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy,
                              const void *w, float *dx, float *ws, long nc, int bf16);
/* dw = the weight gradient of dy over the batch; ws: nc*O/G*K slot floats, then, from
 * the next 16 bytes, nc*K*P column floats. */
void mlc_cuda_conv2d_bwd_filter(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                                const void *dy, float *dw, float *ws, long nc, int bf16);

/* ---- convolution as implicit GEMMs (cuda/conv_implicit.cu, --conv-algo implicit), NCHW:
 * no column matrix; the blocks gather their operand tiles from x, w and dy. mode:
 * MLC_BF16_STORED or MLC_BF16_VALUES (bf16 products on the tensor cores), MLC_TF32
 * (floats whose products round them to TF32, on the tensor cores) or MLC_FP32 (FP32
 * FMAs); FP32 sums, each in a fixed order. sm_80 and newer. The
 * weight gradient sums K = B*Ho*Wo in `splits` fixed ranges, each into its slot of ws
 * (splits*O*C/G*KH*KW floats; none for one split), then adds the slots in order. The
 * forward op and the input gradient run epilogue ep (mlc_conv_tiles.h; NULL: none) on
 * each result. ---- */
void mlc_cuda_conv2d_fwd_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *w,
                                  float *y, const mlc_conv_epilogue *ep, int mode);
void mlc_cuda_conv2d_bwd_data_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy,
                                       const void *w, float *dx, const mlc_conv_epilogue *ep, int mode);
void mlc_cuda_conv2d_bwd_filter_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                                         const void *dy, float *dw, float *ws, int splits, int mode);

/* ---- pooling (cuda/pool.cu), over `planes` planes (batch * channels) of H x W: a thread
 * per output element; the backward ops gather per input element (no atomics), except a
 * 2x2, stride 2 max-pool backward on even planes, a thread per window, so that dx may be
 * x's own bytes. Max pooling ignores padding; average pooling counts it as zeros. ---- */

void mlc_cuda_maxpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x, float *y);
void mlc_cuda_maxpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy, const float *x,
                            float *dx);
void mlc_cuda_avgpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x, float *y);
void mlc_cuda_avgpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy, float *dx);

/* ---- batch-norm sums per channel (cuda/norm.cu) over x [B, C, S]: the batch split into P
 * fixed slices, each summed by a block into part (2*P*C doubles, the op's workspace), the
 * slices then added in order. Without dy (bn_stats): out[c] = mean, out[C + c] = biased
 * variance. With dy and st = (mean, variance) (bn_param_grads): out[c] = sum(dy), out[C +
 * c] = sum(dy * xhat) with xhat = (x - mean) / sqrt(var + eps). Fixed slices, fixed
 * order: the same result every run. x_bf16: x is an mlc_bf16 array (stored as bfloat16),
 * else floats. ---- */
void mlc_cuda_bn_sums(cudaStream_t stream, long B, long C, long S, int P, const void *x, int x_bf16, const float *dy,
                      const float *st, float eps, double *part, float *out);

/* ---- CUDA graphs (cuda/graph.cu): a step's launches captured once per key and replayed
 * after. Keys: MLC_GRAPH_KEY(which graph function, batch size, outputs wanted). ---- */
#define MLC_GRAPH_SLOTS 8
#define MLC_GRAPH_KEY(fn, n, outs) (((long long)(fn) << 40) | ((long long)(n) << 1) | ((outs) ? 1 : 0))
typedef struct mlc_graph_cache {
    long long key[MLC_GRAPH_SLOTS];
    cudaGraphExec_t exec[MLC_GRAPH_SLOTS]; /* NULL: a free slot */
    int next;                              /* the slot the next new graph takes */
    int off;                               /* 1: launch one by one from now on */
    /* 1: a key's first call runs one by one and its second is captured, so that a library
     * that sets itself up on first use (cuDNN's convolutions) does so outside a capture;
     * warm holds the keys run once so far */
    int warmup, warm_next;
    long long warm[MLC_GRAPH_SLOTS];
} mlc_graph_cache;
/* Runs launch(ctx)'s work on stream: for a new key, captured into a graph (launch runs
 * once, recording) and instantiated, then that graph launched; for a known key, its
 * graph launched. launch must enqueue on `stream` only and do no host work that depends
 * on the call (a replay repeats only its GPU work). Returns 0, having launched nothing,
 * when graphs are off: MLC_CUDA_GRAPHS=0 in the environment, a build with
 * MLC_CUDA_SYNC_CHECK, or a capture that failed (then noted once on stderr, naming
 * `model`, and off for this model from then on), or, with warmup, on a key's first
 * call; the caller then calls launch(ctx) itself. */
int mlc_cuda_graph_run(mlc_graph_cache *c, cudaStream_t stream, long long key, void (*launch)(void *ctx), void *ctx,
                       const char *model);
/* Destroys the cached graphs. */
void mlc_cuda_graph_free(mlc_graph_cache *c);

#ifdef __cplusplus
}
#endif

#endif
