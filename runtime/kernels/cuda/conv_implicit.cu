/* conv_implicit.cu - the CUDA convolution as implicit GEMMs on the tensor cores
 * (`--conv-algo implicit`, mlc_kernels_cuda.h): no column matrix, each block gathers its
 * tiles of the GEMM's operands from the tensors themselves into shared memory and
 * multiplies them with WMMA, bf16 (m16n16k16) or TF32 (m16n16k8) products and FP32 sums.
 * The im2col path around cuBLAS is conv.cu; which one a layer takes is the compiler's
 * (compiler/targets/cuda/conv.c).
 *
 * Each op is one GEMM per group, C[M][N] = sum over k of A[M][k] B[k][N]:
 *   forward          M = Og (o), N = B*Ho*Wo (b, oh, ow), k = (c, kh, kw) over Cg*KH*KW;
 *   input gradient   M = Cg (c), N = B*H*W (b, ih, iw), k = (o, kh, kw) over Og*KH*KW,
 *                    the taps whose output position is not on the stride's grid zero;
 *   weight gradient  M = Og (o), N = Cg*KH*KW (c, kh, kw), k = (b, oh, ow) over B*Ho*Wo,
 *                    in `splits` fixed ranges of k whose sums go to slots of ws and are
 *                    then added in slot order (no atomics).
 * A block computes a tile of C (16x128, 32x128 or 64x64, by M: mlc_conv_tiles.h) over
 * 32-wide steps of k, each of its 4 warps a 16x32 or 32x32 part; every element of C is
 * summed by one warp in a fixed order: the same bits every run.
 *
 * Sizes: N, and every sample's C*H*W and O*Ho*Wo, below 2^31 (the launchers check): the
 * index arithmetic is 32-bit but for the samples' offsets. */
#include <cuda_bf16.h>
#include <mma.h>

#include "../mlc_conv_tiles.h"
#include "../mlc_kernels_cuda.h"

namespace wmma = nvcuda::wmma;

enum { IG_BK = 32, IG_THREADS = 128 };

/* A block's tile of the result: BM rows (16, 32 or 64: mlc_ig_tile_rows) by BN columns
 * (mlc_ig_tile_cols), its 4 warps WM x WN, each FM x 2 fragments of 16x16. */
template <int BM_> struct ig_shape {
    enum { BM = BM_, FM = BM_ >= 32 ? 2 : 1, WM = BM_ / (16 * FM), WN = 4 / WM, BN = WN * 32 };
};

/* Before sm_80 there are no bf16 or TF32 tensor cores: compiled for those, the kernels
 * stop the program (mlc refuses --conv-algo implicit with such a --cuda-arch,
 * compiler/driver/main.c; a GPU found by the build can still be one). */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define IG_TENSOR_CORES 1
#else
#define IG_TENSOR_CORES 0
#endif

/* What the tensor cores multiply: an operand tile's element in shared memory, its
 * fragments' type, the products' depth, and the rows' padding (WMMA wants rows a multiple
 * of 16 bytes long; the padding also staggers the banks). put: an operand's value as
 * stored, which changes no bfloat16 value and rounds a float to TF32 (nearest). */
struct ig_bf16 {
    typedef __nv_bfloat16 smem_t;
    typedef __nv_bfloat16 frag_t;
    enum { FK = 16, PAD = 8 };
    static __device__ __forceinline__ smem_t put(float v) { return __float2bfloat16_rn(v); }
};
struct ig_tf32 {
    typedef float smem_t;
    enum { FK = 8, PAD = 4 };
#if IG_TENSOR_CORES
    typedef wmma::precision::tf32 frag_t;
    static __device__ __forceinline__ smem_t put(float v) { return wmma::__float_to_tf32(v); }
#else
    typedef float frag_t;
    static __device__ __forceinline__ smem_t put(float v) { return v; }
#endif
};

/* A block's operand tiles, a[m][k] and b[k][n], and its result tile c[m][n]. */
template <class E, class S> struct ig_tiles {
    typename E::smem_t a[S::BM][IG_BK + E::PAD];
    typename E::smem_t b[IG_BK][S::BN + E::PAD];
    float c[S::BM][S::BN + 4];
};

/* A warp's sums: FM x 2 fragments. */
template <class E, class S> struct ig_acc { wmma::fragment<wmma::accumulator, 16, 16, E::FK, float> f[S::FM][2]; };

