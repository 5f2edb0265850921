/* conv_implicit.cu - the CUDA convolution as implicit GEMMs (`--conv-algo implicit`,
 * mlc_kernels_cuda.h): no column matrix, each block gathers its tiles of the GEMM's
 * operands from the tensors themselves into shared memory and multiplies them on the
 * tensor cores with WMMA, bf16 (m16n16k16) or TF32 (m16n16k8) products and FP32 sums, or,
 * for floats without --tf32, with the CUDA cores' FP32 FMAs. The im2col path around
 * cuBLAS is conv.cu; which one a layer takes is the compiler's (compiler/targets/cuda/
 * conv.c).
 *
 * Each op is one GEMM per group, C[M][N] = sum over k of A[M][k] B[k][N]:
 *   forward          M = Og (o), N = B*Ho*Wo (b, oh, ow), k = (c, kh, kw) over Cg*KH*KW;
 *   input gradient   M = Cg (c), N = B*H*W (b, ih, iw), k = (o, kh, kw) over Og*KH*KW,
 *                    the taps whose output position is not on the stride's grid zero;
 *   weight gradient  M = Og (o), N = Cg*KH*KW (c, kh, kw), k = (b, oh, ow) over B*Ho*Wo,
 *                    in `splits` fixed ranges of k whose sums go to slots of ws and are
 *                    then added in slot order (no atomics).
 * A block computes a tile of C (16x128, 32x128 or 64x64, by M: mlc_conv_tiles.h) over
 * 32-wide steps of k, each of its 4 warps a 16x32 or 32x32 part (FP32: each thread a
 * TM x 8 part); every element of C is summed by one warp (thread) in a fixed order: the
 * same bits every run. The loop over k is
 * pipelined (ig_run): a step's loads are in flight into registers while the step before
 * is multiplied. The forward op and the input gradient run the compiler's epilogue on
 * each result as they store it (mlc_epi_apply, conv_epilogue.cuh: bias, ReLU, a residual
 * add, bf16 rounding, a ReLU's backward mask...), so that the output is written once.
 *
 * Sizes: N, and every sample's C*H*W and O*Ho*Wo, below 2^31 (the launchers check): the
 * index arithmetic is 32-bit but for the samples' offsets. */
#include <cuda_bf16.h>
#include <mma.h>

#include "../mlc_conv_tiles.h"
#include "../mlc_kernels_cuda.h"
#include "conv_epilogue.cuh"

namespace wmma = nvcuda::wmma;

enum { IG_BK = 32, IG_THREADS = 128 };

/* A block's tile of the result: BM rows (16, 32 or 64: mlc_ig_tile_rows) by BN columns
 * (mlc_ig_tile_cols), its 4 warps WM x WN, each FM x 2 fragments of 16x16. */
template <int BM_> struct ig_shape {
    enum { BM = BM_, FM = BM_ >= 32 ? 2 : 1, WM = BM_ / (16 * FM), WN = 4 / WM, BN = WN * 32 };
};

/* Before sm_80 there are no bf16 or TF32 tensor cores: compiled for those, the kernels
 * (FP32's too, to keep one rule) stop the program (mlc refuses --conv-algo implicit with
 * such a --cuda-arch, compiler/driver/main.c; a GPU found by the build can still be one). */
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
    enum { FK = 16, PAD = 8, SIMT = 0 };
    static __device__ __forceinline__ smem_t put(float v) { return __float2bfloat16_rn(v); }
};
struct ig_tf32 {
    typedef float smem_t;
    enum { FK = 8, PAD = 4, SIMT = 0 };
#if IG_TENSOR_CORES
    typedef wmma::precision::tf32 frag_t;
    static __device__ __forceinline__ smem_t put(float v) { return wmma::__float_to_tf32(v); }
#else
    typedef float frag_t;
    static __device__ __forceinline__ smem_t put(float v) { return v; }
#endif
};

/* FP32 (neither bf16 nor --tf32): the CUDA cores' FMAs instead of the tensor cores, each
 * thread TM x 8 results of the block's tile (ig_simt), summed k in order. */
