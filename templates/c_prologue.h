/* ---- templates/c_prologue.h: the start of every C model mlc emits ---- */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
#endif

#include "mlcrt.h"

/* The helpers below are pasted into every model; most models use only some of them. */
#define MLC_HELPER static inline __attribute__((unused))
/* The conv kernels stay out of line: inlined into an OpenMP region, GCC ran out of
 * registers for their pointers and reloaded them from the stack in the inner loops. */
#define MLC_KERNEL static __attribute__((unused, noinline))

/* One thread pool: OpenMP's. OpenBLAS runs single-threaded inside it; a second pool of
 * spinning OpenBLAS threads would fight the OpenMP team for the same cores. */
MLC_HELPER void mlc_c_set_threads(int n) {
    if (n < 1) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

/* --check-finite: 1 (after printing which op and .mdl line) if p[0..n) holds a NaN/Inf. */
MLC_HELPER int mlc_check_finite(const float *p, long n, const char *node, const char *where) {
    for (long i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            fprintf(stderr, "error: %s (%s) produced %s at element %ld\n", node, where, isnan(p[i]) ? "NaN" : "Inf", i);
            return 1;
        }
    return 0;
}

/* --check-finite inside a fused loop: 1 (after printing) if the value v of a node at
 * element `at` is a NaN/Inf. */
MLC_HELPER int mlc_nonfinite(float v, long at, const char *node, const char *where) {
    if (isfinite(v)) return 0;
    fprintf(stderr, "error: %s (%s) produced %s at element %ld\n", node, where, isnan(v) ? "NaN" : "Inf", at);
    return 1;
}

/* Row-major C[M,N] = op(A)[M,K] op(B)[K,N]. Large products are split across the OpenMP
 * team along the longer of M and N, in blocks of 16; each thread runs one single-threaded
 * cblas_sgemm, so a block's result does not depend on the other blocks.
 *
 * mlc_sgemm_block is one thread's share, called inside a parallel region that
 * mlc_sgemm_parallel says to open: it computes rows [*r0, *r1) x columns [*c0, *c1) of C,
 * which a fused epilogue (bias, activation) then finishes while they are in cache. */
MLC_HELPER int mlc_sgemm_parallel(int M, int N, int K) {
    return (long)M * N * K > (1L << 18) && (M >= N ? M : N) >= 32;
}

MLC_HELPER void mlc_sgemm_block(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                                float *C, int ldc, long *r0, long *r1, long *c0, long *c1) {
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int split_m = M >= N;
    const int len = split_m ? M : N;
    int nt = 1, id = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    id = omp_get_thread_num();
#endif
    const int blocks = (len + 15) / 16;
    const int b0 = (int)((long)blocks * id / nt), b1 = (int)((long)blocks * (id + 1) / nt);
    const int lo = b0 * 16 < len ? b0 * 16 : len, hi = b1 * 16 < len ? b1 * 16 : len;
    *r0 = split_m ? lo : 0, *r1 = split_m ? hi : M;
    *c0 = split_m ? 0 : lo, *c1 = split_m ? N : hi;
    if (hi <= lo) return;
    if (split_m)
        cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, 1.0f, ta ? A + lo : A + (long)lo * lda, lda, B, ldb, 0.0f,
                    C + (long)lo * ldc, ldc);
    else
        cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, 1.0f, A, lda, tb ? B + (long)lo * ldb : B + lo, ldb, 0.0f,
                    C + lo, ldc);
}

MLC_HELPER void mlc_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc) {
#pragma omp parallel if (mlc_sgemm_parallel(M, N, K))
    {
        long r0, r1, c0, c1;
        mlc_sgemm_block(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, &r0, &r1, &c0, &c1);
    }
}

/* ---- convolution and pooling (NCHW), used by the code conv2d / *_pool2d emit ---- */

typedef struct mlc_conv_geom {
    int C, H, W;    /* input channels and size */
    int O, KH, KW;  /* output channels, kernel */
    int sh, sw, ph, pw, dh, dw, G;
    int Ho, Wo;     /* output size */
} mlc_conv_geom;

/* 8-float vectors (GCC vector extensions: one AVX register with -march=native, a pair of
 * SSE registers without), for the convolution kernels and batch norm's sums. */
typedef float mlc_v8 __attribute__((vector_size(32)));
typedef float mlc_v8u __attribute__((vector_size(32), aligned(4), __may_alias__));
#define MLC_LD(p) (*(const mlc_v8u *)(const void *)(p))
#define MLC_ST(p, v) (*(mlc_v8u *)(void *)(p) = (v))
#define MLC_BC(s) ((mlc_v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#if defined(__FMA__) && defined(__AVX__)
#define MLC_FMA(a, b, c) ((mlc_v8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#else
#define MLC_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* The sum of a vector's lanes, in a fixed order */
MLC_HELPER float mlc_hsum8(const mlc_v8 *v) {
    float t[8];
    memcpy(t, v, sizeof t);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

/* Hides the value of an index from the optimiser: GCC turns the short copy and zeroing
 * loops below into memcpy / memset calls otherwise, which cost more than the loops for
 * image rows of 8 to 32 floats. It emits no instruction. */
#if defined(__GNUC__) || defined(__clang__)
#define MLC_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define MLC_OPAQUE(v) ((void)0)
#endif

/* d[0..n) = s[0..n) for the short rows of images: inline, no library call; a row of 8
 * or more ends with the 8 floats before its end (some copied twice), not a scalar loop */
MLC_HELPER void mlc_copy_row(float *d, const float *s, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        MLC_OPAQUE(i);
        MLC_ST(d + i, MLC_LD(s + i));
    }
    if (i == n) return;
    if (n >= 8) {
        MLC_ST(d + n - 8, MLC_LD(s + n - 8));
        return;
    }
    for (; i < n; i++) d[i] = s[i];
}

/* d[0..n) = 0 in whole vectors, so up to 7 floats past d + n are zeroed too: for padding
 * rows written in address order, where what follows is written afterwards. The border
 * loops a float at a time cost more than copying a 32-float row. */
MLC_HELPER void mlc_zero_spill(float *d, long n) {
    for (long i = 0; i < n; i += 8) {
        MLC_OPAQUE(i);
        MLC_ST(d + i, MLC_BC(0.0f));
    }
}

/* Asks for 64-byte lines l0 <= l < l1 from p on: the next sample's data, fetched from
 * memory while the kernels work on this one (rw: 1 to write them) */
#define MLC_PREFETCH_LINES(p, l0, l1, rw)                                                                      \
    do {                                                                                                       \
        for (long l_ = (l0); l_ < (l1); l_++) __builtin_prefetch((const char *)(p) + l_ * 64, (rw), 3);        \
    } while (0)

MLC_HELPER void mlc_zero_row(float *d, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) MLC_ST(d + i, MLC_BC(0.0f));
    for (; i < n; i++) d[i] = 0.0f;
}

