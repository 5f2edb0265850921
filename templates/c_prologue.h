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

/* Row-major C[M,N] = op(A)[M,K] op(B)[K,N]. Large products are split across the OpenMP
 * team along the longer of M and N, in blocks of 16; each thread runs one single-threaded
 * cblas_sgemm, so a block's result does not depend on the other blocks. */
MLC_HELPER void mlc_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc) {
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int split_m = M >= N;
    const int len = split_m ? M : N;
#pragma omp parallel if ((long)M * N * K > (1L << 18) && len >= 32)
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        const int blocks = (len + 15) / 16;
        const int b0 = (int)((long)blocks * id / nt), b1 = (int)((long)blocks * (id + 1) / nt);
        const int lo = b0 * 16, hi = b1 * 16 < len ? b1 * 16 : len;
        if (hi > lo) {
            if (split_m)
                cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, 1.0f, ta ? A + lo : A + (long)lo * lda, lda, B, ldb,
                            0.0f, C + (long)lo * ldc, ldc);
            else
                cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, 1.0f, A, lda, tb ? B + (long)lo * ldb : B + lo, ldb,
                            0.0f, C + lo, ldc);
        }
    }
}

/* ---- convolution and pooling (NCHW), used by the code conv2d / *_pool2d emit ---- */

typedef struct mlc_conv_geom {
    int C, H, W;    /* input channels and size */
    int O, KH, KW;  /* output channels, kernel */
    int sh, sw, ph, pw, dh, dw, G;
    int Ho, Wo;     /* output size */
} mlc_conv_geom;

/* How one convolution's work is cut; compiler/ops_conv.c picks the numbers from the
 * geometry, and the same numbers size its workspace.
 *
 * Work goes in tiles: the output rows [oh0, oh1) of one sample when rows < Ho, else
 * whole samples, spt at a time. A tile's column matrix (im2col) is small enough to stay
 * in cache between being written and being read by the GEMM, and the OpenMP team takes
 * tiles (or, for the weight gradient, fixed chunks of samples) from a shared counter,
 * each thread with its own scratch slot; every GEMM is one single-threaded cblas_sgemm.
 * Each output element is computed by one thread in an order that does not depend on the
 * thread count, so results do not depend on it either (the weight gradient: per-chunk
 * partial sums, added in chunk order). */
typedef struct mlc_conv_plan {
    int mode;   /* 0: column matrices (im2col) and OpenBLAS; 1: stride 1, shifted rows
                 * (mlc_shift_*), no column matrices */
    int direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
    int rows;   /* output rows per tile (== Ho: tiles are whole samples) */
    int spt;    /* samples per tile when rows == Ho (mode 1: per weight-gradient step) */
    int slots;  /* scratch slots: at most this many threads work on the op */
    int red;    /* conv2d_bwd_filter: at most this many partial sums (chunks of samples) */
    long slot;  /* floats per slot: a tile's columns [K][spt*rows*Wo] and, for tiles of
                 * several samples, the output or its gradient [Og][spt*P] */
} mlc_conv_plan;

/* col[(c*KH + kh)*KW + kw][(oh - oh0)*Wo + ow] = x[c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw]
 * for the output rows oh0 <= oh < oh1, 0 outside the input; a row of col is ld floats
 * apart from the next. */
MLC_HELPER void mlc_im2col(const mlc_conv_geom *g, int Cg, const float *x, int oh0, int oh1, float *col, long ld) {
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((long)(c * g->KH + kh) * g->KW + kw) * ld;
                const float *xc = x + (long)c * g->H * g->W;
                for (int oh = oh0; oh < oh1; oh++) {
                    const int ih = oh * g->sh - g->ph + kh * g->dh;
                    float *r = row + (long)(oh - oh0) * g->Wo;
                    if (ih < 0 || ih >= g->H) {
                        memset(r, 0, sizeof(float) * (size_t)g->Wo);
                        continue;
                    }
                    const float *xr = xc + (long)ih * g->W;
                    if (g->sw == 1) { /* unit stride: zeros, one contiguous span, zeros */
                        const int lo = kw * g->dw - g->pw;
                        int a = -lo, b = g->W - lo;
                        a = a < 0 ? 0 : a > g->Wo ? g->Wo : a;
                        b = b > g->Wo ? g->Wo : b < a ? a : b;
                        for (int ow = 0; ow < a; ow++) r[ow] = 0.0f;
                        for (int ow = a; ow < b; ow++) r[ow] = xr[ow + lo];
                        for (int ow = b; ow < g->Wo; ow++) r[ow] = 0.0f;
                    } else {
                        for (int ow = 0; ow < g->Wo; ow++) {
                            const int iw = ow * g->sw - g->pw + kw * g->dw;
                            r[ow] = iw >= 0 && iw < g->W ? xr[iw] : 0.0f;
                        }
                    }
                }
            }
}