struct ig_fp32 {
    typedef float smem_t;
    enum { PAD = 1, SIMT = 1 };
    static __device__ __forceinline__ smem_t put(float v) { return v; }
};

/* A thread's results under ig_fp32: rows tr + i*MT (i < TM) and columns tc + j*NT (j <
 * 8) of the block's tile, interleaved so that a warp's threads read consecutive columns
 * of b and few rows of a (no bank conflicts). */
template <class S> struct ig_simt {
    enum { NT = S::BN / 8, MT = IG_THREADS / NT, TM = S::BM / MT };
};

/* A block's operand tiles, a[m][k] and b[k][n], and its result tile c[m][n]. */
template <class E, class S> struct ig_tiles {
    typename E::smem_t a[S::BM][IG_BK + E::PAD];
    typename E::smem_t b[IG_BK][S::BN + E::PAD];
    float c[S::BM][S::BN + 4];
};

/* A warp's sums: FM x 2 fragments; under ig_fp32 a thread's TM x 8 floats. */
template <class E, class S> struct ig_acc { wmma::fragment<wmma::accumulator, 16, 16, E::FK, float> f[S::FM][2]; };
template <class S> struct ig_acc<ig_fp32, S> { float v[ig_simt<S>::TM][8]; };

/* Where this warp's part of the block's tile starts. */
template <class S> static __device__ __forceinline__ int ig_warp_row() {
    return (int)threadIdx.x / 32 / S::WN * 16 * S::FM;
}
template <class S> static __device__ __forceinline__ int ig_warp_col() { return (int)threadIdx.x / 32 % S::WN * 32; }

template <class E, class S> static __device__ __forceinline__ void ig_zero(ig_acc<E, S> &acc) {
    if constexpr (E::SIMT) {
        for (int i = 0; i < ig_simt<S>::TM; i++)
            for (int j = 0; j < 8; j++) acc.v[i][j] = 0.0f;
    } else {
        for (int i = 0; i < S::FM; i++)
            for (int j = 0; j < 2; j++) wmma::fill_fragment(acc.f[i][j], 0.0f);
    }
}