/* d[j*ldd + i] = s[i*lds + j] for i, j < 8: an 8x8 transpose in registers where the
 * compiler has __builtin_shufflevector (clang, GCC 12 on), else element by element. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define MLC_SHUF(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
MLC_HELPER void mlc_transpose8(const float *s, long lds, float *d, long ldd) {
    const mlc_v8 r0 = MLC_LD(s), r1 = MLC_LD(s + lds), r2 = MLC_LD(s + 2 * lds), r3 = MLC_LD(s + 3 * lds);
    const mlc_v8 r4 = MLC_LD(s + 4 * lds), r5 = MLC_LD(s + 5 * lds), r6 = MLC_LD(s + 6 * lds), r7 = MLC_LD(s + 7 * lds);
    /* pairs of rows interleaved within 4-float halves, then pairs of pairs, then halves */
    const mlc_v8 t0 = MLC_SHUF(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13), t1 = MLC_SHUF(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t2 = MLC_SHUF(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13), t3 = MLC_SHUF(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t4 = MLC_SHUF(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13), t5 = MLC_SHUF(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t6 = MLC_SHUF(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13), t7 = MLC_SHUF(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 u0 = MLC_SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), u1 = MLC_SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u2 = MLC_SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), u3 = MLC_SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u4 = MLC_SHUF(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13), u5 = MLC_SHUF(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u6 = MLC_SHUF(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13), u7 = MLC_SHUF(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
    MLC_ST(d, MLC_SHUF(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + ldd, MLC_SHUF(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 2 * ldd, MLC_SHUF(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 3 * ldd, MLC_SHUF(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 4 * ldd, MLC_SHUF(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 5 * ldd, MLC_SHUF(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 6 * ldd, MLC_SHUF(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 7 * ldd, MLC_SHUF(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15));
}
#else
MLC_HELPER void mlc_transpose8(const float *s, long lds, float *d, long ldd) {
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) d[j * ldd + i] = s[i * lds + j];
}
#endif

/* d[i] = s[2i] for i < n: a stride-2 phase of an image row, which reads s[0 .. 2n-2] only.
 * Element by element this was a tenth of the strided convolutions' time; here two loads
 * and a shuffle give 8, and the last 8 (n >= 9) are the odd lanes of the 16 floats that
 * end at s[2n-2], so nothing past the row is read. */
MLC_HELPER void mlc_gather2_row(float *d, const float *s, long n) {
    long i = 0;
#ifdef MLC_SHUF
    for (; i + 9 <= n; i += 8)
        MLC_ST(d + i, MLC_SHUF(MLC_LD(s + 2 * i), MLC_LD(s + 2 * i + 8), 0, 2, 4, 6, 8, 10, 12, 14));
    if (i < n && n >= 9) {
        const long t = n - 8;
        MLC_ST(d + t, MLC_SHUF(MLC_LD(s + 2 * t - 1), MLC_LD(s + 2 * t + 7), 1, 3, 5, 7, 9, 11, 13, 15));
        return;
    }
#endif
    for (; i < n; i++) d[i] = s[2 * i];
}

/* How one convolution's work is cut; compiler/targets/c/conv.c picks the numbers from the
 * geometry, and the same numbers size its workspace: `slots` scratch slots of `slot`
 * floats (one per thread: at most that many threads work on the op; the model makes one
 * per thread of the team it is created under, mlc_scratch_slots), then a part the
 * threads share.
 *
 * All three ops go through the same vector kernels, without column matrices: each
 * sample's input (for the input gradient: dy) is zero-padded, split into stride phases
 * where the convolution is strided, and the GEMM reads the column matrix's rows in place
 * as shifted views of it (mlc_shift_*, mlc_bwd_* below). A sample is a piece of work.
 *
 * Every output element is computed by one thread in an order that does not depend on
 * the thread count, so neither do the results: the weight gradient is summed in min(B,
 * red) fixed chunks of samples, one thread each, and the chunks' sums are added in
 * chunk order. */
typedef struct mlc_conv_plan {
    int spt;   /* weight gradient: samples per step */
    int slots; /* scratch slots */
    int red;   /* weight gradient: at most this many chunks */
    long slot; /* floats per slot */
} mlc_conv_plan;

/* The scratch slots a model allocates when it is created: one per thread of the OpenMP
 * team it will run with (set before creating it: the trainer's --threads). A team grown
 * later still works, with no more threads per conv than there are slots. */
MLC_HELPER int mlc_scratch_slots(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Threads for `work` independent pieces: no more than the slots or the pieces. */
MLC_HELPER int mlc_conv_team(const mlc_conv_plan *pl, long work) {
    long n = 1;
#ifdef _OPENMP
    n = omp_get_max_threads();
#endif
    if (n > pl->slots) n = pl->slots;
    if (n > work) n = work;
    return n < 1 ? 1 : (int)n;
}

/* This thread's scratch slot */
MLC_HELPER float *mlc_conv_slot(const mlc_conv_plan *pl, float *ws) {
#ifdef _OPENMP
    return ws + (long)omp_get_thread_num() * pl->slot;
#else
    return ws;
#endif
}

/* ---- shifted rows ----
 * Input x [C][H][W] is zero-padded to xp [C][Hp][Wp] (Hp = H + 2ph, Wp = W + 2pw) and
 * split into stride phases, planes of Hq x Wq (Hq = ceil(Hp/sh), Wq = ceil(Wp/sw)):
 * xq[c][a][b][i][j] = xp[c][sh*i + pa[a]][sw*j + pb[b]], for the row phases pa the taps
 * use (the distinct kh*dh % sh, nph of them, ascending) and likewise the column phases
 * pb (npw of them). Output (oh, ow) reads, for tap k = (c, kh, kw), xp[c][sh*oh + kh*dh]
 * [sw*ow + kw*dw]: phase kh*dh % sh, kw*dw % sw at (oh + kh*dh / sh, ow + kw*dw / sw),
 * which is the flat index q + off[k] with q = oh*Wq + ow, off[k] = ((c*nph + a)*npw + b)
 * *Hq*Wq + (kh*dh / sh)*Wq + kw*dw / sw (a, b: the phases' ranks).
 * So over q, row k of the column matrix is xq shifted by off[k]: no column matrix is
 * built. The q with ow >= Wo are junk: the forward kernel walks q in 8-column segments
 * (mlc_shift_segs), which may compute some and drop them; the weight-gradient kernel
 * skips them. q runs over [0, nq), nq = (Ho-1)*Wq + Wo rounded up to 8, and xq ends with
 * 32 zeros, so every read is in initialised memory. */

/* mlc_shift layout of a geometry's input: the numbers of row and column phases used,
 * plane = Hq*Wq floats, xs floats per sample (C channels' planes and 32 zeros, rounded up
 * to 16), the q count nq */
typedef struct mlc_shift_dims {
    long Hq, Wq, plane, xs, nq;
    int nph, npw;
} mlc_shift_dims;

/* The number of distinct tap phases k*d % s (k < n) below p: phase p's rank, or with
 * p = s their count */
MLC_HELPER int mlc_phase_rank(int n, int d, int s, int p) {
    int r = 0;
    for (int k = 0; k < n; k++) {
        int first = 1;
        for (int j = 0; j < k; j++) first &= (long)j * d % s != (long)k * d % s;
        r += first && (long)k * d % s < p;
    }
    return r;
}

/* Whether some tap k < n has phase p */
MLC_HELPER int mlc_phase_used(int n, int d, int s, int p) {
    for (int k = 0; k < n; k++)
        if ((long)k * d % s == p) return 1;
    return 0;
}

MLC_HELPER mlc_shift_dims mlc_shift_dims_of(const mlc_conv_geom *g) {
    mlc_shift_dims d;
    d.Hq = (g->H + 2L * g->ph + g->sh - 1) / g->sh, d.Wq = (g->W + 2L * g->pw + g->sw - 1) / g->sw;
    d.plane = d.Hq * d.Wq;
    d.nph = mlc_phase_rank(g->KH, g->dh, g->sh, g->sh), d.npw = mlc_phase_rank(g->KW, g->dw, g->sw, g->sw);
    d.xs = ((long)g->C * d.nph * d.npw * d.plane + 32 + 15) & ~15L;
    d.nq = ((g->Ho - 1) * d.Wq + g->Wo + 7) & ~7L;
    return d;
}

/* xq = x [C][H][W] padded and split into phases (the layout above), then zeros up to xs */
MLC_HELPER void mlc_shift_pad(const mlc_conv_geom *g, const mlc_shift_dims *d, const float *x, float *xq) {
    const long Wq = d->Wq;
    float *p = xq;
    for (int c = 0; c < g->C; c++)
        for (int a = 0; a < g->sh; a++) {
            if (!mlc_phase_used(g->KH, g->dh, g->sh, a)) continue;
            for (int b = 0; b < g->sw; b++) {
                if (!mlc_phase_used(g->KW, g->dw, g->sw, b)) continue;
                /* columns j0 <= j < j1 read x[..][sw*j + b - pw]; the rest are padding */
                long j0 = (g->pw - b + g->sw - 1) / g->sw, j1 = (g->W + g->pw - b + g->sw - 1) / g->sw;
                j0 = j0 < 0 ? 0 : j0 > Wq ? Wq : j0;
                j1 = j1 > Wq ? Wq : j1 < j0 ? j0 : j1;
                /* rows in address order, their zeros in whole vectors (mlc_zero_spill): what they
                 * zero past a row is written next, up to the 32 zeros that end xq */
                for (long i = 0; i < d->Hq; i++, p += Wq) {
                    const long h = g->sh * i + a - g->ph;
                    if (h < 0 || h >= g->H) {
                        mlc_zero_spill(p, Wq);
                        continue;
                    }
                    const float *xr = x + ((long)c * g->H + h) * g->W + b - g->pw;
                    mlc_zero_spill(p, j0);
                    if (g->sw == 1)
                        mlc_copy_row(p + j0, xr + j0, j1 - j0);
                    else if (g->sw == 2)
                        mlc_gather2_row(p + j0, xr + 2 * j0, j1 - j0);
                    else
                        for (long j = j0; j < j1; j++) p[j] = xr[g->sw * j];
                    mlc_zero_spill(p + j1, Wq - j1);
                }
            }
        }
    memset(p, 0, sizeof(float) * (size_t)(d->xs - (p - xq)));
}

/* off[k] for k = (c*KH + kh)*KW + kw over one group's Cg input channels */
MLC_HELPER void mlc_shift_offsets(const mlc_conv_geom *g, const mlc_shift_dims *d, int *off) {
    const int Cg = g->C / g->G;
    for (int c = 0, k = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                const int a = mlc_phase_rank(g->KH, g->dh, g->sh, kh * g->dh % g->sh);
                const int b = mlc_phase_rank(g->KW, g->dw, g->sw, kw * g->dw % g->sw);
                off[k++] = (int)((((long)c * d->nph + a) * d->npw + b) * d->plane + (kh * g->dh / g->sh) * d->Wq +
                                 kw * g->dw / g->sw);
            }
}

/* The weights as blocks of 4 output channels, [G][mb][K][4] (mb = ceil(Og/4)), zeros past
 * the last channel: ap[((grp*mb + b)*K + k)*4 + i] = w[grp*Og + 4b + i][k]. */
MLC_HELPER void mlc_shift_pack(const mlc_conv_geom *g, const float *w, float *ap) {
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW, mb = (Og + 3) / 4;
    for (int grp = 0; grp < g->G; grp++)
        for (int b = 0; b < mb; b++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < 4; i++)
                    ap[(((long)grp * mb + b) * K + k) * 4 + i] = 4 * b + i < Og ? w[((long)grp * Og + 4 * b + i) * K + k] : 0.0f;
}

/* How the forward kernel's 8-column segments cover the output: along each output row,
 * ceil(Wo/8) segments a row, the last one with wlast <= 8 real columns, when that
 * computes no more junk columns than running along q over the padded rows (Wq - Wo a
 * row), else along q. Along rows, with output channels per group a multiple of 4 (the
 * kernel's blocks of 4 rows stay in the group), the kernel stores straight into y, only
 * the real columns of the last segments; otherwise it fills rows of ldo floats per
 * channel, output row oh at oh*orow, which are then copied out. */
typedef struct mlc_shift_segs {
    long nseg, spr, Wq; /* segments, segments per row, their rows' stride in q */
    int wlast;          /* real columns of a row's last segment (8: all) */
    long ldo, orow;     /* the kernel's output rows (one per channel), an output row's offset */
    int direct;         /* the kernel writes y itself (ldo = Ho*Wo, orow = Wo) */
} mlc_shift_segs;

/* Segments for an Ho x Wo output over rows Wq apart in q, nq = (Ho-1)*Wq + Wo rounded up
 * to 8; direct_ok: the kernel may write the output itself (its blocks of 4 rows stay in
 * the group, and the output is a dense Ho x Wo plane per channel) */
MLC_HELPER mlc_shift_segs mlc_shift_segs_for(long Ho, long Wo, long Wq, long nq, int direct_ok) {
    mlc_shift_segs s;
    const long w8 = (Wo + 7) / 8 * 8;
    s.direct = 0, s.wlast = 8;
    if (w8 <= Wq) {
        s.direct = direct_ok;
        s.spr = w8 / 8, s.nseg = Ho * s.spr, s.Wq = Wq;
        s.orow = w8, s.ldo = Ho * w8;
        if (s.direct) s.wlast = (int)(Wo - w8 + 8), s.orow = Wo, s.ldo = Ho * Wo;
    } else {
        s.spr = s.nseg = nq / 8, s.Wq = 0;
        s.orow = Wq, s.ldo = nq;
    }
    return s;
}

MLC_HELPER mlc_shift_segs mlc_shift_segs_of(const mlc_conv_geom *g, const mlc_shift_dims *d) {
    return mlc_shift_segs_for(g->Ho, g->Wo, d->Wq, d->nq, g->O / g->G % 4 == 0);
}

/* Stores the first n lanes of v at p (n = 8: all of them) */
#define MLC_STN(p, v, n)                                                                                       \
    do {                                                                                                       \
        if ((n) == 8)                                                                                          \
            MLC_ST((p), (v));                                                                                  \
        else {                                                                                                 \
            float t_[8];                                                                                       \
            MLC_ST(t_, (v));                                                                                   \
            for (int i_ = 0; i_ < (n); i_++) (p)[i_] = t_[i_];                                                 \
        }                                                                                                      \
    } while (0)

/* For segments s0 <= s < s1: y[4b + i][ys] = sum_k ap[b][k][i] * x[off[k] + xs] over the 8
 * columns of segment s, which start at xs = (s / spr)*Wq + (s % spr)*8 in x and at
 * ys = (s / spr)*yrow + (s % spr)*8 in y (only wlast columns for the last segment of a
 * row), for b < mb, i < 4; y's rows are ldy apart. Blocks of 4 rows by 3 segments: 12
 * vector accumulators, each k loads 3 vectors of x and broadcasts 4 weights (then
 * blocks of 2 segments, and 1 if one is left: its 4 accumulators wait on the FMA
 * latency, so 3 + 1 segments go as 2 + 2). */
MLC_KERNEL void mlc_shift_gemm(int mb, int K, const float *ap, const int *off, const float *x, long s0, long s1,
                               long spr, long Wq, int wlast, float *y, long ldy, long yrow) {
#define MLC_SEGX(s) ((s) / spr * Wq + (s) % spr * 8)
#define MLC_SEGY(s) ((s) / spr * yrow + (s) % spr * 8)
#define MLC_SEGN(s) ((s) % spr == spr - 1 ? wlast : 8)
    long sg = s0;
    for (; sg + 3 <= s1 && s1 - sg != 4; sg += 3) { /* 4 left: two blocks of 2 */
        const float *x0 = x + MLC_SEGX(sg);
        const long d1 = MLC_SEGX(sg + 1) - MLC_SEGX(sg), d2 = MLC_SEGX(sg + 2) - MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg), y1 = MLC_SEGY(sg + 1), y2 = MLC_SEGY(sg + 2);
        const int n0 = MLC_SEGN(sg), n1 = MLC_SEGN(sg + 1), n2 = MLC_SEGN(sg + 2);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4, *const ae = a + 4L * K;
            const int *ok = off;
            mlc_v8 c00 = {0}, c01 = {0}, c02 = {0}, c10 = {0}, c11 = {0}, c12 = {0};
            mlc_v8 c20 = {0}, c21 = {0}, c22 = {0}, c30 = {0}, c31 = {0}, c32 = {0};
            for (; a < ae; a += 4, ok++) {
                const float *xr = x0 + *ok;
                const mlc_v8 v0 = MLC_LD(xr), v1 = MLC_LD(xr + d1), v2 = MLC_LD(xr + d2);
                mlc_v8 t = MLC_BC(a[0]);
                c00 = MLC_FMA(t, v0, c00), c01 = MLC_FMA(t, v1, c01), c02 = MLC_FMA(t, v2, c02);
                t = MLC_BC(a[1]);
                c10 = MLC_FMA(t, v0, c10), c11 = MLC_FMA(t, v1, c11), c12 = MLC_FMA(t, v2, c12);
                t = MLC_BC(a[2]);
                c20 = MLC_FMA(t, v0, c20), c21 = MLC_FMA(t, v1, c21), c22 = MLC_FMA(t, v2, c22);
                t = MLC_BC(a[3]);
                c30 = MLC_FMA(t, v0, c30), c31 = MLC_FMA(t, v1, c31), c32 = MLC_FMA(t, v2, c32);
            }
            float *r = y + (long)b * 4 * ldy;
            MLC_STN(r + y0, c00, n0); MLC_STN(r + y1, c01, n1); MLC_STN(r + y2, c02, n2); r += ldy;
            MLC_STN(r + y0, c10, n0); MLC_STN(r + y1, c11, n1); MLC_STN(r + y2, c12, n2); r += ldy;
            MLC_STN(r + y0, c20, n0); MLC_STN(r + y1, c21, n1); MLC_STN(r + y2, c22, n2); r += ldy;
            MLC_STN(r + y0, c30, n0); MLC_STN(r + y1, c31, n1); MLC_STN(r + y2, c32, n2);
        }
    }
    for (; sg + 2 <= s1; sg += 2) {
        const float *x0 = x + MLC_SEGX(sg);
        const long d1 = MLC_SEGX(sg + 1) - MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg), y1 = MLC_SEGY(sg + 1);
        const int n0 = MLC_SEGN(sg), n1 = MLC_SEGN(sg + 1);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4;
            mlc_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const float *xr = x0 + off[k];
                const mlc_v8 v0 = MLC_LD(xr), v1 = MLC_LD(xr + d1);
                mlc_v8 t = MLC_BC(a[0]);
                c00 = MLC_FMA(t, v0, c00), c01 = MLC_FMA(t, v1, c01);
                t = MLC_BC(a[1]);
                c10 = MLC_FMA(t, v0, c10), c11 = MLC_FMA(t, v1, c11);
                t = MLC_BC(a[2]);
                c20 = MLC_FMA(t, v0, c20), c21 = MLC_FMA(t, v1, c21);
                t = MLC_BC(a[3]);
                c30 = MLC_FMA(t, v0, c30), c31 = MLC_FMA(t, v1, c31);
            }
            float *r = y + (long)b * 4 * ldy;
            MLC_STN(r + y0, c00, n0); MLC_STN(r + y1, c01, n1); r += ldy;
            MLC_STN(r + y0, c10, n0); MLC_STN(r + y1, c11, n1); r += ldy;
            MLC_STN(r + y0, c20, n0); MLC_STN(r + y1, c21, n1); r += ldy;
            MLC_STN(r + y0, c30, n0); MLC_STN(r + y1, c31, n1);
        }
    }
    if (sg < s1) {
        const float *x0 = x + MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg);
        const int n0 = MLC_SEGN(sg);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4;
            mlc_v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const mlc_v8 v0 = MLC_LD(x0 + off[k]);
                c0 = MLC_FMA(MLC_BC(a[0]), v0, c0), c1 = MLC_FMA(MLC_BC(a[1]), v0, c1);
                c2 = MLC_FMA(MLC_BC(a[2]), v0, c2), c3 = MLC_FMA(MLC_BC(a[3]), v0, c3);
            }
            float *r = y + (long)b * 4 * ldy + y0;
            MLC_STN(r, c0, n0); MLC_STN(r + ldy, c1, n0); MLC_STN(r + 2 * ldy, c2, n0); MLC_STN(r + 3 * ldy, c3, n0);
        }
    }
#undef MLC_SEGX
#undef MLC_SEGY
#undef MLC_SEGN
}

/* dwt[k][o] += sum over samples s < ns and output positions (oh, ow) of
 * x[s*xs + off[k] + oh*Wq + ow] * dt[s*ds + (oh*Wo + ow)*ldt + o] for k < K and o < 16*ob;
 * dwt's rows are ldt apart. dt is dy transposed, [Ho*Wo][o], so the vectors run over
 * output channels and no lanes need adding: blocks of 6 taps by 16 channels, 12 vector
 * accumulators, each position broadcasts 6 inputs and loads 2 vectors (then blocks of 3
 * taps and single taps). */
MLC_KERNEL void mlc_shift_dwt(int K, int ob, const int *off, int ns, const float *x, long xs, const float *dt, long ds,
                              long ldt, int Ho, int Wo, long Wq, float *dwt) {
    int k = 0;
    for (; k + 6 <= K; k += 6)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + 16 * b;
            mlc_v8 c00 = MLC_LD(c), c01 = MLC_LD(c + 8), c10 = MLC_LD(c + ldt), c11 = MLC_LD(c + ldt + 8);
            mlc_v8 c20 = MLC_LD(c + 2 * ldt), c21 = MLC_LD(c + 2 * ldt + 8), c30 = MLC_LD(c + 3 * ldt);
            mlc_v8 c31 = MLC_LD(c + 3 * ldt + 8), c40 = MLC_LD(c + 4 * ldt), c41 = MLC_LD(c + 4 * ldt + 8);
            mlc_v8 c50 = MLC_LD(c + 5 * ldt), c51 = MLC_LD(c + 5 * ldt + 8);
            for (int s = 0; s < ns; s++) {
                const float *xs0 = x + s * xs, *x0 = xs0 + off[k], *x1 = xs0 + off[k + 1], *x2 = xs0 + off[k + 2];
                const float *x3 = xs0 + off[k + 3], *x4 = xs0 + off[k + 4], *x5 = xs0 + off[k + 5];
                const float *d = dt + s * ds + 16 * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_v8 d0 = MLC_LD(d), d1 = MLC_LD(d + 8);
                        mlc_v8 t = MLC_BC(x0[q]);
                        c00 = MLC_FMA(t, d0, c00), c01 = MLC_FMA(t, d1, c01);
                        t = MLC_BC(x1[q]);
                        c10 = MLC_FMA(t, d0, c10), c11 = MLC_FMA(t, d1, c11);
                        t = MLC_BC(x2[q]);
                        c20 = MLC_FMA(t, d0, c20), c21 = MLC_FMA(t, d1, c21);
                        t = MLC_BC(x3[q]);
                        c30 = MLC_FMA(t, d0, c30), c31 = MLC_FMA(t, d1, c31);
                        t = MLC_BC(x4[q]);
                        c40 = MLC_FMA(t, d0, c40), c41 = MLC_FMA(t, d1, c41);
                        t = MLC_BC(x5[q]);
                        c50 = MLC_FMA(t, d0, c50), c51 = MLC_FMA(t, d1, c51);
                    }
            }
            MLC_ST(c, c00), MLC_ST(c + 8, c01), MLC_ST(c + ldt, c10), MLC_ST(c + ldt + 8, c11);
            MLC_ST(c + 2 * ldt, c20), MLC_ST(c + 2 * ldt + 8, c21), MLC_ST(c + 3 * ldt, c30);
            MLC_ST(c + 3 * ldt + 8, c31), MLC_ST(c + 4 * ldt, c40), MLC_ST(c + 4 * ldt + 8, c41);
            MLC_ST(c + 5 * ldt, c50), MLC_ST(c + 5 * ldt + 8, c51);
        }
    for (; k + 3 <= K; k += 3)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + 16 * b;
            mlc_v8 c00 = MLC_LD(c), c01 = MLC_LD(c + 8), c10 = MLC_LD(c + ldt), c11 = MLC_LD(c + ldt + 8);
            mlc_v8 c20 = MLC_LD(c + 2 * ldt), c21 = MLC_LD(c + 2 * ldt + 8);
            for (int s = 0; s < ns; s++) {
                const float *xs0 = x + s * xs, *x0 = xs0 + off[k], *x1 = xs0 + off[k + 1], *x2 = xs0 + off[k + 2];
                const float *d = dt + s * ds + 16 * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_v8 d0 = MLC_LD(d), d1 = MLC_LD(d + 8);
                        mlc_v8 t = MLC_BC(x0[q]);
                        c00 = MLC_FMA(t, d0, c00), c01 = MLC_FMA(t, d1, c01);
                        t = MLC_BC(x1[q]);
                        c10 = MLC_FMA(t, d0, c10), c11 = MLC_FMA(t, d1, c11);
                        t = MLC_BC(x2[q]);
                        c20 = MLC_FMA(t, d0, c20), c21 = MLC_FMA(t, d1, c21);
                    }
            }
            MLC_ST(c, c00), MLC_ST(c + 8, c01), MLC_ST(c + ldt, c10), MLC_ST(c + ldt + 8, c11);
            MLC_ST(c + 2 * ldt, c20), MLC_ST(c + 2 * ldt + 8, c21);
        }
    for (; k < K; k++)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + 16 * b;
            mlc_v8 c0 = MLC_LD(c), c1 = MLC_LD(c + 8);
            for (int s = 0; s < ns; s++) {
                const float *x0 = x + s * xs + off[k], *d = dt + s * ds + 16 * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_v8 t = MLC_BC(x0[q]);
                        c0 = MLC_FMA(t, MLC_LD(d), c0), c1 = MLC_FMA(t, MLC_LD(d + 8), c1);
                    }
            }
            MLC_ST(c, c0), MLC_ST(c + 8, c1);
        }
}