/* The adjoint of mlc_im2col over the same rows: dx[c][ih][iw] += col[...]. */
MLC_HELPER void mlc_col2im(const mlc_conv_geom *g, int Cg, const float *col, long ld, int oh0, int oh1, float *dx) {
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                const float *row = col + ((long)(c * g->KH + kh) * g->KW + kw) * ld;
                float *dc = dx + (long)c * g->H * g->W;
                for (int oh = oh0; oh < oh1; oh++) {
                    const int ih = oh * g->sh - g->ph + kh * g->dh;
                    if (ih < 0 || ih >= g->H) continue;
                    float *dr = dc + (long)ih * g->W;
                    const float *r = row + (long)(oh - oh0) * g->Wo;
                    if (g->sw == 1) { /* unit stride: one contiguous span, no bounds tests */
                        const int lo = kw * g->dw - g->pw;
                        int a = -lo, b = g->W - lo;
                        a = a < 0 ? 0 : a > g->Wo ? g->Wo : a;
                        b = b > g->Wo ? g->Wo : b < a ? a : b;
                        for (int ow = a; ow < b; ow++) dr[ow + lo] += r[ow];
                    } else {
                        for (int ow = 0; ow < g->Wo; ow++) {
                            const int iw = ow * g->sw - g->pw + kw * g->dw;
                            if (iw >= 0 && iw < g->W) dr[iw] += r[ow];
                        }
                    }
                }
            }
}

/* One tile: samples n .. n + nn - 1, output rows oh0 .. oh1 - 1. */
typedef struct mlc_conv_tile {
    long n;
    int nn, oh0, oh1;
} mlc_conv_tile;

/* Tiles covering count samples */
MLC_HELPER long mlc_conv_ntiles(const mlc_conv_geom *g, const mlc_conv_plan *pl, long count) {
    if (pl->rows < g->Ho) return count * ((g->Ho + pl->rows - 1) / pl->rows);
    return (count + pl->spt - 1) / pl->spt;
}

/* Tile u of the samples [n0, n1) */
MLC_HELPER mlc_conv_tile mlc_conv_tile_at(const mlc_conv_geom *g, const mlc_conv_plan *pl, long n0, long n1, long u) {
    mlc_conv_tile t;
    if (pl->rows < g->Ho) {
        const long per = (g->Ho + pl->rows - 1) / pl->rows;
        t.n = n0 + u / per, t.nn = 1;
        t.oh0 = (int)(u % per) * pl->rows;
        t.oh1 = t.oh0 + pl->rows < g->Ho ? t.oh0 + pl->rows : g->Ho;
    } else {
        t.n = n0 + u * pl->spt;
        t.nn = (int)(n1 - t.n < pl->spt ? n1 - t.n : pl->spt);
        t.oh0 = 0, t.oh1 = g->Ho;
    }
    return t;
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

MLC_HELPER float *mlc_conv_slot(const mlc_conv_plan *pl, float *ws) {
#ifdef _OPENMP
    return ws + (long)omp_get_thread_num() * pl->slot;
#else
    return ws;
#endif
}

/* The column matrix of group grp for tile t: x itself for a direct convolution of one
 * sample, else im2col into col. *ld gets its row stride. */
MLC_HELPER const float *mlc_conv_tile_cols(const mlc_conv_geom *g, const mlc_conv_plan *pl, const mlc_conv_tile *t,
                                           int grp, const float *x, float *col, long *ld) {
    const int Cg = g->C / g->G;
    const long HW = (long)g->H * g->W, np = (long)(t->oh1 - t->oh0) * g->Wo;
    const float *xg = x + (t->n * g->C + (long)grp * Cg) * HW;
    if (pl->direct && t->nn == 1) {
        *ld = HW;
        return xg + (long)t->oh0 * g->Wo;
    }
    *ld = t->nn * np;
    for (int j = 0; j < t->nn; j++) mlc_im2col(g, Cg, xg + (long)j * g->C * HW, t->oh0, t->oh1, col + j * np, *ld);
    return col;
}

/* The rows of group grp of an output-shaped tensor y [B, O, Ho, Wo] for tile t: in place
 * for one sample (*ld = P), else copied to buf [Og][nn*P] when gather is set. */
MLC_HELPER const float *mlc_conv_tile_dy(const mlc_conv_geom *g, const mlc_conv_tile *t, int grp, const float *y,
                                         float *buf, long *ld) {
    const int Og = g->O / g->G;
    const long P = (long)g->Ho * g->Wo;
    const float *yg = y + (t->n * g->O + (long)grp * Og) * P;
    if (t->nn == 1) {
        *ld = P;
        return yg + (long)t->oh0 * g->Wo;
    }
    *ld = t->nn * P;
    for (int o = 0; o < Og; o++)
        for (int j = 0; j < t->nn; j++)
            memcpy(buf + o * *ld + j * P, yg + ((long)j * g->O + o) * P, sizeof(float) * (size_t)P);
    return buf;
}

/* y = conv(x, w) */
MLC_HELPER void mlc_conv_cols_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                               const float *w, float *y, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo;
    const long tiles = mlc_conv_ntiles(g, pl, B);
#pragma omp parallel num_threads(mlc_conv_team(pl, tiles))
    {
        float *col = mlc_conv_slot(pl, ws);
        float *tb = col + K * pl->spt * pl->rows * g->Wo;
#pragma omp for schedule(dynamic, 1)
        for (long u = 0; u < tiles; u++) {
            const mlc_conv_tile t = mlc_conv_tile_at(g, pl, 0, B, u);
            const long np = (long)(t.oh1 - t.oh0) * g->Wo, ncol = t.nn * np;
            for (int grp = 0; grp < g->G; grp++) {
                long ldb;
                const float *b = mlc_conv_tile_cols(g, pl, &t, grp, x, col, &ldb);
                float *yg = y + (t.n * g->O + (long)grp * Og) * P;
                if (t.nn == 1) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Og, (int)np, (int)K, 1.0f,
                                w + (long)grp * Og * K, (int)K, b, (int)ldb, 0.0f, yg + (long)t.oh0 * g->Wo, (int)P);
                    continue;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Og, (int)ncol, (int)K, 1.0f,
                            w + (long)grp * Og * K, (int)K, b, (int)ldb, 0.0f, tb, (int)ncol);
                for (int o = 0; o < Og; o++)
                    for (int j = 0; j < t.nn; j++)
                        memcpy(yg + ((long)j * g->O + o) * P, tb + o * ncol + j * P, sizeof(float) * (size_t)P);
            }
        }
    }
}

