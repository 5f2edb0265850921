/* rownorm.c - layer and RMS norm over the rows of x [rows, D] (D the last axis of the
 * model's tensor), and their gradients. Each row is summed in MLC_VW-float lanes added in a
 * fixed order; the parameter gradients add the rows in order, each thread owning blocks of
 * columns: the same bits whatever the thread count. `centred` is 1 for layer norm (the
 * row's mean subtracted), 0 for RMS norm (mean 0). */
#include <math.h>

#include "mlc_kernels.h"
#include "simd.h"

enum { COLS = 16 }; /* columns per block of the parameter gradients: one cache line */

static inline float lane_sum(const float *x, long D) {
    mlc_vf a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * MLC_VW <= D; i += 2 * MLC_VW) a0 += MLC_LD(x + i), a1 += MLC_LD(x + i + MLC_VW);
    for (; i + MLC_VW <= D; i += MLC_VW) a0 += MLC_LD(x + i);
    const mlc_vf t = a0 + a1;
    float s = mlc_hsum(&t);
    for (; i < D; i++) s += x[i];
    return s;
}

static inline float lane_sqdev(const float *x, long D, float m) {
    const mlc_vf mv = MLC_BC(m);
    mlc_vf a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * MLC_VW <= D; i += 2 * MLC_VW) {
        const mlc_vf d0 = MLC_LD(x + i) - mv, d1 = MLC_LD(x + i + MLC_VW) - mv;
        a0 += d0 * d0, a1 += d1 * d1;
    }
    for (; i + MLC_VW <= D; i += MLC_VW) {
        const mlc_vf d0 = MLC_LD(x + i) - mv;
        a0 += d0 * d0;
    }
    const mlc_vf t = a0 + a1;
    float s = mlc_hsum(&t);
    for (; i < D; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

/* One row's mean (0 unless centred) and rstd: two passes, no cancellation. */
static inline void row_stats(const float *x, long D, int centred, float eps, float *mu, float *rs) {
    *mu = centred ? lane_sum(x, D) / (float)D : 0.0f;
    *rs = 1.0f / sqrtf(lane_sqdev(x, D, *mu) / (float)D + eps);
}

void mlc_row_norm(long rows, long D, int centred, float eps, const float *x, const float *w, const float *b, float *y) {
#pragma omp parallel for schedule(static) if (rows * D > 32768)
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D, mu, rs;
        row_stats(xr, D, centred, eps, &mu, &rs);
        if (b)
            for (long j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
        else
            for (long j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j];
    }
}

void mlc_row_norm_stats(long rows, long D, int centred, float eps, const float *x, float *st) {
#pragma omp parallel for schedule(static) if (rows * D > 32768)
    for (long r = 0; r < rows; r++) row_stats(x + r * D, D, centred, eps, &st[2 * r], &st[2 * r + 1]);
}

void mlc_row_norm_bwd(long rows, long D, int centred, const float *dy, const float *x, const float *w, const float *st,
                      float *dx) {
#pragma omp parallel for schedule(static) if (rows * D > 32768)
    for (long r = 0; r < rows; r++) {
        const float *d = dy + r * D, *xr = x + r * D;
        const float mu = st[2 * r], rs = st[2 * r + 1];
        const mlc_vf mv = MLC_BC(mu);
        mlc_vf ag = {0}, agx = {0};
        long j = 0;
        for (; j + MLC_VW <= D; j += MLC_VW) {
            const mlc_vf g = MLC_LD(d + j) * MLC_LD(w + j);
            ag += g, agx += g * (MLC_LD(xr + j) - mv);
        }
        float sg = mlc_hsum(&ag), sgx = mlc_hsum(&agx);
        for (; j < D; j++) sg += d[j] * w[j], sgx += d[j] * w[j] * (xr[j] - mu);
        /* mean(g) (layer norm only) and mean(g * xhat) */
        const float mg = centred ? sg / (float)D : 0.0f, mgx = sgx * rs / (float)D;
        float *o = dx + r * D;
        for (j = 0; j < D; j++) o[j] = rs * (d[j] * w[j] - mg - (xr[j] - mu) * rs * mgx);
    }
}

void mlc_row_norm_param_grads(long rows, long D, int centred, const float *dy, const float *x, const float *st,
                              float *pg) {
    const long blocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (rows * D > 32768)
    for (long blk = 0; blk < blocks; blk++) {
        const long j0 = blk * COLS, n = D - j0 < COLS ? D - j0 : COLS;
        float sb[COLS] = {0}, sw[COLS] = {0};
        for (long r = 0; r < rows; r++) {
            const float *d = dy + r * D + j0, *xr = x + r * D + j0;
            const float mu = st[2 * r], rs = st[2 * r + 1];
            for (long j = 0; j < n; j++) sb[j] += d[j], sw[j] += d[j] * (xr[j] - mu) * rs;
        }
        for (long j = 0; j < n; j++) {
            if (centred) pg[j0 + j] = sb[j];
            pg[(centred ? D : 0) + j0 + j] = sw[j];
        }
    }
}