/* Floats of one scratch slot (targets/c/conv.c sizes them by the same rules). op 0: the forward
 * pass: a sample's xq and, unless the kernel writes y itself, its output rows
 * [ceil(Og/4)*4][ldo]. op 2: the weight gradient: spt samples' xq and transposed dy
 * [G][Ho*Wo][ceil(Og/16)*16]. (op 1, the input gradient: mlc_bwd_slot_floats.) */
MLC_HELPER long mlc_shift_slot_floats(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long Og = g->O / g->G;
    if (op == 0) {
        const mlc_shift_segs sg = mlc_shift_segs_of(g, &d);
        return d.xs + (sg.direct ? 0 : (Og + 3) / 4 * 4 * sg.ldo);
    }
    return pl->spt * (d.xs + g->G * ((Og + 15) / 16 * 16) * ((long)g->Ho * g->Wo));
}

MLC_HELPER long mlc_bwd_slot_floats(const mlc_conv_geom *g);

MLC_HELPER void mlc_shift_check(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    if ((op == 1 ? mlc_bwd_slot_floats(g) : mlc_shift_slot_floats(g, pl, op)) > pl->slot) {
        fprintf(stderr, "mlc: internal error: a conv2d workspace slot is too small\n");
        abort();
    }
}

/* Sample n of y = conv(x, w) in scratch slot xq; ap, off: the packed weights and the
 * offsets. */