/* dx = col2im(w^T . dy); a sample's tiles go to one thread, which owns its dx. */
MLC_HELPER void mlc_conv_cols_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                    const float *w, float *dx, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    const int spu = pl->rows < g->Ho ? 1 : pl->spt; /* samples per unit of work */
    const long units = (B + spu - 1) / spu;
#pragma omp parallel num_threads(mlc_conv_team(pl, units))
    {
        float *col = mlc_conv_slot(pl, ws);
        float *tb = col + K * pl->spt * pl->rows * g->Wo;
#pragma omp for schedule(dynamic, 1)
        for (long un = 0; un < units; un++) {
            const long n0 = un * spu, n1 = n0 + spu < B ? n0 + spu : B;
            if (pl->direct && n1 - n0 == 1) { /* dx = w^T dy, no columns */
                for (int grp = 0; grp < g->G; grp++)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cg, (int)P, Og, 1.0f, w + (long)grp * Og * K,
                                (int)K, dy + (n0 * g->O + (long)grp * Og) * P, (int)P, 0.0f,
                                dx + (n0 * g->C + (long)grp * Cg) * HW, (int)HW);
                continue;
            }
            memset(dx + n0 * g->C * HW, 0, sizeof(float) * (size_t)((n1 - n0) * g->C * HW));
            const long tiles = mlc_conv_ntiles(g, pl, n1 - n0);
            for (long u = 0; u < tiles; u++) {
                const mlc_conv_tile t = mlc_conv_tile_at(g, pl, n0, n1, u);
                const long np = (long)(t.oh1 - t.oh0) * g->Wo, ncol = t.nn * np;
                for (int grp = 0; grp < g->G; grp++) {
                    long lda;
                    const float *a = mlc_conv_tile_dy(g, &t, grp, dy, tb, &lda);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)ncol, Og, 1.0f,
                                w + (long)grp * Og * K, (int)K, a, (int)lda, 0.0f, col, (int)ncol);
                    float *dxg = dx + (t.n * g->C + (long)grp * Cg) * HW;
                    for (int j = 0; j < t.nn; j++)
                        mlc_col2im(g, Cg, col + j * np, ncol, t.oh0, t.oh1, dxg + (long)j * g->C * HW);
                }
            }
        }
    }
}

/* dw = dy . im2col(x)^T summed over the batch: the samples go in min(B, red) fixed chunks,
 * each chunk's sum (one GEMM per tile, accumulated) is computed by one thread, and the
 * chunks' sums are added in chunk order after the workspace's scratch slots. */
MLC_HELPER void mlc_conv_cols_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                      const float *dy, float *dw, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, OK = (long)g->O * K;
    const long nr = B < pl->red ? B : pl->red;
    float *part = ws + (long)pl->slots * pl->slot;
    if (nr < 1) {
        memset(dw, 0, sizeof(float) * (size_t)OK);
        return;
    }