/* Where this warp's part of the block's tile starts. */
template <class S> static __device__ __forceinline__ int ig_warp_row() {
    return (int)threadIdx.x / 32 / S::WN * 16 * S::FM;
}
template <class S> static __device__ __forceinline__ int ig_warp_col() { return (int)threadIdx.x / 32 % S::WN * 32; }

template <class E, class S> static __device__ __forceinline__ void ig_zero(ig_acc<E, S> &acc) {
    for (int i = 0; i < S::FM; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc.f[i][j], 0.0f);
}

/* acc += this warp's part of a . b over the tile's 32 k. */
template <class E, class S> static __device__ __forceinline__ void ig_mma(ig_tiles<E, S> &s, ig_acc<E, S> &acc) {
    const int wm = ig_warp_row<S>(), wn = ig_warp_col<S>();
    for (int kk = 0; kk < IG_BK; kk += E::FK) {
        wmma::fragment<wmma::matrix_a, 16, 16, E::FK, typename E::frag_t, wmma::row_major> fa[S::FM];
        wmma::fragment<wmma::matrix_b, 16, 16, E::FK, typename E::frag_t, wmma::row_major> fb[2];
        for (int i = 0; i < S::FM; i++) wmma::load_matrix_sync(fa[i], &s.a[wm + 16 * i][kk], IG_BK + E::PAD);
        for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &s.b[kk][wn + 16 * j], S::BN + E::PAD);
        for (int i = 0; i < S::FM; i++)
            for (int j = 0; j < 2; j++) wmma::mma_sync(acc.f[i][j], fa[i], fb[j], acc.f[i][j]);
    }
}

/* The sums into s.c, for every thread to read. */
template <class E, class S> static __device__ __forceinline__ void ig_result(ig_tiles<E, S> &s, ig_acc<E, S> &acc) {
    const int wm = ig_warp_row<S>(), wn = ig_warp_col<S>();
    __syncthreads(); /* the last tile's fragments are read */
    for (int i = 0; i < S::FM; i++)
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&s.c[wm + 16 * i][wn + 16 * j], acc.f[i][j], S::BN + 4, wmma::mem_row_major);
    __syncthreads();
}

/* y = conv(x, w) for group blockIdx.z. A thread loads one column of B (an output pixel)
 * and writes that column of the result; tab holds the 32 taps of the k step (input
 * channel offset, kh*dh, kw*dw; -1: past K). */
template <class T, class E, class S>
static __global__ void mlc_ig_fwd_kernel(const mlc_conv_geom g, const int N, const T *x, const T *w, float *y) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int tab[IG_BK][3];
    const int grp = (int)blockIdx.z, Cg = g.C / g.G, Og = g.O / g.G, KHW = g.KH * g.KW, K = Cg * KHW, P = g.Ho * g.Wo,
              t = (int)threadIdx.x, m0 = (int)blockIdx.y * S::BM, col = t % S::BN, n = (int)blockIdx.x * S::BN + col;
    int b = 0, p = 0, ih0 = 0, iw0 = 0;
    if (n < N) {
        b = n / P, p = n - b * P;
        const int oh = p / g.Wo, ow = p - oh * g.Wo;
        ih0 = oh * g.sh - g.ph, iw0 = ow * g.sw - g.pw;
    }
    const T *xb = x + ((long)b * g.C + (long)grp * Cg) * g.H * g.W, *wg = w + (long)grp * Og * K;
    ig_acc<E, S> acc;
    ig_zero<E, S>(acc);
    for (int k0 = 0; k0 < K; k0 += IG_BK) {
        __syncthreads(); /* the step before is multiplied */
        if (t < IG_BK) {
            const int k = k0 + t, c = k / KHW, r = k - c * KHW, kh = r / g.KW;
            tab[t][0] = k < K ? c * g.H * g.W : -1, tab[t][1] = kh * g.dh, tab[t][2] = (r - kh * g.KW) * g.dw;
        }
        __syncthreads();
        for (int i = t / IG_BK; i < S::BM; i += IG_THREADS / IG_BK) {
            const int m = m0 + i, k = k0 + t % IG_BK;
            s.a[i][t % IG_BK] = E::put(m < Og && k < K ? (float)wg[(long)m * K + k] : 0.0f);
        }
        for (int kk = t / S::BN; kk < IG_BK; kk += IG_THREADS / S::BN) {
            const int ih = ih0 + tab[kk][1], iw = iw0 + tab[kk][2];
            const bool in = n < N && tab[kk][0] >= 0 && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
            s.b[kk][col] = E::put(in ? (float)xb[tab[kk][0] + ih * g.W + iw] : 0.0f);
        }
        __syncthreads();
        ig_mma<E, S>(s, acc);
    }
    ig_result<E, S>(s, acc);
    if (n >= N) return;
    float *yb = y + ((long)b * g.O + (long)grp * Og) * P + p;
    for (int i = t / S::BN; i < S::BM && m0 + i < Og; i += IG_THREADS / S::BN) yb[(long)(m0 + i) * P] = s.c[i][col];