MLC_HELPER void mlc_shift_fwd_sample(const mlc_conv_geom *g, long B, long n, const float *x, const float *ap,
                                     const int *off, float *y, float *xq) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Og + 3) / 4, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const mlc_shift_segs sg = mlc_shift_segs_of(g, &d);
    const long CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo, gs = (long)Cg * d.nph * d.npw * d.plane;
    /* the kernels in pieces of 12 segments, each followed by a share of the prefetches of
     * the next sample's input */
    const long pieces = (sg.nseg + 11) / 12, xl = (CHW * 4 + 63) / 64;
    float *out = xq + d.xs;
    mlc_shift_pad(g, &d, x + n * CHW, xq);
    for (int grp = 0; grp < g->G; grp++) {
        float *yg = y + (n * g->O + (long)grp * Og) * P;
        float *o = sg.direct ? yg : out;
        const long ldo = sg.direct ? P : sg.ldo;
        for (long i = 0; i < pieces; i++) {
            const long u = (long)grp * pieces + i, us = (long)g->G * pieces;
            mlc_shift_gemm(mb, K, ap + (long)grp * mb * 4 * K, off, xq + grp * gs, 12 * i,
                           12 * i + 12 < sg.nseg ? 12 * i + 12 : sg.nseg, sg.spr, sg.Wq, sg.wlast, o, ldo, sg.orow);
            if (n + 1 < B) MLC_PREFETCH_LINES(x + (n + 1) * CHW, xl * u / us, xl * (u + 1) / us, 0);
        }
        if (!sg.direct)
            for (int c = 0; c < Og; c++)
                for (int oh = 0; oh < g->Ho; oh++)
                    mlc_copy_row(yg + c * P + (long)oh * g->Wo, out + c * sg.ldo + oh * sg.orow, g->Wo);
    }
}

