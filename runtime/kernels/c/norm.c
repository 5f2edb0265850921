/* norm.c - batch norm's per-channel sums over x viewed as [B, C, S] (statistics, the
 * parameter gradients) and its input gradient. */
#include "mlc_kernels.h"
#include "simd.h"

/* Sums over one row of S floats in MLC_VW-float vectors, lanes and the scalar tail added in a
 * fixed order; the rows are then added in double in a fixed order: accurate for N in the
 * millions and the same whatever the thread count. */
static inline float mlc_row_sum(const float *x, long S) {
    mlc_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    long i = 0;
    for (; i + 4 * MLC_VW <= S; i += 4 * MLC_VW)
        a0 += MLC_LD(x + i), a1 += MLC_LD(x + i + MLC_VW), a2 += MLC_LD(x + i + 2 * MLC_VW),
            a3 += MLC_LD(x + i + 3 * MLC_VW);
    for (; i + MLC_VW <= S; i += MLC_VW) a0 += MLC_LD(x + i);
    const mlc_vf t = (a0 + a1) + (a2 + a3);
    float s = mlc_hsum(&t);
    for (; i < S; i++) s += x[i];
    return s;
}

/* sum of (x - m)^2 over one row */
static inline float mlc_row_sqdev(const float *x, long S, float m) {
    const mlc_vf mv = MLC_BC(m);
    mlc_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    long i = 0;
    for (; i + 4 * MLC_VW <= S; i += 4 * MLC_VW) {
        const mlc_vf d0 = MLC_LD(x + i) - mv, d1 = MLC_LD(x + i + MLC_VW) - mv, d2 = MLC_LD(x + i + 2 * MLC_VW) - mv,
                     d3 = MLC_LD(x + i + 3 * MLC_VW) - mv;
        a0 += d0 * d0, a1 += d1 * d1, a2 += d2 * d2, a3 += d3 * d3;
    }
    for (; i + MLC_VW <= S; i += MLC_VW) {
        const mlc_vf d0 = MLC_LD(x + i) - mv;
        a0 += d0 * d0;
    }
    const mlc_vf t = (a0 + a1) + (a2 + a3);
    float s = mlc_hsum(&t);
    for (; i < S; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

/* *sd = sum of d, *sdx = sum of d * (x - m) over one row: four pairs of accumulators, as
 * many as hide the latency of a multiply and an add (two pairs ran at a third of the
 * loads' rate) */
static inline void mlc_row_dot_dev(const float *d, const float *x, long S, float m, float *sd, float *sdx) {
    const mlc_vf mv = MLC_BC(m);
    mlc_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    long i = 0;
    for (; i + 4 * MLC_VW <= S; i += 4 * MLC_VW) {
        const mlc_vf d0 = MLC_LD(d + i), d1 = MLC_LD(d + i + MLC_VW), d2 = MLC_LD(d + i + 2 * MLC_VW),
                     d3 = MLC_LD(d + i + 3 * MLC_VW);
        a0 += d0, a1 += d1, a2 += d2, a3 += d3;
        b0 += d0 * (MLC_LD(x + i) - mv), b1 += d1 * (MLC_LD(x + i + MLC_VW) - mv);
        b2 += d2 * (MLC_LD(x + i + 2 * MLC_VW) - mv), b3 += d3 * (MLC_LD(x + i + 3 * MLC_VW) - mv);
    }
    for (; i + MLC_VW <= S; i += MLC_VW) {
        const mlc_vf d0 = MLC_LD(d + i);
        a0 += d0, b0 += d0 * (MLC_LD(x + i) - mv);
    }
    const mlc_vf ta = (a0 + a1) + (a2 + a3), tb = (b0 + b1) + (b2 + b3);
    float a = mlc_hsum(&ta), b = mlc_hsum(&tb);
    for (; i < S; i++) a += d[i], b += d[i] * (x[i] - m);
    *sd = a, *sdx = b;
}

void mlc_bn_stats(long B, long C, long S, const float *x, float *st) {
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

/* pg's two sums for channel c (mlc_bn_param_grads) */
static inline void mlc_bn_pgrad_channel(long B, long C, long S, long c, const float *dy, const float *x,
                                        const float *st, float eps, float *pg) {
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

/* dx's row r = (n, c) (mlc_bn_bwd), folded into dx = k1 dy + k2 x + k3 */
static inline void mlc_bn_dx_row(long B, long C, long S, long r, const float *dy, const float *x, const float *st,
                                 const float *pg, const float *gamma, float eps, float *dx) {
    const float N = (float)(B * S);
    const long c = r % C;
    const float rstd = 1.0f / sqrtf(st[C + c] + eps), g = gamma[c] * rstd;
    const float k1 = g, k2 = -g * rstd * pg[C + c] / N;
    const float k3 = -g * pg[c] / N - k2 * st[c];
    const float *d = dy + r * S, *xr = x + r * S;
    float *o = dx + r * S;
    for (long i = 0; i < S; i++) o[i] = k1 * d[i] + k2 * xr[i] + k3;
}

void mlc_bn_param_grads(long B, long C, long S, const float *dy, const float *x, const float *st, float eps,
                        float *pg) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long c = 0; c < C; c++) mlc_bn_pgrad_channel(B, C, S, c, dy, x, st, eps, pg);
}

void mlc_bn_bwd(long B, long C, long S, const float *dy, const float *x, const float *st, const float *pg,
                const float *gamma, float eps, float *dx) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long r = 0; r < B * C; r++) mlc_bn_dx_row(B, C, S, r, dy, x, st, pg, gamma, eps, dx);
}

/* A channel's rows right after its sums, while they are in the core's cache: the
 * channel's dy and x (2*B*S floats, 400 KB for a 28x28 plane at batch 64) are read from
 * memory once, not twice. */
void mlc_bn_backward(long B, long C, long S, const float *dy, const float *x, const float *st, const float *gamma,
                     float eps, float *pg, float *dx) {
#pragma omp parallel for schedule(static) if (B * C * S > 32768)
    for (long c = 0; c < C; c++) {
        mlc_bn_pgrad_channel(B, C, S, c, dy, x, st, eps, pg);
        for (long n = 0; n < B; n++) mlc_bn_dx_row(B, C, S, n * C + c, dy, x, st, pg, gamma, eps, dx);
    }
}