#else
    (void)g, (void)N, (void)x, (void)w, (void)y;
    __trap();
#endif
}

/* dx = the input gradient of dy for group blockIdx.z: a thread's column is an input pixel
 * (b, ih, iw), and tap k = (o, kh, kw) reads dy at oh = (ih + ph - kh*dh) / sh where that
 * divides (likewise ow); tab: o (-1: past K), kh*KW + kw, kh*dh, kw*dw. */
template <class T, class E, class S>
static __global__ void mlc_ig_bwd_data_kernel(const mlc_conv_geom g, const int N, const T *dy, const T *w, float *dx) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int tab[IG_BK][4];
    const int grp = (int)blockIdx.z, Cg = g.C / g.G, Og = g.O / g.G, KHW = g.KH * g.KW, K = Og * KHW, P = g.Ho * g.Wo,
              HW = g.H * g.W, t = (int)threadIdx.x, m0 = (int)blockIdx.y * S::BM, col = t % S::BN,
              n = (int)blockIdx.x * S::BN + col;
    int b = 0, hw = 0, th0 = 0, tw0 = 0;
    if (n < N) {
        b = n / HW, hw = n - b * HW;
        const int ih = hw / g.W;
        th0 = ih + g.ph, tw0 = hw - ih * g.W + g.pw;
    }
    const T *dyb = dy + ((long)b * g.O + (long)grp * Og) * P, *wg = w + (long)grp * Og * Cg * KHW;
    ig_acc<E, S> acc;
    ig_zero<E, S>(acc);
    for (int k0 = 0; k0 < K; k0 += IG_BK) {
        __syncthreads();
        if (t < IG_BK) {
            const int k = k0 + t, o = k / KHW, r = k - o * KHW, kh = r / g.KW;
            tab[t][0] = k < K ? o : -1, tab[t][1] = r, tab[t][2] = kh * g.dh, tab[t][3] = (r - kh * g.KW) * g.dw;
        }
        __syncthreads();
        for (int i = t / IG_BK; i < S::BM; i += IG_THREADS / IG_BK) {
            const int c = m0 + i, kk = t % IG_BK, o = tab[kk][0];
            s.a[i][kk] = E::put(c < Cg && o >= 0 ? (float)wg[((long)o * Cg + c) * KHW + tab[kk][1]] : 0.0f);
        }
        for (int kk = t / S::BN; kk < IG_BK; kk += IG_THREADS / S::BN) {
            const int th = th0 - tab[kk][2], tw = tw0 - tab[kk][3];
            float v = 0.0f;
            if (n < N && tab[kk][0] >= 0 && th >= 0 && tw >= 0 && th % g.sh == 0 && tw % g.sw == 0) {
                const int oh = th / g.sh, ow = tw / g.sw;
                if (oh < g.Ho && ow < g.Wo) v = (float)dyb[(long)tab[kk][0] * P + oh * g.Wo + ow];
            }
            s.b[kk][col] = E::put(v);
        }
        __syncthreads();
        ig_mma<E, S>(s, acc);
    }
    ig_result<E, S>(s, acc);
    if (n >= N) return;
    float *dxb = dx + ((long)b * g.C + (long)grp * Cg) * HW + hw;
    for (int i = t / S::BN; i < S::BM && m0 + i < Cg; i += IG_THREADS / S::BN) dxb[(long)(m0 + i) * HW] = s.c[i][col];
#else
    (void)g, (void)N, (void)dy, (void)w, (void)dx;
    __trap();
#endif
}