#pragma omp parallel num_threads(mlc_conv_team(pl, nr))
    {
        float *col = mlc_conv_slot(pl, ws);
        float *tb = col + K * pl->spt * pl->rows * g->Wo;
#pragma omp for schedule(dynamic, 1)
        for (long r = 0; r < nr; r++) {
            const long n0 = B * r / nr, n1 = B * (r + 1) / nr;
            float *dwr = nr == 1 ? dw : part + r * OK;
            const long tiles = mlc_conv_ntiles(g, pl, n1 - n0);
            for (long u = 0; u < tiles; u++) {
                const mlc_conv_tile t = mlc_conv_tile_at(g, pl, n0, n1, u);
                const long ncol = t.nn * (long)(t.oh1 - t.oh0) * g->Wo;
                for (int grp = 0; grp < g->G; grp++) {
                    long lda, ldb;
                    const float *b = mlc_conv_tile_cols(g, pl, &t, grp, x, col, &ldb);
                    const float *a = mlc_conv_tile_dy(g, &t, grp, dy, tb, &lda);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Og, (int)K, (int)ncol, 1.0f, a, (int)lda, b,
                                (int)ldb, u ? 1.0f : 0.0f, dwr + (long)grp * Og * K, (int)K);
                }
            }
        }
        if (nr > 1) {
#pragma omp for schedule(static)
            for (long i0 = 0; i0 < OK; i0 += 256) {
                const long i1 = i0 + 256 < OK ? i0 + 256 : OK;
                for (long i = i0; i < i1; i++) dw[i] = part[i];
                for (long r = 1; r < nr; r++)
                    for (long i = i0; i < i1; i++) dw[i] += part[r * OK + i];
            }
        }
    }
}

/* ---- stride-1 convolutions without column matrices (plan mode 1) ----
 * With the input zero-padded into xp [C][Hp][Wp] (Hp = H + 2ph, Wp = W + 2pw), output
 * (oh, ow) of a stride-1 convolution reads xp[c][oh + kh*dh][ow + kw*dw], the flat index
 * q + off[k] with q = oh*Wp + ow and off[k] = (c*Hp + kh*dh)*Wp + kw*dw: over q, row k of
 * the column matrix is xp shifted by off[k], and the GEMM reads it in place. The q with
 * ow >= Wo are junk, computed and dropped; q runs over [0, nq), nq = (Ho-1)*Wp + Wo
 * rounded up to 8, and xp ends with 32 zeros so the last vectors read initialised data.
 * The kernels work on 8-float vectors (GCC vector extensions: AVX with -march=native,
 * pairs of SSE registers without). The input gradient of a stride-1 convolution is the
 * same kind of convolution of dy, with the kernel flipped and in and out channels swapped
 * (padding dh*(KH-1) - ph); the weight gradient is dw[o][k] = sum_q dy[o][q] xp[off[k] + q]
 * with dy spread to the padded width, zeros in the junk columns. */

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

/* The padded layout of a geometry's input: Hp, Wp, the plane Hp*Wp, floats per padded
 * sample (xs: C planes and 32 zeros, rounded to 16) and the q count nq. */
typedef struct mlc_shift_dims {
    long Hp, Wp, plane, xs, nq;
} mlc_shift_dims;

MLC_HELPER mlc_shift_dims mlc_shift_dims_of(const mlc_conv_geom *g) {
    mlc_shift_dims d;
    d.Hp = g->H + 2L * g->ph, d.Wp = g->W + 2L * g->pw, d.plane = d.Hp * d.Wp;
    d.xs = (g->C * d.plane + 32 + 15) & ~15L;
    d.nq = ((g->Ho - 1) * d.Wp + g->Wo + 7) & ~7L;
    return d;
}

/* xp = x [C][H][W] zero-padded to [C][Hp][Wp], then 32 zeros */
MLC_HELPER void mlc_shift_pad(const mlc_conv_geom *g, const mlc_shift_dims *d, const float *x, float *xp) {
    for (int c = 0; c < g->C; c++) {
        float *p = xp + c * d->plane;
        memset(p, 0, sizeof(float) * (size_t)(g->ph * d->Wp));
        for (int h = 0; h < g->H; h++) {
            float *r = p + (g->ph + h) * d->Wp;
            for (int i = 0; i < g->pw; i++) r[i] = 0.0f, r[g->pw + g->W + i] = 0.0f;
            memcpy(r + g->pw, x + ((long)c * g->H + h) * g->W, sizeof(float) * (size_t)g->W);
        }
        memset(p + (g->ph + g->H) * d->Wp, 0, sizeof(float) * (size_t)(g->ph * d->Wp));
    }
    memset(xp + g->C * d->plane, 0, sizeof(float) * (size_t)(d->xs - g->C * d->plane));
}

