/* tests/compiler/gpu/host_cuda/mma.h - the tensor cores' warp matrix functions (WMMA) as
 * the CPU stand-in plays them (cuda_runtime.h): what runtime/kernels/cuda/conv_implicit.cu
 * uses, the bf16 (m16n16k16) and TF32 (m16n16k8) shapes with float accumulators.
 *
 * On the device a fragment is spread over a warp's 32 threads, in a layout the program
 * cannot rely on, and every function is the whole warp's; here a warp's first thread
 * holds the whole tile and does the warp's whole work (the loads, the product, the
 * store), and the other 31 do nothing, so a program that touches fragments only through
 * these functions computes what it would on the device. The products are exact (bf16
 * and TF32 operands have at most 11 significant bits) and summed in float, k in order,
 * onto the accumulator, as one product sum of the device's may be ordered. A TF32 operand is taken
 * with its 13 low mantissa bits dropped, as the tensor cores take a float that
 * __float_to_tf32 did not round. */
#ifndef MLC_HOST_CUDA_MMA_H
#define MLC_HOST_CUDA_MMA_H

#include <stdint.h>
#include <string.h>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
} // namespace precision

/* round to nearest (ties away from zero, as the device's cvt.rna.tf32.f32) to 10 mantissa bits */
static inline float __float_to_tf32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float operand_value(float v) { /* a TF32 operand's value: the top 19 bits */
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if (v == v) u &= 0xffffe000u;
    memcpy(&v, &u, sizeof v);
    return v;
}
static inline float operand_value(__nv_bfloat16 v) { return __bfloat162float(v); }

/* the thread that does its warp's part: the first of each 32 */
static inline bool warp_leader() {
    return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32 == 0;
}

/* rows x cols of the tile this use of an M x N x K product holds */
template <class Use, int M, int N, int K> struct tile_shape;
template <int M, int N, int K> struct tile_shape<matrix_a, M, N, K> {
    enum { rows = M, cols = K };
};
template <int M, int N, int K> struct tile_shape<matrix_b, M, N, K> {
    enum { rows = K, cols = N };
};
template <int M, int N, int K> struct tile_shape<accumulator, M, N, K> {
    enum { rows = M, cols = N };
};

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    enum { rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols };
    static const int num_elements = rows * cols;
    float x[rows * cols]; /* row-major */
};

template <class Use, int M, int N, int K, class T, class L>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, float v) {
    if (!warp_leader()) return;
    for (int i = 0; i < f.num_elements; i++) f.x[i] = v;
}

/* an operand tile from row-major memory: p's element (r, c) at p[r * ldm + c] */
template <class Use, int M, int N, int K, class T, class P>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const P *p, unsigned ldm) {
    if (!warp_leader()) return;
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = operand_value(p[(size_t)r * ldm + c]);
}

template <int M, int N, int K, class T>
static inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                                     layout_t layout) {
    if (!warp_leader()) return;
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++)
            p[layout == mem_row_major ? (size_t)r * ldm + c : (size_t)c * ldm + r] = f.x[r * f.cols + c];
}

/* d = a b + c */
template <int M, int N, int K, class T>
static inline void
mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, row_major> &a,
         const fragment<matrix_b, M, N, K, T, row_major> &b, const fragment<accumulator, M, N, K, float> &c) {
    if (!warp_leader()) return;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.x[i * N + j];
            for (int k = 0; k < K; k++) s += a.x[i * K + k] * b.x[k * N + j];
            d.x[i * N + j] = s;
        }
}

} // namespace wmma
} // namespace nvcuda

#endif
