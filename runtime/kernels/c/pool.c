/* pool.c - max and average pooling over NCHW planes, forward and backward; the common
 * 2x2 stride-2 max pooling of even planes has its own loops. */
#include <string.h>

#include "mlc_kernels.h"
#include "simd.h"

/* The common 2x2, stride 2 pooling of an even-sized plane: windows tile the plane. */
static inline int mlc_pool_2x2(const mlc_pool_geom *g) {
    return g->KH == 2 && g->KW == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->H % 2 == 0 &&
           g->W % 2 == 0;
}

void mlc_maxpool2d_fwd(const mlc_pool_geom *g, long planes, const float *x, float *y) {
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

#if defined(MLC_SHUF)
typedef int mlc_i8 __attribute__((vector_size(32)));

/* Four 2x2 windows at once: 8 columns of a row pair, r0 above r1, and their 4 gradients.
 * Each window's maximum in the scalar loop's order (left then right, top then bottom; the
 * first maximum wins, a NaN loses every comparison), as masks over both lanes of each
 * window's column pair; dx gets dy where the mask is set, +0 elsewhere: the scalar loop's
 * bits. It reads everything before it writes, so dx may be x. */
static inline void maxpool2x2_bwd4(const float *r0, const float *r1, const float *dyr, float *d0, float *d1) {
    const mlc_f8 top = MLC_LD8(r0), bot = MLC_LD8(r1);
    const mlc_f8 a = MLC_SHUF(top, top, 0, 0, 2, 2, 4, 4, 6, 6), b = MLC_SHUF(top, top, 1, 1, 3, 3, 5, 5, 7, 7);
    const mlc_f8 c = MLC_SHUF(bot, bot, 0, 0, 2, 2, 4, 4, 6, 6), d = MLC_SHUF(bot, bot, 1, 1, 3, 3, 5, 5, 7, 7);
    const mlc_f8 v = {dyr[0], dyr[0], dyr[1], dyr[1], dyr[2], dyr[2], dyr[3], dyr[3]};
    const mlc_i8 s1 = b > a, m1 = (s1 & (mlc_i8)b) | (~s1 & (mlc_i8)a);
    const mlc_i8 s2 = c > (mlc_f8)m1, m2 = (s2 & (mlc_i8)c) | (~s2 & m1);
    const mlc_i8 s3 = d > (mlc_f8)m2;
    const mlc_i8 odd = {0, -1, 0, -1, 0, -1, 0, -1};
    const mlc_i8 later = s2 | s3; /* the bottom row won */
    const mlc_i8 up = (odd & s1 & ~later) | (~odd & ~(s1 | later)), down = (odd & s3) | (~odd & s2 & ~s3);
    MLC_ST8(d0, (mlc_f8)(up & (mlc_i8)v));
    MLC_ST8(d1, (mlc_f8)(down & (mlc_i8)v));
}
#endif

void mlc_maxpool2d_bwd(const mlc_pool_geom *g, long planes, const float *dy, const float *x, float *dx) {
    if (mlc_pool_2x2(g)) {
        /* Windows tile the plane: every dx element is written once, no zeroing pass. */
#pragma omp parallel for schedule(static) if (planes * g->H * g->W > 32768)
        for (long p = 0; p < planes * g->Ho; p++) {
            const float *r0 = x + 2 * p * g->W, *r1 = r0 + g->W;
            float *d0 = dx + 2 * p * g->W, *d1 = d0 + g->W;
            const float *dyr = dy + p * g->Wo;
#if defined(MLC_SHUF)
            /* Four windows a step, without a branch: the scalar loop branches on each
             * comparison, which a ReLU's output gives no order to predict, and took a
             * fifth of lenet's step (bench/README.md). The last 1-3 windows go through a
             * copy. */
            int ow = 0;
            for (; ow + 4 <= g->Wo; ow += 4)
                maxpool2x2_bwd4(r0 + 2 * ow, r1 + 2 * ow, dyr + ow, d0 + 2 * ow, d1 + 2 * ow);
            if (ow < g->Wo) {
                const int n = g->Wo - ow;
                float t0[8] = {0}, t1[8] = {0}, tv[4] = {0};
                for (int i = 0; i < 2 * n; i++) t0[i] = r0[2 * ow + i], t1[i] = r1[2 * ow + i];
                for (int i = 0; i < n; i++) tv[i] = dyr[ow + i];
                maxpool2x2_bwd4(t0, t1, tv, t0, t1);
                for (int i = 0; i < 2 * n; i++) d0[2 * ow + i] = t0[i], d1[2 * ow + i] = t1[i];
            }
#else
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
#endif
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

void mlc_avgpool2d_fwd(const mlc_pool_geom *g, long planes, const float *x, float *y) {
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

void mlc_avgpool2d_bwd(const mlc_pool_geom *g, long planes, const float *dy, float *dx) {
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