/* off[k] for k = (c*KH + kh)*KW + kw over one group's Cg input channels */
MLC_HELPER void mlc_shift_offsets(const mlc_conv_geom *g, const mlc_shift_dims *d, int *off) {
    const int Cg = g->C / g->G;
    for (int c = 0, k = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) off[k++] = (int)((c * d->Hp + kh * g->dh) * d->Wp + kw * g->dw);
}

/* The weights as mb blocks of 4 output channels per group, [G][mb][K][4], zeros past the
 * last channel: ap[((grp*mb + b)*K + k)*4 + i] = w[grp*Og + 4b + i][k]. With flip set, the
 * weights of the input-gradient convolution: its output channel c and its k = (o, kh, kw)
 * take w[grp*Og + o][c][KH-1-kh][KW-1-kw] (g: the forward geometry). */
MLC_HELPER void mlc_shift_pack(const mlc_conv_geom *g, const float *w, int flip, float *ap) {
    const int Cg = g->C / g->G, Og = g->O / g->G, T = g->KH * g->KW;
    const int M = flip ? Cg : Og, K = (flip ? Og : Cg) * T, mb = (M + 3) / 4;
    for (int grp = 0; grp < g->G; grp++)
        for (int b = 0; b < mb; b++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < 4; i++) {
                    const int m = 4 * b + i;
                    float v = 0.0f;
                    if (m < M && !flip) v = w[((long)grp * Og + m) * K + k];
                    if (m < M && flip) v = w[(((long)grp * Og + k / T) * Cg + m) * T + (T - 1 - k % T)];
                    ap[(((long)grp * mb + b) * K + k) * 4 + i] = v;
                }
}

/* y[4b + i][q] = sum_k ap[b][k][i] * x[off[k] + q] for b < mb, i < 4, 0 <= q < nq (a
 * multiple of 8); y's rows are ldy apart. Blocks of 4 rows by 24 columns: 12 vector
 * accumulators, each k loads 3 vectors of x and broadcasts 4 weights. */
MLC_HELPER void mlc_shift_gemm(int mb, int K, const float *ap, const int *off, const float *x, long nq, float *y,
                               long ldy) {
    long q = 0;
    for (; q + 24 <= nq; q += 24)
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4, *xq = x + q;
            mlc_v8 c00 = {0}, c01 = {0}, c02 = {0}, c10 = {0}, c11 = {0}, c12 = {0};
            mlc_v8 c20 = {0}, c21 = {0}, c22 = {0}, c30 = {0}, c31 = {0}, c32 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const float *xr = xq + off[k];
                const mlc_v8 x0 = MLC_LD(xr), x1 = MLC_LD(xr + 8), x2 = MLC_LD(xr + 16);
                mlc_v8 s = MLC_BC(a[0]);
                c00 = MLC_FMA(s, x0, c00), c01 = MLC_FMA(s, x1, c01), c02 = MLC_FMA(s, x2, c02);
                s = MLC_BC(a[1]);
                c10 = MLC_FMA(s, x0, c10), c11 = MLC_FMA(s, x1, c11), c12 = MLC_FMA(s, x2, c12);
                s = MLC_BC(a[2]);
                c20 = MLC_FMA(s, x0, c20), c21 = MLC_FMA(s, x1, c21), c22 = MLC_FMA(s, x2, c22);
                s = MLC_BC(a[3]);
                c30 = MLC_FMA(s, x0, c30), c31 = MLC_FMA(s, x1, c31), c32 = MLC_FMA(s, x2, c32);
            }
            float *r = y + (long)b * 4 * ldy + q;
            MLC_ST(r, c00), MLC_ST(r + 8, c01), MLC_ST(r + 16, c02), r += ldy;
            MLC_ST(r, c10), MLC_ST(r + 8, c11), MLC_ST(r + 16, c12), r += ldy;
            MLC_ST(r, c20), MLC_ST(r + 8, c21), MLC_ST(r + 16, c22), r += ldy;
            MLC_ST(r, c30), MLC_ST(r + 8, c31), MLC_ST(r + 16, c32);
        }
    for (; q < nq; q += 8)
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4, *xq = x + q;
            mlc_v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const mlc_v8 x0 = MLC_LD(xq + off[k]);
                c0 = MLC_FMA(MLC_BC(a[0]), x0, c0), c1 = MLC_FMA(MLC_BC(a[1]), x0, c1);
                c2 = MLC_FMA(MLC_BC(a[2]), x0, c2), c3 = MLC_FMA(MLC_BC(a[3]), x0, c3);
            }
            float *r = y + (long)b * 4 * ldy + q;
            MLC_ST(r, c0), MLC_ST(r + ldy, c1), MLC_ST(r + 2 * ldy, c2), MLC_ST(r + 3 * ldy, c3);
        }
}