/* y = conv(x, w); ap, off: the packed weights and the offsets. A sample per piece of work. */
MLC_HELPER void mlc_shift_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *ap,
                              const int *off, float *y, float *ws) {
#pragma omp parallel num_threads(mlc_conv_team(pl, B))
    {
        float *xq = mlc_conv_slot(pl, ws);
#pragma omp for schedule(dynamic, 1)
        for (long n = 0; n < B; n++) mlc_shift_fwd_sample(g, B, n, x, ap, off, y, xq);
    }
}

/* dt[p][o] (rows ceil(Og/16)*16 floats apart, 0 at o >= Og) = src[o][p] (one group's Og
 * channels of one sample's dy, P positions): 8x8 blocks, then the edges element by element.
 * 8 channels at a time, along their rows: P = 1024 puts rows 4 KiB apart, in one L1 set,
 * so 16 rows read side by side (both blocks of a 16-channel dy) kept evicting each other. */
MLC_HELPER void mlc_dy_transpose(int Og, long P, const float *src, float *dt) {
    const int Og16 = (Og + 15) / 16 * 16, o8 = Og / 8 * 8;
    const long p8 = P / 8 * 8;
    for (int o0 = 0; o0 < o8; o0 += 8)
        for (long p0 = 0; p0 < p8; p0 += 8) mlc_transpose8(src + o0 * P + p0, P, dt + p0 * Og16 + o0, Og16);
    for (long p = 0; p < P; p++) {
        for (int o = p < p8 ? o8 : 0; o < Og; o++) dt[p * Og16 + o] = src[o * P + p];
        mlc_zero_row(dt + p * Og16 + Og, Og16 - Og);
    }
}

/* dw = sum over the batch of dy . columns(x)^T: min(B, red) fixed chunks of samples, each
 * summed by one thread, spt samples at a time, into a transposed partial [G][K][Og16] after
 * the slots; then dw is the partials added in chunk order. */
MLC_HELPER void mlc_shift_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                     const float *dy, float *dw, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G, Og16 = (Og + 15) / 16 * 16, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo, gs = (long)Cg * d.nph * d.npw * d.plane;
    const long dts = (long)g->G * Og16 * P; /* floats of one sample's transposed dy */
    const long PT = (long)g->G * K * Og16;     /* floats of one partial sum */
    const long nr = B < pl->red ? B : pl->red;
    float *part = ws + (long)pl->slots * pl->slot;
    int *off = (int *)(void *)(part + (long)pl->red * PT);
    if (nr < 1) {
        memset(dw, 0, sizeof(float) * (size_t)g->O * K);
        return;
    }
    mlc_shift_offsets(g, &d, off);
#pragma omp parallel num_threads(mlc_conv_team(pl, nr))
    {
        float *xq = mlc_conv_slot(pl, ws), *dt = xq + pl->spt * d.xs;
#pragma omp for schedule(dynamic, 1)
        for (long r = 0; r < nr; r++) {
            const long n0 = B * r / nr, n1 = B * (r + 1) / nr;
            float *pr = part + r * PT;
            memset(pr, 0, sizeof(float) * (size_t)PT);
            for (long s0 = n0; s0 < n1; s0 += pl->spt) {
                const int ns = (int)(n1 - s0 < pl->spt ? n1 - s0 : pl->spt);
                for (int j = 0; j < ns; j++) {
                    mlc_shift_pad(g, &d, x + (s0 + j) * CHW, xq + j * d.xs);
                    for (int grp = 0; grp < g->G; grp++) /* dt[j][grp][p][o] = dy[s0 + j][grp*Og + o][p] */
                        mlc_dy_transpose(Og, P, dy + ((s0 + j) * g->O + (long)grp * Og) * P, dt + j * dts + grp * Og16 * P);
                }
                for (int grp = 0; grp < g->G; grp++)
                    mlc_shift_dwt(K, Og16 / 16, off, ns, xq + grp * gs, d.xs, dt + (long)grp * Og16 * P, dts, Og16, g->Ho,
                                  g->Wo, d.Wq, pr + (long)grp * K * Og16);
            }
        }
        /* dw[grp*Og + o][k] = sum over r of part[r][grp][k][o] */
#pragma omp for schedule(static)
        for (long i = 0; i < (long)g->G * K; i++) {
            const long grp = i / K, k = i % K;
            for (int o0 = 0; o0 < Og; o0 += 16) {
                float v[16];
                memcpy(v, part + i * Og16 + o0, sizeof v);
                for (long r = 1; r < nr; r++)
                    for (int t = 0; t < 16; t++) v[t] += part[r * PT + i * Og16 + o0 + t];
                for (int t = 0; t < 16 && o0 + t < Og; t++) dw[(grp * Og + o0 + t) * K + k] = v[t];
            }
        }
    }
}

/* ---- the input gradient, phase by phase ----
 * dx[c][ih][iw] = sum over o, kh, kw of w[o][c][kh][kw] * dy[o][oh][ow] where ih = sh*oh -
 * ph + kh*dh and iw = sw*ow - pw + kw*dw. The rows ih = a + sh*i of row phase a get the
 * taps kh with kh*dh - ph = a (mod sh), from dy row oh = i + e(kh), e = (a + ph -
 * kh*dh) / sh; likewise the columns. So each phase pair (a, b) of dx is a stride-1
 * correlation of dy with its share of the taps, over a grid of ceil((H-a)/sh) x
 * ceil((W-b)/sw) outputs: the forward kernel once more, on dy zero-padded by PT rows
 * above and PL columns left (so every shifted read is inside) into planes of Hp x Wp,
 * with off[k] = o*Hp*Wp + (e(kh) + PT)*Wp + e(kw) + PL for its taps k = (o, kh, kw).
 * Phases no tap reaches are zero. Stride 1 is one phase, the kernel flipped. */

