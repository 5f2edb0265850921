/* pool.c - max and average pooling over NCHW planes, forward and backward; the common
 * 2x2 stride-2 max pooling of even planes has its own loops. */
#include <string.h>

#include "mlc_kernels.h"

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

void mlc_maxpool2d_bwd(const mlc_pool_geom *g, long planes, const float *dy, const float *x, float *dx) {
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
