/* conv_gemm.c - the vector GEMM kernel of all three convolution ops: output rows in
 * blocks of 4 by MLC_VW-column segments, the column matrix read in place as shifted rows of
 * a padded input (mlc_conv_layout.h). */
#include "conv_internal.h"

/* conv_internal.h says what it computes */
__attribute__((noinline)) void mlc_shift_gemm(int mb, int K, const float *ap, const int *off, const float *x, long s0,
                                              long s1, long spr, long Wq, int wlast, float *y, long ldy, long yrow) {
#define MLC_SEGX(s) ((s) / spr * Wq + (s) % spr * MLC_VW)
#define MLC_SEGY(s) ((s) / spr * yrow + (s) % spr * MLC_VW)
#define MLC_SEGN(s) ((s) % spr == spr - 1 ? wlast : MLC_VW)
    long sg = s0;
    for (; sg + 3 <= s1 && s1 - sg != 4; sg += 3) { /* 4 left: two blocks of 2 */
        const float *x0 = x + MLC_SEGX(sg);
        const long d1 = MLC_SEGX(sg + 1) - MLC_SEGX(sg), d2 = MLC_SEGX(sg + 2) - MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg), y1 = MLC_SEGY(sg + 1), y2 = MLC_SEGY(sg + 2);
        const int n0 = MLC_SEGN(sg), n1 = MLC_SEGN(sg + 1), n2 = MLC_SEGN(sg + 2);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4, *const ae = a + 4L * K;
            const int *ok = off;
            mlc_vf c00 = {0}, c01 = {0}, c02 = {0}, c10 = {0}, c11 = {0}, c12 = {0};
            mlc_vf c20 = {0}, c21 = {0}, c22 = {0}, c30 = {0}, c31 = {0}, c32 = {0};
            for (; a < ae; a += 4, ok++) {
                const float *xr = x0 + *ok;
                const mlc_vf v0 = MLC_LD(xr), v1 = MLC_LD(xr + d1), v2 = MLC_LD(xr + d2);
                mlc_vf t = MLC_BC(a[0]);
                c00 = MLC_FMA(t, v0, c00), c01 = MLC_FMA(t, v1, c01), c02 = MLC_FMA(t, v2, c02);
                t = MLC_BC(a[1]);
                c10 = MLC_FMA(t, v0, c10), c11 = MLC_FMA(t, v1, c11), c12 = MLC_FMA(t, v2, c12);
                t = MLC_BC(a[2]);
                c20 = MLC_FMA(t, v0, c20), c21 = MLC_FMA(t, v1, c21), c22 = MLC_FMA(t, v2, c22);
                t = MLC_BC(a[3]);
                c30 = MLC_FMA(t, v0, c30), c31 = MLC_FMA(t, v1, c31), c32 = MLC_FMA(t, v2, c32);
            }
            float *r = y + (long)b * 4 * ldy;
            MLC_STN(r + y0, c00, n0);
            MLC_STN(r + y1, c01, n1);
            MLC_STN(r + y2, c02, n2);
            r += ldy;
            MLC_STN(r + y0, c10, n0);
            MLC_STN(r + y1, c11, n1);
            MLC_STN(r + y2, c12, n2);
            r += ldy;
            MLC_STN(r + y0, c20, n0);
            MLC_STN(r + y1, c21, n1);
            MLC_STN(r + y2, c22, n2);
            r += ldy;
            MLC_STN(r + y0, c30, n0);
            MLC_STN(r + y1, c31, n1);
            MLC_STN(r + y2, c32, n2);
        }
    }
    for (; sg + 2 <= s1; sg += 2) {
        const float *x0 = x + MLC_SEGX(sg);
        const long d1 = MLC_SEGX(sg + 1) - MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg), y1 = MLC_SEGY(sg + 1);
        const int n0 = MLC_SEGN(sg), n1 = MLC_SEGN(sg + 1);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4;
            mlc_vf c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const float *xr = x0 + off[k];
                const mlc_vf v0 = MLC_LD(xr), v1 = MLC_LD(xr + d1);
                mlc_vf t = MLC_BC(a[0]);
                c00 = MLC_FMA(t, v0, c00), c01 = MLC_FMA(t, v1, c01);
                t = MLC_BC(a[1]);
                c10 = MLC_FMA(t, v0, c10), c11 = MLC_FMA(t, v1, c11);
                t = MLC_BC(a[2]);
                c20 = MLC_FMA(t, v0, c20), c21 = MLC_FMA(t, v1, c21);
                t = MLC_BC(a[3]);
                c30 = MLC_FMA(t, v0, c30), c31 = MLC_FMA(t, v1, c31);
            }
            float *r = y + (long)b * 4 * ldy;
            MLC_STN(r + y0, c00, n0);
            MLC_STN(r + y1, c01, n1);
            r += ldy;
            MLC_STN(r + y0, c10, n0);
            MLC_STN(r + y1, c11, n1);
            r += ldy;
            MLC_STN(r + y0, c20, n0);
            MLC_STN(r + y1, c21, n1);
            r += ldy;
            MLC_STN(r + y0, c30, n0);
            MLC_STN(r + y1, c31, n1);
        }
    }
    if (sg < s1) {
        const float *x0 = x + MLC_SEGX(sg);
        const long y0 = MLC_SEGY(sg);
        const int n0 = MLC_SEGN(sg);
        for (int b = 0; b < mb; b++) {
            const float *a = ap + (long)b * K * 4;
            mlc_vf c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            for (int k = 0; k < K; k++, a += 4) {
                const mlc_vf v0 = MLC_LD(x0 + off[k]);
                c0 = MLC_FMA(MLC_BC(a[0]), v0, c0), c1 = MLC_FMA(MLC_BC(a[1]), v0, c1);
                c2 = MLC_FMA(MLC_BC(a[2]), v0, c2), c3 = MLC_FMA(MLC_BC(a[3]), v0, c3);
            }
            float *r = y + (long)b * 4 * ldy + y0;
            MLC_STN(r, c0, n0);
            MLC_STN(r + ldy, c1, n0);
            MLC_STN(r + 2 * ldy, c2, n0);
            MLC_STN(r + 3 * ldy, c3, n0);
        }
    }