/* The phase of tap k (stride s, dilation d, padding p) and its shift e */
MLC_HELPER int mlc_tap_phase(int k, int d, int p, int s) { return (int)((((long)k * d - p) % s + s) % s); }
MLC_HELPER long mlc_tap_shift(int k, int d, int p, int s) { return (mlc_tap_phase(k, d, p, s) + p - (long)k * d) / s; }
/* The number of indices a + s*i below n */
MLC_HELPER long mlc_phase_len(long n, long a, int s) { return a < n ? (n - a + s - 1) / s : 0; }

/* One axis of the padded dy: *pad zeros before its no entries, *len in all, enough for the
 * reads of every tap k < K whose phase has outputs (n inputs). */
MLC_HELPER void mlc_bwd_axis(long n, long no, int K, int d, int p, int s, long *pad, long *len) {
    long lo = 0, hi = no;
    for (int k = 0; k < K; k++) {
        const long e = mlc_tap_shift(k, d, p, s), m = mlc_phase_len(n, mlc_tap_phase(k, d, p, s), s);
        if (m == 0) continue;
        if (e < lo) lo = e;
        if (m + e > hi) hi = m + e;
    }
    *pad = -lo, *len = hi - lo;
}

typedef struct mlc_bwd_dims {
    long PT, PL, Hp, Wp, plane, xs; /* xs: floats of a padded dy, O planes and 32 zeros, rounded to 16 */
} mlc_bwd_dims;

MLC_HELPER mlc_bwd_dims mlc_bwd_dims_of(const mlc_conv_geom *g) {
    mlc_bwd_dims d;
    mlc_bwd_axis(g->H, g->Ho, g->KH, g->dh, g->ph, g->sh, &d.PT, &d.Hp);
    mlc_bwd_axis(g->W, g->Wo, g->KW, g->dw, g->pw, g->sw, &d.PL, &d.Wp);
    d.plane = d.Hp * d.Wp;
    d.xs = ((long)g->O * d.plane + 32 + 15) & ~15L;
    return d;
}

/* A slot: a sample's padded dy and the kernel's output rows, [ceil(Cg/4)*4][Hp*Wp + 8] */
MLC_HELPER long mlc_bwd_slot_floats(const mlc_conv_geom *g) {
    const mlc_bwd_dims d = mlc_bwd_dims_of(g);
    return d.xs + (g->C / g->G + 3) / 4 * 4 * (d.plane + 8);
}

/* The number of taps k < K of phase a */
MLC_HELPER int mlc_phase_taps(int K, int d, int p, int s, int a) {
    int n = 0;
    for (int k = 0; k < K; k++) n += mlc_tap_phase(k, d, p, s) == a;
    return n;
}

/* dxp = dy [O][Ho][Wo] zero-padded into O planes of Hp x Wp at (PT, PL), then zeros to xs */
MLC_HELPER void mlc_bwd_pad(const mlc_conv_geom *g, const mlc_bwd_dims *d, const float *dy, float *xp) {
    for (int o = 0; o < g->O; o++) { /* in address order, as mlc_zero_spill wants */
        float *p = xp + o * d->plane;
        memset(p, 0, sizeof(float) * (size_t)(d->PT * d->Wp));
        for (int h = 0; h < g->Ho; h++) {
            float *r = p + (d->PT + h) * d->Wp;
            mlc_zero_spill(r, d->PL);
            mlc_copy_row(r + d->PL, dy + ((long)o * g->Ho + h) * g->Wo, g->Wo);
            mlc_zero_spill(r + d->PL + g->Wo, d->Wp - d->PL - g->Wo);
        }
        memset(p + (d->PT + g->Ho) * d->Wp, 0, sizeof(float) * (size_t)((d->Hp - d->PT - g->Ho) * d->Wp));
    }
    memset(xp + g->O * d->plane, 0, sizeof(float) * (size_t)(d->xs - g->O * d->plane));
}

/* The packed weights of every phase pair with taps, in phase order: for each, [G][mb][K'][4]
 * (mb = ceil(Cg/4), K' = Og * its row taps * its column taps, k' = (o, row tap, column tap)),
 * ap = w[grp*Og + o][4b + i][kh][kw]; and its K' offsets. */
MLC_HELPER void mlc_bwd_pack(const mlc_conv_geom *g, const mlc_bwd_dims *d, const float *w, float *ap, int *off) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Cg + 3) / 4, T = g->KH * g->KW;
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const int na = mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a);
            const int nb = mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b);
            const int K = Og * na * nb;
            if (K == 0) continue;
            int k = 0; /* = (o*na + the row tap's rank)*nb + the column tap's rank */
            for (int o = 0; o < Og; o++)
                for (int kh = 0; kh < g->KH; kh++) {
                    if (mlc_tap_phase(kh, g->dh, g->ph, g->sh) != a) continue;
                    const long row = (mlc_tap_shift(kh, g->dh, g->ph, g->sh) + d->PT) * d->Wp + d->PL;
                    for (int kw = 0; kw < g->KW; kw++) {
                        if (mlc_tap_phase(kw, g->dw, g->pw, g->sw) != b) continue;
                        off[k] = (int)(o * d->plane + row + mlc_tap_shift(kw, g->dw, g->pw, g->sw));
                        for (int grp = 0; grp < g->G; grp++) {
                            const float *wk = w + ((long)grp * Og + o) * Cg * T + kh * g->KW + kw;
                            float *a4 = ap + ((long)grp * mb * K + k) * 4; /* channel c at a4[(c/4)*4K + c%4] */
                            int c = 0;
                            for (; c < Cg; c++) a4[(long)(c / 4) * 4 * K + c % 4] = wk[(long)c * T];
                            for (; c < 4 * mb; c++) a4[(long)(c / 4) * 4 * K + c % 4] = 0.0f;
                        }
                        k++;
                    }
                }
            ap += (long)g->G * mb * 4 * K, off += K;
        }
}

/* Sample n of dx, the input gradient; ap0, off0 from mlc_bwd_pack; xp: this thread's slot. */
MLC_HELPER void mlc_bwd_data_sample(const mlc_conv_geom *g, long B, long n, const float *dy, const float *ap0,
                                    const int *off0, float *dx, float *xp) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Cg + 3) / 4;
    const mlc_bwd_dims d = mlc_bwd_dims_of(g);
    const long HW = (long)g->H * g->W, OP = (long)g->O * g->Ho * g->Wo, dl = (OP * 4 + 63) / 64;
    int empty = 0; /* some phase gets no tap: dx starts zeroed */
    for (int a = 0; a < g->sh; a++) empty |= mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a) == 0;
    for (int b = 0; b < g->sw; b++) empty |= mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b) == 0;
    /* the kernel runs in pieces of 12 segments (pieces of them a sample), each followed by
     * a share of the prefetches of the next sample's dy */
    long pieces = 0;
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const long Hi = mlc_phase_len(g->H, a, g->sh), Wi = mlc_phase_len(g->W, b, g->sw);
            if (Hi == 0 || Wi == 0 || mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a) == 0 ||
                mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b) == 0)
                continue;
            const mlc_shift_segs sg = mlc_shift_segs_for(Hi, Wi, d.Wp, ((Hi - 1) * d.Wp + Wi + 7) & ~7L, 0);
            pieces += g->G * ((sg.nseg + 11) / 12);
        }
    float *out = xp + d.xs;
    mlc_bwd_pad(g, &d, dy + n * OP, xp);
    if (empty) memset(dx + n * g->C * HW, 0, sizeof(float) * (size_t)(g->C * HW));
    const float *ap = ap0;
    const int *off = off0;
    long u = 0; /* pieces done */
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const int na = mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a);
            const int nb = mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b);
            const int K = Og * na * nb;
            const long Hi = mlc_phase_len(g->H, a, g->sh), Wi = mlc_phase_len(g->W, b, g->sw);
            float *dxn = dx + n * g->C * HW + (long)a * g->W + b; /* dx[n][0][a][b] */
            if (K == 0 || Hi == 0 || Wi == 0) { /* no tap reaches these positions: zeroed above */
                ap += (long)g->G * mb * 4 * K, off += K;
                continue;
            }
            const long nq = ((Hi - 1) * d.Wp + Wi + 7) & ~7L;
            const mlc_shift_segs sg =
                mlc_shift_segs_for(Hi, Wi, d.Wp, nq, g->sh == 1 && g->sw == 1 && Cg % 4 == 0);
            for (int grp = 0; grp < g->G; grp++) {
                float *dxg = dxn + (long)grp * Cg * HW;
                for (long s0 = 0; s0 < sg.nseg; s0 += 12, u++) {
                    mlc_shift_gemm(mb, K, ap + (long)grp * mb * 4 * K, off, xp + (long)grp * Og * d.plane, s0,
                                   s0 + 12 < sg.nseg ? s0 + 12 : sg.nseg, sg.spr, sg.Wq, sg.wlast,
                                   sg.direct ? dxg : out, sg.direct ? HW : sg.ldo, sg.orow);
                    if (n + 1 < B) MLC_PREFETCH_LINES(dy + (n + 1) * OP, dl * u / pieces, dl * (u + 1) / pieces, 0);
                }
                if (sg.direct) continue;
                for (long c = 0; c < Cg; c++)
                    for (long i = 0; i < Hi; i++) {
                        float *r = dxg + c * HW + i * g->sh * g->W;
                        const float *o = out + c * sg.ldo + i * sg.orow;
                        if (g->sw == 1)
                            mlc_copy_row(r, o, Wi);
                        else
                            for (long j = 0; j < Wi; j++) r[j * g->sw] = o[j];
                    }
            }
            ap += (long)g->G * mb * 4 * K, off += K;
        }
}