/* The weight gradient's part from split blockIdx.z % splits of group blockIdx.z / splits:
 * the k steps [splits' share) of K = B*Ho*Wo, into out (dw itself when there is one
 * split, else that split's slot of O*Cg*KH*KW floats). A thread loads one row k of both
 * tiles (consecutive threads, consecutive output pixels); ntab: the block's BN columns
 * (c*H*W, -1: past N; kh*dh; kw*dw); for the step's 32 rows, roff: the sample's
 * offsets in x and dy (-1: past K), rtab: oh*sh - ph, ow*sw - pw. */
template <class T, class E, class S>
static __global__ void mlc_ig_bwd_filter_kernel(const mlc_conv_geom g, const long B, const int splits, const T *x,
                                                const T *dy, float *out) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int ntab[S::BN][3], rtab[IG_BK][2];
    __shared__ long roff[IG_BK][2];
    const int grp = (int)blockIdx.z / splits, split = (int)blockIdx.z % splits, Cg = g.C / g.G, Og = g.O / g.G,
              KHW = g.KH * g.KW, N = Cg * KHW, P = g.Ho * g.Wo, HW = g.H * g.W, t = (int)threadIdx.x,
              m0 = (int)blockIdx.y * S::BM, n0 = (int)blockIdx.x * S::BN, row = t % IG_BK;
    const long K = B * P, steps = (K + IG_BK - 1) / IG_BK;
    const long k_begin = steps * split / splits * IG_BK, k_end = steps * (split + 1) / splits * IG_BK;
    if (t < S::BN) {
        const int n = n0 + t, c = n / KHW, r = n - c * KHW, kh = r / g.KW;
        ntab[t][0] = n < N ? c * HW : -1, ntab[t][1] = kh * g.dh, ntab[t][2] = (r - kh * g.KW) * g.dw;
    }
    const T *xg = x + (long)grp * Cg * HW, *dyg = dy + (long)grp * Og * P;
    ig_acc<E, S> acc;
    ig_zero<E, S>(acc);
    for (long k0 = k_begin; k0 < k_end; k0 += IG_BK) {
        __syncthreads();
        if (t < IG_BK) {
            const long k = k0 + t, b = k / P;
            const int p = (int)(k - b * P), oh = p / g.Wo, ow = p - oh * g.Wo;
            roff[t][0] = k < K ? b * g.C * HW : -1, roff[t][1] = b * g.O * P + p;
            rtab[t][0] = oh * g.sh - g.ph, rtab[t][1] = ow * g.sw - g.pw;
        }
        __syncthreads();
        const bool live = roff[row][0] >= 0;
        for (int i = t / IG_BK; i < S::BM; i += IG_THREADS / IG_BK)
            s.a[i][row] = E::put(live && m0 + i < Og ? (float)dyg[roff[row][1] + (long)(m0 + i) * P] : 0.0f);
        for (int j = t / IG_BK; j < S::BN; j += IG_THREADS / IG_BK) {
            const int ih = rtab[row][0] + ntab[j][1], iw = rtab[row][1] + ntab[j][2];
            const bool in = live && ntab[j][0] >= 0 && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
            s.b[row][j] = E::put(in ? (float)xg[roff[row][0] + ntab[j][0] + ih * g.W + iw] : 0.0f);
        }
        __syncthreads();
        ig_mma<E, S>(s, acc);
    }
    ig_result<E, S>(s, acc);
    const int n = n0 + t % S::BN;
    if (n >= N) return;
    float *ob = out + (long)split * g.O * N + (long)grp * Og * N + n;
    for (int i = t / S::BN; i < S::BM && m0 + i < Og; i += IG_THREADS / S::BN)
        ob[(long)(m0 + i) * N] = s.c[i][t % S::BN];
#else
    (void)g, (void)B, (void)splits, (void)x, (void)dy, (void)out;
    __trap();
#endif
}

/* dw[i] = the sum of the splits' slots, in slot order. */
static __global__ void mlc_ig_sum_splits_kernel(const int splits, const long len, const float *part, float *dw) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < len; i += (long)gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int k = 0; k < splits; k++) s += part[k * len + i];
        dw[i] = s;
    }
}

/* ---- host launchers ---- */