#undef MLC_SEGX
#undef MLC_SEGY
#undef MLC_SEGN
}

/* The offsets in x of n positions from p on, q(p) = (p / Wo)*Wq + p % Wo: one division,
 * then steps along the row */
static inline void mlc_cv_offsets(long p, int n, long Wo, long Wq, long *q) {
    long i = p / Wo, j = p % Wo;
    for (int r = 0; r < n; r++, j++) {
        if (j == Wo) i++, j = 0;
        q[r] = i * Wq + j;
    }
}

/* conv_internal.h says what it computes. A block's positions read x through a pointer
 * each, fixed for the block (which may run across output rows), tap k at off[k]. (Blocks
 * of 12 positions, 24 accumulators in AVX-512's 32 registers, ran no faster: 0.91-1.05x
 * on resnet's and lenet's layers.) */
__attribute__((noinline)) void mlc_shift_gemm_cv(int K, int ob, const float *wt, long ldw, const int *off,
                                                 const float *x, long p0, long p1, long Wo, long Wq, float *yt,
                                                 long ldt) {
    long p = p0;
    if (p1 - p0 >= 6)
        for (;; p += 6) {
            if (p + 6 > p1) { /* the last block ends at p1: it computes some positions again, to the same bits */
                if (p == p1) break;
                p = p1 - 6;
            }
            long q[6];
            mlc_cv_offsets(p, 6, Wo, Wq, q);
            const float *x0 = x + q[0], *x1 = x + q[1], *x2 = x + q[2], *x3 = x + q[3], *x4 = x + q[4], *x5 = x + q[5];
            for (int b = 0; b < ob; b++) {
                const float *w = wt + 2 * MLC_VW * b;
                MLC_ZERO_6X2(c);
                for (int k = 0; k < K; k++, w += ldw) {
                    const long o = off[k];
                    const mlc_vf w0 = MLC_LD(w), w1 = MLC_LD(w + MLC_VW);
                    MLC_FMA_6X2(c, x0[o], x1[o], x2[o], x3[o], x4[o], x5[o], w0, w1);
                }
                MLC_ST_6X2(c, yt + p * ldt + 2 * MLC_VW * b, ldt);
            }
        }
    for (; p < p1; p++) { /* fewer than 6 in all */
        const float *x0 = x + p / Wo * Wq + p % Wo;
        for (int b = 0; b < ob; b++) {
            const float *w = wt + 2 * MLC_VW * b;
            mlc_vf c00 = {0}, c01 = {0};
            for (int k = 0; k < K; k++, w += ldw) {
                const mlc_vf t = MLC_BC(x0[off[k]]);
                c00 = MLC_FMA(t, MLC_LD(w), c00), c01 = MLC_FMA(t, MLC_LD(w + MLC_VW), c01);
            }
            float *r = yt + p * ldt + 2 * MLC_VW * b;
            MLC_ST(r, c00), MLC_ST(r + MLC_VW, c01);
        }
    }
}