/* dx = the input gradient; ap, off from mlc_bwd_pack. A sample per piece of work. */
MLC_HELPER void mlc_bwd_data_run(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                 const float *ap0, const int *off0, float *dx, float *ws) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(pl, B))
    for (long n = 0; n < B; n++) mlc_bwd_data_sample(g, B, n, dy, ap0, off0, dx, mlc_conv_slot(pl, ws));
}

/* The input gradient's packed weights and offsets: in the workspace, after the slots */
MLC_HELPER float *mlc_bwd_data_packed(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws, int **off) {
    const int Cg = g->C / g->G, K = g->O / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(ap + (long)g->G * ((Cg + 3) / 4 * 4) * K);
    return ap;
}

MLC_HELPER void mlc_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    int *off;
    float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    const mlc_bwd_dims d = mlc_bwd_dims_of(g);
    mlc_bwd_pack(g, &d, w, ap, off);
}

MLC_HELPER void mlc_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy, const float *w,
                             float *dx, float *ws) {
    mlc_bwd_data_prepare(g, pl, w, ws);
    int *off;
    const float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    mlc_bwd_data_run(g, pl, B, dy, ap, off, dx, ws);
}

/* ---- the entry points conv2d and its two gradient ops emit a call to ---- */

/* The forward pass's packed weights and offsets: in the workspace, after the slots */
MLC_HELPER float *mlc_conv2d_fwd_packed(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws, int **off) {
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(ap + (long)g->G * ((Og + 3) / 4 * 4) * K);
    return ap;
}

/* The forward pass sample by sample, for generated code that finishes each sample's
 * output in the same loop while it is in cache (a fused epilogue: bias, activation,
 * residual add): mlc_conv2d_fwd_prepare once, then mlc_conv2d_fwd_sample for each n in
 * `#pragma omp parallel for num_threads(mlc_conv_team(pl, B))` (a slot per thread). */
MLC_HELPER void mlc_conv2d_fwd_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_shift_check(g, pl, 0);
    int *off;
    float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    mlc_shift_pack(g, w, ap);
    mlc_shift_offsets(g, &d, off);
}

MLC_HELPER void mlc_conv2d_fwd_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *x,
                                      float *y, float *ws) {
    int *off;
    const float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    mlc_shift_fwd_sample(g, B, n, x, ap, off, y, mlc_conv_slot(pl, ws));
}

/* y = conv(x, w) */
MLC_HELPER void mlc_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w,
                               float *y, float *ws) {
    mlc_conv2d_fwd_prepare(g, pl, w, ws);
    int *off;
    const float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    mlc_shift_fwd(g, pl, B, x, ap, off, y, ws);
}

/* dx = the gradient of conv(x, w) with respect to x, given dy */
MLC_HELPER void mlc_conv2d_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                    const float *w, float *dx, float *ws) {
    mlc_shift_check(g, pl, 1);
    mlc_bwd_data(g, pl, B, dy, w, dx, ws);
}

/* The input gradient sample by sample, like mlc_conv2d_fwd_prepare / _sample: for
 * generated code that finishes each sample's dx while it is in cache (the ReLU's
 * backward, a gradient sum) */
MLC_HELPER void mlc_conv2d_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_shift_check(g, pl, 1);
    mlc_bwd_data_prepare(g, pl, w, ws);
}

MLC_HELPER void mlc_conv2d_bwd_data_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n,
                                           const float *dy, float *dx, float *ws) {
    int *off;
    const float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    mlc_bwd_data_sample(g, B, n, dy, ap, off, dx, mlc_conv_slot(pl, ws));
}

/* dw = the gradient of conv(x, w) with respect to w, given dy */
MLC_HELPER void mlc_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                      const float *dy, float *dw, float *ws) {
    mlc_shift_check(g, pl, 2);
    mlc_shift_bwd_filter(g, pl, B, x, dy, dw, ws);
}

typedef struct mlc_pool_geom {
    int H, W, KH, KW, sh, sw, ph, pw, Ho, Wo;
} mlc_pool_geom;

/* The common 2x2, stride 2 pooling of an even-sized plane: windows tile the plane. */
MLC_HELPER int mlc_pool_2x2(const mlc_pool_geom *g) {
    return g->KH == 2 && g->KW == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->H % 2 == 0 &&
           g->W % 2 == 0;
}

/* Max over each window's in-bounds elements (padding never wins). */
MLC_HELPER void mlc_maxpool2d_fwd(const mlc_pool_geom *g, long planes, const float *x, float *y) {
    if (mlc_pool_2x2(g)) {
#pragma omp parallel for schedule(static) if (planes * g->Ho * g->Wo > 32768)
        for (long p = 0; p < planes * g->Ho; p++) { /* one output row per iteration */
            const float *r0 = x + 2 * p * g->W, *r1 = r0 + g->W;
            float *yr = y + p * g->Wo;
            for (int ow = 0; ow < g->Wo; ow++) {
                const float a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];
                const float b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];
                yr[ow] = a > b ? a : b;
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (planes * g->Ho * g->Wo > 32768)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W;
        float *yp = y + p * g->Ho * g->Wo;
        for (int oh = 0; oh < g->Ho; oh++)
            for (int ow = 0; ow < g->Wo; ow++) {
                float m = -INFINITY;
                for (int kh = 0; kh < g->KH; kh++) {
                    const int ih = oh * g->sh - g->ph + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = ow * g->sw - g->pw + kw;
                        if (iw >= 0 && iw < g->W && xp[ih * g->W + iw] > m) m = xp[ih * g->W + iw];
                    }
                }
                yp[oh * g->Wo + ow] = m;
            }
    }
}

/* Each window's gradient goes to its first maximal element in row-major order: the same
 * element whatever the thread count, also on ties. */