/* The sum of a vector's lanes, in a fixed order */
MLC_HELPER float mlc_hsum8(const mlc_v8 *v) {
    float t[8];
    memcpy(t, v, sizeof t);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

/* dw[i][j] += sum over samples s < ns and q < nq of d[s*ds + i*nq + q] * x[s*xs + off[j] + q]
 * for i < mi (at most 4; d has 4 rows, nq apart, zero past mi) and j < K; dw's rows are
 * ldw apart. Blocks of 4 rows by 3 taps: 12 vector accumulators, each 8 q load 4 vectors
 * of d and 3 of x; each accumulator's lanes are added at the end. */
MLC_HELPER void mlc_shift_dw(int mi, int K, const int *off, int ns, const float *d, long ds, const float *x, long xs,
                             long nq, float *dw, long ldw) {
    int j = 0;
    for (; j + 3 <= K; j += 3) {
        mlc_v8 c00 = {0}, c01 = {0}, c02 = {0}, c10 = {0}, c11 = {0}, c12 = {0};
        mlc_v8 c20 = {0}, c21 = {0}, c22 = {0}, c30 = {0}, c31 = {0}, c32 = {0};
        for (int s = 0; s < ns; s++) {
            const float *d0 = d + s * ds, *x0 = x + s * xs + off[j], *x1 = x + s * xs + off[j + 1],
                        *x2 = x + s * xs + off[j + 2];
            for (long q = 0; q < nq; q += 8) {
                const mlc_v8 b0 = MLC_LD(x0 + q), b1 = MLC_LD(x1 + q), b2 = MLC_LD(x2 + q);
                mlc_v8 a = MLC_LD(d0 + q);
                c00 = MLC_FMA(a, b0, c00), c01 = MLC_FMA(a, b1, c01), c02 = MLC_FMA(a, b2, c02);
                a = MLC_LD(d0 + nq + q);
                c10 = MLC_FMA(a, b0, c10), c11 = MLC_FMA(a, b1, c11), c12 = MLC_FMA(a, b2, c12);
                a = MLC_LD(d0 + 2 * nq + q);
                c20 = MLC_FMA(a, b0, c20), c21 = MLC_FMA(a, b1, c21), c22 = MLC_FMA(a, b2, c22);
                a = MLC_LD(d0 + 3 * nq + q);
                c30 = MLC_FMA(a, b0, c30), c31 = MLC_FMA(a, b1, c31), c32 = MLC_FMA(a, b2, c32);
            }
        }
        dw[j] += mlc_hsum8(&c00);
        dw[j + 1] += mlc_hsum8(&c01);
        dw[j + 2] += mlc_hsum8(&c02);
        if (mi > 1) {
            dw[ldw + j] += mlc_hsum8(&c10);
            dw[ldw + j + 1] += mlc_hsum8(&c11);
            dw[ldw + j + 2] += mlc_hsum8(&c12);
        }
        if (mi > 2) {
            dw[2 * ldw + j] += mlc_hsum8(&c20);
            dw[2 * ldw + j + 1] += mlc_hsum8(&c21);
            dw[2 * ldw + j + 2] += mlc_hsum8(&c22);
        }
        if (mi > 3) {
            dw[3 * ldw + j] += mlc_hsum8(&c30);
            dw[3 * ldw + j + 1] += mlc_hsum8(&c31);
            dw[3 * ldw + j + 2] += mlc_hsum8(&c32);
        }
    }
    for (; j < K; j++) {
        mlc_v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        for (int s = 0; s < ns; s++) {
            const float *d0 = d + s * ds, *x0 = x + s * xs + off[j];
            for (long q = 0; q < nq; q += 8) {
                const mlc_v8 b0 = MLC_LD(x0 + q);
                c0 = MLC_FMA(MLC_LD(d0 + q), b0, c0), c1 = MLC_FMA(MLC_LD(d0 + nq + q), b0, c1);
                c2 = MLC_FMA(MLC_LD(d0 + 2 * nq + q), b0, c2), c3 = MLC_FMA(MLC_LD(d0 + 3 * nq + q), b0, c3);
            }
        }
        dw[j] += mlc_hsum8(&c0);
        if (mi > 1) dw[ldw + j] += mlc_hsum8(&c1);
        if (mi > 2) dw[2 * ldw + j] += mlc_hsum8(&c2);
        if (mi > 3) dw[3 * ldw + j] += mlc_hsum8(&c3);
    }
}

/* Floats of the shared part of a mode-1 workspace (after the slots) and of one slot:
 * ops_conv.c sizes the workspace by the same rules. op: 0 forward, 1 input gradient,
 * 2 weight gradient. */
MLC_HELPER mlc_conv_geom mlc_shift_bwd_geom(const mlc_conv_geom *g) {
    mlc_conv_geom b = *g;
    b.C = g->O, b.H = g->Ho, b.W = g->Wo, b.O = g->C, b.Ho = g->H, b.Wo = g->W;
    b.ph = g->dh * (g->KH - 1) - g->ph, b.pw = g->dw * (g->KW - 1) - g->pw;
    return b;
}

MLC_HELPER long mlc_shift_slot_floats(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    if (op == 1) {
        const mlc_conv_geom b = mlc_shift_bwd_geom(g);
        return mlc_shift_slot_floats(&b, pl, 0);
    }
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long Og4 = (g->O / g->G + 3) / 4 * 4;
    if (op == 0) return d.xs + Og4 * d.nq;
    return pl->spt * (d.xs + g->G * Og4 * d.nq);
}

/* y = conv(x, w) through padded inputs; ap, off: the packed weights and offsets. One
 * sample per piece of work. */
MLC_HELPER void mlc_shift_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *ap,
                              const int *off, float *y, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Og + 3) / 4, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo;