static void ig_check(const mlc_conv_geom *g, long B, long n) {
    const long big = 2147483647L;
    if (n >= big || (long)g->C * g->H * g->W >= big || (long)g->O * g->Ho * g->Wo >= big) {
        fprintf(stderr, "mlc: an implicit-GEMM convolution of %ld columns does not fit 32-bit indexing (batch %ld)\n",
                n, B);
        abort();
    }
}

static unsigned ig_tiles_of(long n, int tile) { return (unsigned)((n + tile - 1) / tile); }

template <class T, class E, class S>
static void ig_fwd(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *w, float *y) {
    const long N = B * g->Ho * g->Wo;
    ig_check(g, B, N);
    const dim3 grid(ig_tiles_of(N, S::BN), ig_tiles_of(g->O / g->G, S::BM), (unsigned)g->G);
    mlc_ig_fwd_kernel<T, E, S><<<grid, IG_THREADS, 0, stream>>>(*g, (int)N, (const T *)x, (const T *)w, y);
    MLC_LAUNCH_CHECK(stream);
}

template <class T, class E, class S>
static void ig_bwd_data(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy, const void *w, float *dx) {
    const long N = B * g->H * g->W;
    ig_check(g, B, N);
    const dim3 grid(ig_tiles_of(N, S::BN), ig_tiles_of(g->C / g->G, S::BM), (unsigned)g->G);
    mlc_ig_bwd_data_kernel<T, E, S><<<grid, IG_THREADS, 0, stream>>>(*g, (int)N, (const T *)dy, (const T *)w, dx);
    MLC_LAUNCH_CHECK(stream);
}

template <class T, class E, class S>
static void ig_bwd_filter(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *dy, float *dw,
                          float *ws, int splits) {
    const long N = (long)g->C / g->G * g->KH * g->KW, len = (long)g->O * N;
    ig_check(g, B, N);
    const dim3 grid(ig_tiles_of(N, S::BN), ig_tiles_of(g->O / g->G, S::BM), (unsigned)(g->G * splits));
    float *const out = splits > 1 ? ws : dw;
    mlc_ig_bwd_filter_kernel<T, E, S><<<grid, IG_THREADS, 0, stream>>>(*g, B, splits, (const T *)x, (const T *)dy, out);
    MLC_LAUNCH_CHECK(stream);
    if (splits > 1) {
        mlc_ig_sum_splits_kernel<<<mlc_grid(len), MLC_BLOCK, 0, stream>>>(splits, len, ws, dw);
        MLC_LAUNCH_CHECK(stream);
    }
}

/* The block tile from the result's rows M (mlc_ig_tile_rows). */
#define IG_SHAPE(fn, T, E, M, ...)                                 \
    do {                                                           \
        const int rows_ = mlc_ig_tile_rows(M);                     \
        if (rows_ == 16) fn<T, E, ig_shape<16>>(__VA_ARGS__);      \
        else if (rows_ == 32) fn<T, E, ig_shape<32>>(__VA_ARGS__); \
        else fn<T, E, ig_shape<64>>(__VA_ARGS__);                  \
    } while (0)

/* The operands' element type and the tensor cores' from the mode. */
#define IG_DISPATCH(fn, mode, M, ...)                                                     \
    do {                                                                                  \
        if ((mode) == MLC_BF16_STORED) IG_SHAPE(fn, mlc_bf16, ig_bf16, M, __VA_ARGS__);   \
        else if ((mode) == MLC_BF16_VALUES) IG_SHAPE(fn, float, ig_bf16, M, __VA_ARGS__); \
        else if ((mode) == MLC_TF32) IG_SHAPE(fn, float, ig_tf32, M, __VA_ARGS__);        \
        else {                                                                            \
            fprintf(stderr, "mlc: an implicit-GEMM convolution needs bf16 or TF32\n");    \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

void mlc_cuda_conv2d_fwd_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *w,
                                  float *y, int mode) {
    IG_DISPATCH(ig_fwd, mode, g->O / g->G, stream, g, B, x, w, y);
}

void mlc_cuda_conv2d_bwd_data_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy,
                                       const void *w, float *dx, int mode) {
    IG_DISPATCH(ig_bwd_data, mode, g->C / g->G, stream, g, B, dy, w, dx);
}

void mlc_cuda_conv2d_bwd_filter_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                                         const void *dy, float *dw, float *ws, int splits, int mode) {
    IG_DISPATCH(ig_bwd_filter, mode, g->O / g->G, stream, g, B, x, dy, dw, ws, splits);
}