MLC_HELPER void mlc_maxpool2d_bwd(const mlc_pool_geom *g, long planes, const float *dy, const float *x, float *dx) {
    if (mlc_pool_2x2(g)) {
        /* Windows tile the plane: every dx element is written once, no zeroing pass. */
#pragma omp parallel for schedule(static) if (planes * g->H * g->W > 32768)
        for (long p = 0; p < planes * g->Ho; p++) {
            const float *r0 = x + 2 * p * g->W, *r1 = r0 + g->W;
            float *d0 = dx + 2 * p * g->W, *d1 = d0 + g->W;
            const float *dyr = dy + p * g->Wo;
            for (int ow = 0; ow < g->Wo; ow++) {
                const int c = 2 * ow;
                int best = 0; /* 0..3 in row-major order; the first maximum wins */
                float m = r0[c];
                if (r0[c + 1] > m) m = r0[c + 1], best = 1;
                if (r1[c] > m) m = r1[c], best = 2;
                if (r1[c + 1] > m) best = 3;
                d0[c] = best == 0 ? dyr[ow] : 0.0f;
                d0[c + 1] = best == 1 ? dyr[ow] : 0.0f;
                d1[c] = best == 2 ? dyr[ow] : 0.0f;
                d1[c + 1] = best == 3 ? dyr[ow] : 0.0f;
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (planes * g->H * g->W > 32768)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W, *dyp = dy + p * g->Ho * g->Wo;
        float *dxp = dx + p * g->H * g->W;
        memset(dxp, 0, sizeof(float) * (size_t)(g->H * g->W));
        for (int oh = 0; oh < g->Ho; oh++)
            for (int ow = 0; ow < g->Wo; ow++) {
                int best = -1;
                for (int kh = 0; kh < g->KH; kh++) {
                    const int ih = oh * g->sh - g->ph + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = ow * g->sw - g->pw + kw;
                        if (iw < 0 || iw >= g->W) continue;
                        if (best < 0 || xp[ih * g->W + iw] > xp[best]) best = ih * g->W + iw;
                    }
                }
                if (best >= 0) dxp[best] += dyp[oh * g->Wo + ow];
            }
    }
}

/* Average over the window, padding counted as zeros (divisor KH*KW). */
MLC_HELPER void mlc_avgpool2d_fwd(const mlc_pool_geom *g, long planes, const float *x, float *y) {
    const float inv = 1.0f / (float)(g->KH * g->KW);
#pragma omp parallel for schedule(static) if (planes * g->Ho * g->Wo > 32768)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * g->H * g->W;
        float *yp = y + p * g->Ho * g->Wo;
        for (int oh = 0; oh < g->Ho; oh++)
            for (int ow = 0; ow < g->Wo; ow++) {
                float s = 0.0f;
                for (int kh = 0; kh < g->KH; kh++) {
                    const int ih = oh * g->sh - g->ph + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = ow * g->sw - g->pw + kw;
                        if (iw >= 0 && iw < g->W) s += xp[ih * g->W + iw];
                    }
                }
                yp[oh * g->Wo + ow] = s * inv;
            }
    }
}

MLC_HELPER void mlc_avgpool2d_bwd(const mlc_pool_geom *g, long planes, const float *dy, float *dx) {
    const float inv = 1.0f / (float)(g->KH * g->KW);
#pragma omp parallel for schedule(static) if (planes * g->H * g->W > 32768)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * g->Ho * g->Wo;
        float *dxp = dx + p * g->H * g->W;
        memset(dxp, 0, sizeof(float) * (size_t)(g->H * g->W));
        for (int oh = 0; oh < g->Ho; oh++)
            for (int ow = 0; ow < g->Wo; ow++)
                for (int kh = 0; kh < g->KH; kh++) {
                    const int ih = oh * g->sh - g->ph + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = ow * g->sw - g->pw + kw;
                        if (iw >= 0 && iw < g->W) dxp[ih * g->W + iw] += dyp[oh * g->Wo + ow] * inv;
                    }
                }
    }
}
/* ---- batch norm over x viewed as [B, C, S]; per channel over N = B*S values ---- */

/* Sums over one row of S floats in 8-float vectors, lanes and the scalar tail added in a
 * fixed order; the rows are then added in double in a fixed order: accurate for N in the
 * millions and the same whatever the thread count. */
MLC_HELPER float mlc_row_sum(const float *x, long S) {
    mlc_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    long i = 0;
    for (; i + 32 <= S; i += 32)
        a0 += MLC_LD(x + i), a1 += MLC_LD(x + i + 8), a2 += MLC_LD(x + i + 16), a3 += MLC_LD(x + i + 24);
    for (; i + 8 <= S; i += 8) a0 += MLC_LD(x + i);
    const mlc_v8 t = (a0 + a1) + (a2 + a3);
    float s = mlc_hsum8(&t);
    for (; i < S; i++) s += x[i];
    return s;
}

/* sum of (x - m)^2 over one row */
MLC_HELPER float mlc_row_sqdev(const float *x, long S, float m) {
    const mlc_v8 mv = MLC_BC(m);
    mlc_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    long i = 0;
    for (; i + 32 <= S; i += 32) {
        const mlc_v8 d0 = MLC_LD(x + i) - mv, d1 = MLC_LD(x + i + 8) - mv, d2 = MLC_LD(x + i + 16) - mv,
                     d3 = MLC_LD(x + i + 24) - mv;
        a0 += d0 * d0, a1 += d1 * d1, a2 += d2 * d2, a3 += d3 * d3;
    }
    for (; i + 8 <= S; i += 8) {
        const mlc_v8 d0 = MLC_LD(x + i) - mv;
        a0 += d0 * d0;
    }
    const mlc_v8 t = (a0 + a1) + (a2 + a3);
    float s = mlc_hsum8(&t);
    for (; i < S; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

/* *sd = sum of d, *sdx = sum of d * (x - m) over one row */
MLC_HELPER void mlc_row_dot_dev(const float *d, const float *x, long S, float m, float *sd, float *sdx) {
    const mlc_v8 mv = MLC_BC(m);
    mlc_v8 a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    long i = 0;
    for (; i + 16 <= S; i += 16) {
        const mlc_v8 d0 = MLC_LD(d + i), d1 = MLC_LD(d + i + 8);
        a0 += d0, a1 += d1;
        b0 += d0 * (MLC_LD(x + i) - mv), b1 += d1 * (MLC_LD(x + i + 8) - mv);
    }
    for (; i + 8 <= S; i += 8) {
        const mlc_v8 d0 = MLC_LD(d + i);
        a0 += d0, b0 += d0 * (MLC_LD(x + i) - mv);
    }
    const mlc_v8 ta = a0 + a1, tb = b0 + b1;
    float a = mlc_hsum8(&ta), b = mlc_hsum8(&tb);
    for (; i < S; i++) a += d[i], b += d[i] * (x[i] - m);
    *sd = a, *sdx = b;
}

/* st[0][c] = mean, st[1][c] = biased variance (two passes: no cancellation) */
MLC_HELPER void mlc_bn_stats(long B, long C, long S, const float *x, float *st) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long c = 0; c < C; c++) {
        double s = 0.0, v = 0.0;
        for (long n = 0; n < B; n++) s += mlc_row_sum(x + (n * C + c) * S, S);
        const float mean = (float)(s / (double)(B * S));
        for (long n = 0; n < B; n++) v += mlc_row_sqdev(x + (n * C + c) * S, S, mean);
        st[c] = mean;
        st[C + c] = (float)(v / (double)(B * S));
    }
}

/* pg[0][c] = sum(dy) (beta's gradient), pg[1][c] = sum(dy * xhat) (gamma's) */
MLC_HELPER void mlc_bn_param_grads(long B, long C, long S, const float *dy, const float *x, const float *st, float eps,
                                   float *pg) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long c = 0; c < C; c++) {
        const float mean = st[c], rstd = 1.0f / sqrtf(st[C + c] + eps);
        double sdy = 0.0, sdyx = 0.0;
        for (long n = 0; n < B; n++) {
            float a, b;
            mlc_row_dot_dev(dy + (n * C + c) * S, x + (n * C + c) * S, S, mean, &a, &b);
            sdy += a, sdyx += b;
        }
        pg[c] = (float)sdy;
        pg[C + c] = (float)sdyx * rstd;
    }
}

/* dx = gamma rstd / N (N dy - dbeta - xhat dgamma), folded into dx = k1 dy + k2 x + k3 */
MLC_HELPER void mlc_bn_bwd(long B, long C, long S, const float *dy, const float *x, const float *st, const float *pg,
                           const float *gamma, float eps, float *dx) {
    const float N = (float)(B * S);
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long r = 0; r < B * C; r++) {
        const long c = r % C;
        const float rstd = 1.0f / sqrtf(st[C + c] + eps), g = gamma[c] * rstd;
        const float k1 = g, k2 = -g * rstd * pg[C + c] / N;
        const float k3 = -g * pg[c] / N - k2 * st[c];
        const float *d = dy + r * S, *xr = x + r * S;
        float *o = dx + r * S;
        for (long i = 0; i < S; i++) o[i] = k1 * d[i] + k2 * xr[i] + k3;
    }
}
/* ---- end of prologue ---- */