#pragma omp parallel num_threads(mlc_conv_team(pl, B))
    {
        float *xp = mlc_conv_slot(pl, ws), *out = xp + d.xs;
#pragma omp for schedule(dynamic, 1)
        for (long n = 0; n < B; n++) {
            mlc_shift_pad(g, &d, x + n * CHW, xp);
            for (int grp = 0; grp < g->G; grp++) {
                mlc_shift_gemm(mb, K, ap + (long)grp * mb * 4 * K, off, xp + (long)grp * Cg * d.plane, d.nq, out, d.nq);
                float *yg = y + (n * g->O + (long)grp * Og) * P;
                for (int o = 0; o < Og; o++)
                    for (int oh = 0; oh < g->Ho; oh++)
                        memcpy(yg + o * P + (long)oh * g->Wo, out + o * d.nq + oh * d.Wp, sizeof(float) * (size_t)g->Wo);
            }
        }
    }
}

/* The workspace's shared part: packed weights, then offsets */
MLC_HELPER void mlc_shift_check(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    if (mlc_shift_slot_floats(g, pl, op) > pl->slot) {
        fprintf(stderr, "mlc: internal error: conv workspace slot too small\n");
        abort();
    }
}

/* dw = sum over the batch of dy . columns(x)^T: as mlc_conv_cols_bwd_filter, min(B, red)
 * fixed chunks of samples, each summed by one thread, spt samples at a time; then the
 * chunks' sums are added in order. */
MLC_HELPER void mlc_shift_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                     const float *dy, float *dw, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Og + 3) / 4, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long OK = (long)g->O * K, CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo;
    const long dqs = (long)g->G * mb * 4 * d.nq; /* floats of one sample's spread dy */
    const long nr = B < pl->red ? B : pl->red;
    float *part = ws + (long)pl->slots * pl->slot;
    int *off = (int *)(void *)(part + (long)pl->red * OK);
    if (nr < 1) {
        memset(dw, 0, sizeof(float) * (size_t)OK);
        return;
    }
    mlc_shift_offsets(g, &d, off);
#pragma omp parallel num_threads(mlc_conv_team(pl, nr))
    {
        float *xp = mlc_conv_slot(pl, ws), *dq = xp + pl->spt * d.xs;
#pragma omp for schedule(dynamic, 1)
        for (long r = 0; r < nr; r++) {
            const long n0 = B * r / nr, n1 = B * (r + 1) / nr;
            float *dwr = nr == 1 ? dw : part + r * OK;
            memset(dwr, 0, sizeof(float) * (size_t)OK);
            for (long s0 = n0; s0 < n1; s0 += pl->spt) {
                const int ns = (int)(n1 - s0 < pl->spt ? n1 - s0 : pl->spt);
                for (int j = 0; j < ns; j++) {
                    mlc_shift_pad(g, &d, x + (s0 + j) * CHW, xp + j * d.xs);
                    float *dj = dq + j * dqs;
                    memset(dj, 0, sizeof(float) * (size_t)dqs);
                    for (int grp = 0; grp < g->G; grp++)
                        for (int o = 0; o < Og; o++) {
                            const float *src = dy + ((s0 + j) * g->O + (long)grp * Og + o) * P;
                            float *dst = dj + ((long)grp * mb * 4 + o) * d.nq;
                            for (int oh = 0; oh < g->Ho; oh++)
                                memcpy(dst + oh * d.Wp, src + (long)oh * g->Wo, sizeof(float) * (size_t)g->Wo);
                        }
                }
                for (int grp = 0; grp < g->G; grp++)
                    for (int b = 0; b < mb; b++)
                        mlc_shift_dw(Og - 4 * b < 4 ? Og - 4 * b : 4, K, off, ns, dq + ((long)grp * mb + b) * 4 * d.nq,
                                     dqs, xp + (long)grp * Cg * d.plane, d.xs, d.nq, dwr + ((long)grp * Og + 4 * b) * K, K);
            }
        }
        if (nr > 1) {
#pragma omp for schedule(static)
            for (long i0 = 0; i0 < OK; i0 += 256) {
                const long i1 = i0 + 256 < OK ? i0 + 256 : OK;
                for (long i = i0; i < i1; i++) dw[i] = part[i];
                for (long r = 1; r < nr; r++)
                    for (long i = i0; i < i1; i++) dw[i] += part[r * OK + i];
            }
        }
    }
}