/* acc += this warp's (ig_fp32: this thread's) part of a . b over the tile's 32 k. */
template <class E, class S> static __device__ __forceinline__ void ig_mma(ig_tiles<E, S> &s, ig_acc<E, S> &acc) {
    if constexpr (E::SIMT) {
        typedef ig_simt<S> L;
        const int tr = (int)threadIdx.x / L::NT, tc = (int)threadIdx.x % L::NT;
        for (int kk = 0; kk < IG_BK; kk++) {
            float a[L::TM], b[8];
            for (int i = 0; i < L::TM; i++) a[i] = s.a[tr + i * L::MT][kk];
            for (int j = 0; j < 8; j++) b[j] = s.b[kk][tc + j * L::NT];
            for (int i = 0; i < L::TM; i++)
                for (int j = 0; j < 8; j++) acc.v[i][j] = fmaf(a[i], b[j], acc.v[i][j]);
        }
    } else {
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
}

/* The sums into s.c, for every thread to read. */
template <class E, class S> static __device__ __forceinline__ void ig_result(ig_tiles<E, S> &s, ig_acc<E, S> &acc) {
    __syncthreads(); /* the last tile is read */
    if constexpr (E::SIMT) {
        typedef ig_simt<S> L;
        const int tr = (int)threadIdx.x / L::NT, tc = (int)threadIdx.x % L::NT;
        for (int i = 0; i < L::TM; i++)
            for (int j = 0; j < 8; j++) s.c[tr + i * L::MT][tc + j * L::NT] = acc.v[i][j];
    } else {
        const int wm = ig_warp_row<S>(), wn = ig_warp_col<S>();
        for (int i = 0; i < S::FM; i++)
            for (int j = 0; j < 2; j++)
                wmma::store_matrix_sync(&s.c[wm + 16 * i][wn + 16 * j], acc.f[i][j], S::BN + 4, wmma::mem_row_major);
    }
    __syncthreads();
}

/* The k loop the three ops share, pipelined: while one step's tiles are multiplied, the
 * threads' loads of the next step are in flight into registers. The op (one of
 * the three below) fills its per-step tables for k0 into slot `buf` of two (tables(k0,
 * buf), threads < 32: the next step's are written while this one's may still be read),
 * loads a thread's elements of both tiles into registers (fetch: the operands as stored,
 * zero outside the input, past K, or off the stride's grid) and stores them into the
 * tiles (put). k_begin and k_end are the block's: every thread takes the barriers. */
template <class E, class S, class Op>
static __device__ __forceinline__ void ig_run(const Op &op, ig_tiles<E, S> &s, ig_acc<E, S> &acc, long k_begin,
                                              long k_end) {
    ig_zero<E, S>(acc);
    if (k_begin >= k_end) return;
    typename Op::Regs r;
    op.tables(k_begin, 0);
    __syncthreads();
    op.fetch(k_begin, 0, r);
    for (long k0 = k_begin, buf = 0; k0 < k_end; k0 += IG_BK, buf ^= 1) {
        op.put(r, s);
        const bool more = k0 + IG_BK < k_end;
        if (more) op.tables(k0 + IG_BK, (int)buf ^ 1);
        __syncthreads(); /* this step's tiles and the next step's tables are written */
        if (more) op.fetch(k0 + IG_BK, (int)buf ^ 1, r);
        ig_mma<E, S>(s, acc);
        __syncthreads(); /* the tiles are read before the next put */
    }
}

/* A thread's elements of a step: A's BM x 32 and B's 32 x BN over 128 threads. */
template <class T, class S> struct ig_regs { T a[S::BM * IG_BK / IG_THREADS], b[IG_BK * S::BN / IG_THREADS]; };

/* The forward op's and the input gradient's tiles from a thread's registers: A at column
 * t % 32 of rows t / 32 + 4j, B down column t % BN. */
template <class E, class S, class Regs>
static __device__ __forceinline__ void ig_put_column(const Regs &r, ig_tiles<E, S> &s) {
    const int t = (int)threadIdx.x;
    for (int j = 0; j < S::BM * IG_BK / IG_THREADS; j++)
        s.a[t / IG_BK + j * (IG_THREADS / IG_BK)][t % IG_BK] = E::put((float)r.a[j]);
    for (int j = 0; j < IG_BK * S::BN / IG_THREADS; j++)
        s.b[t / S::BN + j * (IG_THREADS / S::BN)][t % S::BN] = E::put((float)r.b[j]);
}

/* Column t % BN of the result's first `rows` rows, row i to out[i * stride]. */
template <class E, class S>
static __device__ __forceinline__ void ig_write_column(const ig_tiles<E, S> &s, float *out, long stride, int rows) {
    const int t = (int)threadIdx.x;
    for (int i = t / S::BN; i < S::BM && i < rows; i += IG_THREADS / S::BN) out[i * stride] = s.c[i][t % S::BN];
}

/* Column t % BN of the result's first `rows` rows, channels c0, c0 + 1, ... of an output
 * of a sample-major layout, row i to out[at0 + i * stride], each through the epilogue. */
template <class E, class S>
static __device__ __forceinline__ void ig_write_channels(const ig_tiles<E, S> &s, float *out, long at0, long stride,
                                                         int c0, int rows, const mlc_conv_epilogue &ep) {
    const int t = (int)threadIdx.x;
    for (int i = t / S::BN; i < S::BM && i < rows; i += IG_THREADS / S::BN) {
        const long at = at0 + (long)i * stride;
        out[at] = mlc_epi_apply(ep, s.c[i][t % S::BN], c0 + i, at);
    }
}

/* The forward op: y = conv(x, w) for group blockIdx.z. A thread loads A (w) at column
 * t % 32 of rows t / 32 + 4j, and one column of B, an output pixel, which it also writes
 * in the result; tab: the step's 32 taps (input channel offset, -1 past K; kh*dh; kw*dw). */
template <class T, class E, class S> struct ig_fwd_op {
    typedef ig_regs<T, S> Regs;
    const mlc_conv_geom g;
    const int N, Og, K, P, t, m0, n;
    int (*const tab)[IG_BK][3];
    int b = 0, p = 0, ih0 = 0, iw0 = 0;
    const T *xb, *wg;
    __device__ ig_fwd_op(const mlc_conv_geom &g_, int N_, const T *x, const T *w, int (*tab_)[IG_BK][3])
        : g(g_), N(N_), Og(g_.O / g_.G), K(g_.C / g_.G * g_.KH * g_.KW), P(g_.Ho * g_.Wo), t((int)threadIdx.x),
          m0((int)blockIdx.y * S::BM), n((int)blockIdx.x * S::BN + (int)threadIdx.x % S::BN), tab(tab_) {
        if (n < N) {
            b = n / P, p = n - b * P;
            const int oh = p / g.Wo, ow = p - oh * g.Wo;
            ih0 = oh * g.sh - g.ph, iw0 = ow * g.sw - g.pw;
        }
        xb = x + ((long)b * g.C + (long)blockIdx.z * (g.C / g.G)) * g.H * g.W;
        wg = w + (long)blockIdx.z * Og * K;
    }
    __device__ void tables(long k0, int buf) const {
        if (t >= IG_BK) return;
        const int k = (int)k0 + t, KHW = g.KH * g.KW, c = k / KHW, r = k - c * KHW, kh = r / g.KW;
        tab[buf][t][0] = k < K ? c * g.H * g.W : -1, tab[buf][t][1] = kh * g.dh,
        tab[buf][t][2] = (r - kh * g.KW) * g.dw;
    }
    __device__ void fetch(long k0, int buf, Regs &r) const {
        const int k = (int)k0 + t % IG_BK;
        for (int j = 0; j < S::BM * IG_BK / IG_THREADS; j++) {
            const int m = m0 + t / IG_BK + j * (IG_THREADS / IG_BK);
            r.a[j] = m < Og && k < K ? wg[(long)m * K + k] : T{};
        }
        for (int j = 0; j < IG_BK * S::BN / IG_THREADS; j++) {
            const int *e = tab[buf][t / S::BN + j * (IG_THREADS / S::BN)], ih = ih0 + e[1], iw = iw0 + e[2];
            const bool in = n < N && e[0] >= 0 && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
            r.b[j] = in ? xb[e[0] + ih * g.W + iw] : T{};
        }
    }
    __device__ void put(const Regs &r, ig_tiles<E, S> &s) const { ig_put_column<E, S>(r, s); }
    __device__ void write(const ig_tiles<E, S> &s, float *y, const mlc_conv_epilogue &ep) const {
        if (n >= N) return;
        ig_write_channels<E, S>(s, y, ((long)b * g.O + (long)blockIdx.z * Og + m0) * P + p, P,
                                (int)blockIdx.z * Og + m0, Og - m0, ep);
    }
};

/* The input gradient's op: dx = conv2d_bwd_data(dy, w) for group blockIdx.z. A thread's
 * column of B is an input pixel (b, ih, iw), and tap k = (o, kh, kw) reads dy at oh = (ih
 * + ph - kh*dh) / sh where that divides (likewise ow); tab: o (-1: past K), kh*KW + kw,
 * kh*dh, kw*dw. */
template <class T, class E, class S> struct ig_bwd_data_op {
    typedef ig_regs<T, S> Regs;
    const mlc_conv_geom g;
    const int N, Cg, Og, KHW, K, P, HW, t, m0, n;
    int (*const tab)[IG_BK][4];
    int b = 0, hw = 0, th0 = 0, tw0 = 0;
    const T *dyb, *wg;
    __device__ ig_bwd_data_op(const mlc_conv_geom &g_, int N_, const T *dy, const T *w, int (*tab_)[IG_BK][4])
        : g(g_), N(N_), Cg(g_.C / g_.G), Og(g_.O / g_.G), KHW(g_.KH * g_.KW), K(Og * KHW), P(g_.Ho * g_.Wo),
          HW(g_.H * g_.W), t((int)threadIdx.x), m0((int)blockIdx.y * S::BM),
          n((int)blockIdx.x * S::BN + (int)threadIdx.x % S::BN), tab(tab_) {
        if (n < N) {
            b = n / HW, hw = n - b * HW;
            const int ih = hw / g.W;
            th0 = ih + g.ph, tw0 = hw - ih * g.W + g.pw;
        }
        dyb = dy + ((long)b * g.O + (long)blockIdx.z * Og) * P;
        wg = w + (long)blockIdx.z * Og * Cg * KHW;
    }
    __device__ void tables(long k0, int buf) const {
        if (t >= IG_BK) return;
        const int k = (int)k0 + t, o = k / KHW, r = k - o * KHW, kh = r / g.KW;
        int *e = tab[buf][t];
        e[0] = k < K ? o : -1, e[1] = r, e[2] = kh * g.dh, e[3] = (r - kh * g.KW) * g.dw;
    }
    __device__ void fetch(long k0, int buf, Regs &r) const {
        (void)k0;
        const int *ea = tab[buf][t % IG_BK];
        for (int j = 0; j < S::BM * IG_BK / IG_THREADS; j++) {
            const int c = m0 + t / IG_BK + j * (IG_THREADS / IG_BK);
            r.a[j] = c < Cg && ea[0] >= 0 ? wg[((long)ea[0] * Cg + c) * KHW + ea[1]] : T{};
        }
        for (int j = 0; j < IG_BK * S::BN / IG_THREADS; j++) {
            const int *e = tab[buf][t / S::BN + j * (IG_THREADS / S::BN)], th = th0 - e[2], tw = tw0 - e[3];
            const bool on = n < N && e[0] >= 0 && th >= 0 && tw >= 0 && th % g.sh == 0 && tw % g.sw == 0;
            const int oh = th / g.sh, ow = tw / g.sw;
            r.b[j] = on && oh < g.Ho && ow < g.Wo ? dyb[(long)e[0] * P + oh * g.Wo + ow] : T{};
        }
    }
    __device__ void put(const Regs &r, ig_tiles<E, S> &s) const { ig_put_column<E, S>(r, s); }
    __device__ void write(const ig_tiles<E, S> &s, float *dx, const mlc_conv_epilogue &ep) const {
        if (n >= N) return;
        ig_write_channels<E, S>(s, dx, ((long)b * g.C + (long)blockIdx.z * Cg + m0) * HW + hw, HW,
                                (int)blockIdx.z * Cg + m0, Cg - m0, ep);
    }
};

/* The weight gradient's op, for split blockIdx.z % splits of group blockIdx.z / splits.
 * A thread loads one row k of both tiles (consecutive threads, consecutive output
 * pixels): A (dy) at rows t / 32 + 4j, B (x) at columns t / 32 + 4j. ntab: the block's BN
 * columns (c*H*W, -1: past N; kh*dh; kw*dw), written before the loop's first barrier;
 * per step, roff: the row's sample offsets in x and dy (-1: past K), rtab: oh*sh - ph,
 * ow*sw - pw. */
template <class T, class E, class S> struct ig_bwd_filter_op {
    typedef ig_regs<T, S> Regs;
    const mlc_conv_geom g;
    const long K;
    const int Og, N, P, HW, t, m0, n0, row;
    const int (*ntab)[3];
    int (*const rtab)[IG_BK][2];
    long (*const roff)[IG_BK][2];
    const T *xg, *dyg;
    __device__ ig_bwd_filter_op(const mlc_conv_geom &g_, long B, int grp, const T *x, const T *dy, int (*ntab_)[3],
                                int (*rtab_)[IG_BK][2], long (*roff_)[IG_BK][2])
        : g(g_), K(B * g_.Ho * g_.Wo), Og(g_.O / g_.G), N(g_.C / g_.G * g_.KH * g_.KW), P(g_.Ho * g_.Wo),
          HW(g_.H * g_.W), t((int)threadIdx.x), m0((int)blockIdx.y * S::BM), n0((int)blockIdx.x * S::BN),
          row((int)threadIdx.x % IG_BK), ntab(ntab_), rtab(rtab_), roff(roff_) {
        if (t < S::BN) {
            const int KHW = g.KH * g.KW, n = n0 + t, c = n / KHW, r = n - c * KHW, kh = r / g.KW;
            ntab_[t][0] = n < N ? c * HW : -1, ntab_[t][1] = kh * g.dh, ntab_[t][2] = (r - kh * g.KW) * g.dw;
        }
        xg = x + (long)grp * (g.C / g.G) * HW;
        dyg = dy + (long)grp * Og * P;
    }
    __device__ void tables(long k0, int buf) const {
        if (t >= IG_BK) return;
        const long k = k0 + t, b = k / P;
        const int p = (int)(k - b * P), oh = p / g.Wo, ow = p - oh * g.Wo;
        roff[buf][t][0] = k < K ? b * g.C * HW : -1, roff[buf][t][1] = b * g.O * P + p;
        rtab[buf][t][0] = oh * g.sh - g.ph, rtab[buf][t][1] = ow * g.sw - g.pw;
    }
    __device__ void fetch(long k0, int buf, Regs &r) const {
        (void)k0;
        const long xo = roff[buf][row][0], dyo = roff[buf][row][1];
        const int ih0 = rtab[buf][row][0], iw0 = rtab[buf][row][1];
        for (int j = 0; j < S::BM * IG_BK / IG_THREADS; j++) {
            const int m = m0 + t / IG_BK + j * (IG_THREADS / IG_BK);
            r.a[j] = xo >= 0 && m < Og ? dyg[dyo + (long)m * P] : T{};
        }
        for (int j = 0; j < IG_BK * S::BN / IG_THREADS; j++) {
            const int *e = ntab[t / IG_BK + j * (IG_THREADS / IG_BK)], ih = ih0 + e[1], iw = iw0 + e[2];
            const bool in = xo >= 0 && e[0] >= 0 && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
            r.b[j] = in ? xg[xo + e[0] + ih * g.W + iw] : T{};
        }
    }
    __device__ void put(const Regs &r, ig_tiles<E, S> &s) const {
        for (int j = 0; j < S::BM * IG_BK / IG_THREADS; j++)
            s.a[t / IG_BK + j * (IG_THREADS / IG_BK)][row] = E::put((float)r.a[j]);
        for (int j = 0; j < IG_BK * S::BN / IG_THREADS; j++)
            s.b[row][t / IG_BK + j * (IG_THREADS / IG_BK)] = E::put((float)r.b[j]);
    }
    /* into out (dw itself for one split, else the split's slot of O*Cg*KH*KW floats) */
    __device__ void write(const ig_tiles<E, S> &s, float *out, int split, int grp) const {
        const int n = n0 + t % S::BN;
        if (n >= N) return;
        ig_write_column<E, S>(s, out + ((long)split * g.O + (long)grp * Og + m0) * N + n, N, Og - m0);
    }
};

/* ---- the kernels: one block per tile of the result (and per group, and per split of the
 * weight gradient's sum) ---- */

template <class T, class E, class S>
static __global__ void mlc_ig_fwd_kernel(const mlc_conv_geom g, const int N, const T *x, const T *w, float *y,
                                         const mlc_conv_epilogue ep) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int tab[2][IG_BK][3];
    const ig_fwd_op<T, E, S> op(g, N, x, w, tab);
    ig_acc<E, S> acc;
    ig_run<E, S>(op, s, acc, 0, op.K);
    ig_result<E, S>(s, acc);
    op.write(s, y, ep);
#else
    (void)g, (void)N, (void)x, (void)w, (void)y, (void)ep;
    __trap();
#endif
}

