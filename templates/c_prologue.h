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

/* col[(c*KH + kh)*KW + kw][oh*Wo + ow] = x[c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw], 0
 * outside; a row of col is ld floats apart from the next. */
MLC_HELPER void mlc_im2col(const mlc_conv_geom *g, int Cg, const float *x, float *col, long ld) {
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((long)(c * g->KH + kh) * g->KW + kw) * ld;
                const float *xc = x + (long)c * g->H * g->W;
                for (int oh = 0; oh < g->Ho; oh++) {
                    const int ih = oh * g->sh - g->ph + kh * g->dh;
                    float *r = row + (long)oh * g->Wo;
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

/* The adjoint of mlc_im2col: dx[c][ih][iw] += col[...]; dx must start zeroed. */
MLC_HELPER void mlc_col2im(const mlc_conv_geom *g, int Cg, const float *col, long ld, float *dx) {
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                const float *row = col + ((long)(c * g->KH + kh) * g->KW + kw) * ld;
                float *dc = dx + (long)c * g->H * g->W;
                for (int oh = 0; oh < g->Ho; oh++) {
                    const int ih = oh * g->sh - g->ph + kh * g->dh;
                    if (ih < 0 || ih >= g->H) continue;
                    float *dr = dc + (long)ih * g->W;
                    const float *r = row + (long)oh * g->Wo;
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

/* The convolutions run as one large GEMM per group over the whole batch, which keeps
 * OpenBLAS efficient when channel counts are small: the column matrix of all samples is
 * col [K = Cg*KH*KW][B*P] (P = Ho*Wo), and the output or its gradient is handled in the
 * same "channel-major" layout t [Og][B*P], moved to and from NCHW by mlc_conv_gather /
 * mlc_conv_scatter. Workspace: (K + Og) * B * P floats. */

/* t[o][n*P + p] = y[n][o0 + o][p] */
MLC_HELPER void mlc_conv_gather(long B, int O, int o0, int Og, long P, const float *y, float *t) {
#pragma omp parallel for schedule(static) if (B * Og * P > 32768)
    for (long n = 0; n < B; n++)
        for (int o = 0; o < Og; o++) memcpy(t + o * B * P + n * P, y + (n * O + o0 + o) * P, sizeof(float) * (size_t)P);
}

/* y[n][o0 + o][p] = t[o][n*P + p] */
MLC_HELPER void mlc_conv_scatter(long B, int O, int o0, int Og, long P, const float *t, float *y) {
#pragma omp parallel for schedule(static) if (B * Og * P > 32768)
    for (long n = 0; n < B; n++)
        for (int o = 0; o < Og; o++) memcpy(y + (n * O + o0 + o) * P, t + o * B * P + n * P, sizeof(float) * (size_t)P);
}

/* col for all samples of group grp */
MLC_HELPER void mlc_conv_cols(const mlc_conv_geom *g, long B, int grp, const float *x, float *col) {
    const int Cg = g->C / g->G;
    const long P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
#pragma omp parallel for schedule(static)
    for (long n = 0; n < B; n++) mlc_im2col(g, Cg, x + (n * g->C + (long)grp * Cg) * HW, col + n * P, B * P);
}

/* y = conv(x, w) */
MLC_HELPER void mlc_conv2d_fwd(const mlc_conv_geom *g, long B, const float *x, const float *w, float *y, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo;
    float *col = ws, *t = ws + K * B * P;
    for (int grp = 0; grp < g->G; grp++) {
        mlc_conv_cols(g, B, grp, x, col);
        mlc_sgemm(0, 0, Og, (int)(B * P), (int)K, w + (long)grp * Og * K, (int)K, col, (int)(B * P), t, (int)(B * P));
        mlc_conv_scatter(B, g->O, grp * Og, Og, P, t, y);
    }
}

/* dx = col2im(w^T . dy) */
MLC_HELPER void mlc_conv2d_bwd_data(const mlc_conv_geom *g, long B, const float *dy, const float *w, float *dx, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    float *col = ws, *t = ws + K * B * P;
    for (int grp = 0; grp < g->G; grp++) {
        mlc_conv_gather(B, g->O, grp * Og, Og, P, dy, t);
        mlc_sgemm(1, 0, (int)K, (int)(B * P), Og, w + (long)grp * Og * K, (int)K, t, (int)(B * P), col, (int)(B * P));
#pragma omp parallel for schedule(static)
        for (long n = 0; n < B; n++) {
            float *dxg = dx + (n * g->C + (long)grp * Cg) * HW;
            memset(dxg, 0, sizeof(float) * (size_t)(Cg * HW));
            mlc_col2im(g, Cg, col + n * P, B * P, dxg);
        }
    }
}

/* dw = dy . im2col(x)^T, one GEMM whose inner dimension runs over the whole batch; each
 * element of dw is summed by one thread, so results depend on the thread count only
 * through OpenBLAS's blocking of the output. */
MLC_HELPER void mlc_conv2d_bwd_filter(const mlc_conv_geom *g, long B, const float *x, const float *dy, float *dw,
                                      float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo;
    float *col = ws, *t = ws + K * B * P;
    for (int grp = 0; grp < g->G; grp++) {
        mlc_conv_cols(g, B, grp, x, col);
        mlc_conv_gather(B, g->O, grp * Og, Og, P, dy, t);
        mlc_sgemm(0, 1, Og, (int)K, (int)(B * P), t, (int)(B * P), col, (int)(B * P), dw + (long)grp * Og * K, (int)K);
    }
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