/* ---- the entry points conv2d and its two gradient ops emit a call to ---- */

/* y = conv(x, w) */
MLC_HELPER void mlc_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w,
                               float *y, float *ws) {
    if (pl->mode == 0) {
        mlc_conv_cols_fwd(g, pl, B, x, w, y, ws);
        return;
    }
    mlc_shift_check(g, pl, 0);
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    int *off = (int *)(void *)(ap + (long)g->G * ((Og + 3) / 4 * 4) * K);
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    mlc_shift_pack(g, w, 0, ap);
    mlc_shift_offsets(g, &d, off);
    mlc_shift_fwd(g, pl, B, x, ap, off, y, ws);
}

/* dx = the gradient of conv(x, w) with respect to x, given dy */
MLC_HELPER void mlc_conv2d_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                    const float *w, float *dx, float *ws) {
    if (pl->mode == 0) {
        mlc_conv_cols_bwd_data(g, pl, B, dy, w, dx, ws);
        return;
    }
    mlc_shift_check(g, pl, 1);
    const mlc_conv_geom b = mlc_shift_bwd_geom(g);
    const int Cg = g->C / g->G, K = g->O / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    int *off = (int *)(void *)(ap + (long)g->G * ((Cg + 3) / 4 * 4) * K);
    const mlc_shift_dims d = mlc_shift_dims_of(&b);
    mlc_shift_pack(g, w, 1, ap);
    mlc_shift_offsets(&b, &d, off);
    mlc_shift_fwd(&b, pl, B, dy, ap, off, dx, ws);
}

/* dw = the gradient of conv(x, w) with respect to w, given dy */
MLC_HELPER void mlc_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                      const float *dy, float *dw, float *ws) {
    if (pl->mode == 0) {
        mlc_conv_cols_bwd_filter(g, pl, B, x, dy, dw, ws);
        return;
    }
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

/* Sum of one row of S floats (vectorizable), the rows then added in double in a fixed
 * order: accurate for N in the millions and the same whatever the thread count. */
MLC_HELPER float mlc_row_sum(const float *x, long S) {
    float s = 0.0f;
    for (long i = 0; i < S; i++) s += x[i];
    return s;
}

/* st[0][c] = mean, st[1][c] = biased variance (two passes: no cancellation) */
MLC_HELPER void mlc_bn_stats(long B, long C, long S, const float *x, float *st) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long c = 0; c < C; c++) {
        double s = 0.0, v = 0.0;
        for (long n = 0; n < B; n++) s += mlc_row_sum(x + (n * C + c) * S, S);
        const float mean = (float)(s / (double)(B * S));
        for (long n = 0; n < B; n++) {
            const float *xr = x + (n * C + c) * S;
            float r = 0.0f;
            for (long i = 0; i < S; i++) r += (xr[i] - mean) * (xr[i] - mean);
            v += r;
        }
        st[c] = mean;
        st[C + c] = (float)(v / (double)(B * S));
    }
}

/* y = (x - mean) * rsqrt(var + eps) * gamma + beta, as one multiply-add per element */
MLC_HELPER void mlc_bn_apply(long B, long C, long S, const float *x, const float *st, const float *gamma,
                             const float *beta, float eps, float *y) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long r = 0; r < B * C; r++) {
        const long c = r % C;
        const float scale = gamma[c] / sqrtf(st[C + c] + eps), shift = beta[c] - st[c] * scale;
        const float *xr = x + r * S;
        float *yr = y + r * S;
        for (long i = 0; i < S; i++) yr[i] = xr[i] * scale + shift;
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
            const float *d = dy + (n * C + c) * S, *xr = x + (n * C + c) * S;
            float a = 0.0f, b = 0.0f;
            for (long i = 0; i < S; i++) a += d[i], b += d[i] * (xr[i] - mean);
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