template <class T, class E, class S>
static __global__ void mlc_ig_bwd_data_kernel(const mlc_conv_geom g, const int N, const T *dy, const T *w, float *dx,
                                              const mlc_conv_epilogue ep) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int tab[2][IG_BK][4];
    const ig_bwd_data_op<T, E, S> op(g, N, dy, w, tab);
    ig_acc<E, S> acc;
    ig_run<E, S>(op, s, acc, 0, op.K);
    ig_result<E, S>(s, acc);
    op.write(s, dx, ep);
#else
    (void)g, (void)N, (void)dy, (void)w, (void)dx, (void)ep;
    __trap();
#endif
}

/* The k steps of split `split` of `splits`: [steps*split/splits, steps*(split+1)/splits). */
template <class T, class E, class S>
static __global__ void mlc_ig_bwd_filter_kernel(const mlc_conv_geom g, const long B, const int splits, const T *x,
                                                const T *dy, float *out) {
#if IG_TENSOR_CORES
    __shared__ __align__(128) ig_tiles<E, S> s;
    __shared__ int ntab[S::BN][3], rtab[2][IG_BK][2];
    __shared__ long roff[2][IG_BK][2];
    const int grp = (int)blockIdx.z / splits, split = (int)blockIdx.z % splits;
    const ig_bwd_filter_op<T, E, S> op(g, B, grp, x, dy, ntab, rtab, roff);
    const long steps = (op.K + IG_BK - 1) / IG_BK;
    ig_acc<E, S> acc;
    ig_run<E, S>(op, s, acc, steps * split / splits * IG_BK, steps * (split + 1) / splits * IG_BK);
    ig_result<E, S>(s, acc);
    op.write(s, out, split, grp);
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
static void ig_fwd(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *w, float *y,
                   const mlc_conv_epilogue *ep) {
    const long N = B * g->Ho * g->Wo;
    ig_check(g, B, N);
    const dim3 grid(ig_tiles_of(N, S::BN), ig_tiles_of(g->O / g->G, S::BM), (unsigned)g->G);
    const mlc_conv_epilogue e = mlc_epi_arg(ep);
    mlc_ig_fwd_kernel<T, E, S><<<grid, IG_THREADS, 0, stream>>>(*g, (int)N, (const T *)x, (const T *)w, y, e);
    MLC_LAUNCH_CHECK(stream);
}

template <class T, class E, class S>
static void ig_bwd_data(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy, const void *w, float *dx,
                        const mlc_conv_epilogue *ep) {
    const long N = B * g->H * g->W;
    ig_check(g, B, N);
    const dim3 grid(ig_tiles_of(N, S::BN), ig_tiles_of(g->C / g->G, S::BM), (unsigned)g->G);
    const mlc_conv_epilogue e = mlc_epi_arg(ep);
    mlc_ig_bwd_data_kernel<T, E, S><<<grid, IG_THREADS, 0, stream>>>(*g, (int)N, (const T *)dy, (const T *)w, dx, e);
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

/* The operands' element type and the products' (bf16 or TF32 tensor cores, or FP32 FMAs)
 * from the mode. */
#define IG_DISPATCH(fn, mode, M, ...)                                                               \
    do {                                                                                            \
        if ((mode) == MLC_BF16_STORED) IG_SHAPE(fn, mlc_bf16, ig_bf16, M, __VA_ARGS__);             \
        else if ((mode) == MLC_BF16_VALUES) IG_SHAPE(fn, float, ig_bf16, M, __VA_ARGS__);           \
        else if ((mode) == MLC_TF32) IG_SHAPE(fn, float, ig_tf32, M, __VA_ARGS__);                  \
        else if ((mode) == MLC_FP32) IG_SHAPE(fn, float, ig_fp32, M, __VA_ARGS__);                  \
        else {                                                                                      \
            fprintf(stderr, "mlc: an implicit-GEMM convolution in unknown mode %d\n", (int)(mode)); \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

void mlc_cuda_conv2d_fwd_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x, const void *w,
                                  float *y, const mlc_conv_epilogue *ep, int mode) {
    IG_DISPATCH(ig_fwd, mode, g->O / g->G, stream, g, B, x, w, y, ep);
}

void mlc_cuda_conv2d_bwd_data_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy,
                                       const void *w, float *dx, const mlc_conv_epilogue *ep, int mode) {
    IG_DISPATCH(ig_bwd_data, mode, g->C / g->G, stream, g, B, dy, w, dx, ep);
}

void mlc_cuda_conv2d_bwd_filter_implicit(cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                                         const void *dy, float *dw, float *ws, int splits, int mode) {
    IG_DISPATCH(ig_bwd_filter, mode, g->O / g->G, stream, g, B, x, dy, dw, ws, splits);
}
