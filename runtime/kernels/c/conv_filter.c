/* conv_filter.c - the convolution's weight gradient, dw = sum over samples of dy .
 * columns(x)^T: fixed chunks of samples, each summed by one thread (dy transposed so the
 * vectors run over output channels), the chunks' partial sums added in chunk order. */
#include "conv_internal.h"

#define CB MLC_DW_CB

/* conv_internal.h says what it computes */
__attribute__((noinline)) void mlc_shift_dwt(int K, int ob, const int *off, int ns, const float *x, long xs,
                                             const float *dt, long ds, long ldt, int Ho, int Wo, long Wq, float *dwt) {
    int k = 0;
    for (; k + 6 <= K; k += 6)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + CB * b;
            mlc_vf c00 = MLC_LD(c), c01 = MLC_LD(c + MLC_VW), c10 = MLC_LD(c + ldt), c11 = MLC_LD(c + ldt + MLC_VW);
            mlc_vf c20 = MLC_LD(c + 2 * ldt), c21 = MLC_LD(c + 2 * ldt + MLC_VW), c30 = MLC_LD(c + 3 * ldt);
            mlc_vf c31 = MLC_LD(c + 3 * ldt + MLC_VW), c40 = MLC_LD(c + 4 * ldt), c41 = MLC_LD(c + 4 * ldt + MLC_VW);
            mlc_vf c50 = MLC_LD(c + 5 * ldt), c51 = MLC_LD(c + 5 * ldt + MLC_VW);
            for (int s = 0; s < ns; s++) {
                const float *xs0 = x + s * xs, *x0 = xs0 + off[k], *x1 = xs0 + off[k + 1], *x2 = xs0 + off[k + 2];
                const float *x3 = xs0 + off[k + 3], *x4 = xs0 + off[k + 4], *x5 = xs0 + off[k + 5];
                const float *d = dt + s * ds + CB * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_vf d0 = MLC_LD(d), d1 = MLC_LD(d + MLC_VW);
                        MLC_FMA_6X2(c, x0[q], x1[q], x2[q], x3[q], x4[q], x5[q], d0, d1);
                    }
            }
            MLC_ST(c, c00), MLC_ST(c + MLC_VW, c01), MLC_ST(c + ldt, c10), MLC_ST(c + ldt + MLC_VW, c11);
            MLC_ST(c + 2 * ldt, c20), MLC_ST(c + 2 * ldt + MLC_VW, c21), MLC_ST(c + 3 * ldt, c30);
            MLC_ST(c + 3 * ldt + MLC_VW, c31), MLC_ST(c + 4 * ldt, c40), MLC_ST(c + 4 * ldt + MLC_VW, c41);
            MLC_ST(c + 5 * ldt, c50), MLC_ST(c + 5 * ldt + MLC_VW, c51);
        }
    for (; k + 3 <= K; k += 3)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + CB * b;
            mlc_vf c00 = MLC_LD(c), c01 = MLC_LD(c + MLC_VW), c10 = MLC_LD(c + ldt), c11 = MLC_LD(c + ldt + MLC_VW);
            mlc_vf c20 = MLC_LD(c + 2 * ldt), c21 = MLC_LD(c + 2 * ldt + MLC_VW);
            for (int s = 0; s < ns; s++) {
                const float *xs0 = x + s * xs, *x0 = xs0 + off[k], *x1 = xs0 + off[k + 1], *x2 = xs0 + off[k + 2];
                const float *d = dt + s * ds + CB * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_vf d0 = MLC_LD(d), d1 = MLC_LD(d + MLC_VW);
                        mlc_vf t = MLC_BC(x0[q]);
                        c00 = MLC_FMA(t, d0, c00), c01 = MLC_FMA(t, d1, c01);
                        t = MLC_BC(x1[q]);
                        c10 = MLC_FMA(t, d0, c10), c11 = MLC_FMA(t, d1, c11);
                        t = MLC_BC(x2[q]);
                        c20 = MLC_FMA(t, d0, c20), c21 = MLC_FMA(t, d1, c21);
                    }
            }
            MLC_ST(c, c00), MLC_ST(c + MLC_VW, c01), MLC_ST(c + ldt, c10), MLC_ST(c + ldt + MLC_VW, c11);
            MLC_ST(c + 2 * ldt, c20), MLC_ST(c + 2 * ldt + MLC_VW, c21);
        }
    for (; k < K; k++)
        for (int b = 0; b < ob; b++) {
            float *c = dwt + k * ldt + CB * b;
            mlc_vf c0 = MLC_LD(c), c1 = MLC_LD(c + MLC_VW);
            for (int s = 0; s < ns; s++) {
                const float *x0 = x + s * xs + off[k], *d = dt + s * ds + CB * b;
                for (long q0 = 0; q0 < Ho * Wq; q0 += Wq)
                    for (long q = q0; q < q0 + Wo; q++, d += ldt) {
                        const mlc_vf t = MLC_BC(x0[q]);
                        c0 = MLC_FMA(t, MLC_LD(d), c0), c1 = MLC_FMA(t, MLC_LD(d + MLC_VW), c1);
                    }
            }
            MLC_ST(c, c0), MLC_ST(c + MLC_VW, c1);
        }
}

/* dw = sum over the batch of dy . columns(x)^T: min(B, red) fixed chunks of samples, each
 * summed by one thread, spt samples at a time, into a transposed partial [G][K][OgB] after
 * the slots; then dw is the partials added in chunk order. */
static inline void mlc_shift_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                        const float *dy, float *dw, float *ws) {
    const int Cg = g->C / g->G, Og = g->O / g->G, OgB = (int)mlc_dw_channels(Og, MLC_VW), K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo, gs = (long)Cg * d.nph * d.npw * d.plane;
    const long dts = (long)g->G * OgB * P; /* floats of one sample's transposed dy */
    const long PT = (long)g->G * K * OgB;  /* floats of one partial sum */
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
                        mlc_dy_transpose(Og, P, dy + ((s0 + j) * g->O + (long)grp * Og) * P,
                                         dt + j * dts + grp * OgB * P);
                }
                for (int grp = 0; grp < g->G; grp++)
                    mlc_shift_dwt(K, OgB / CB, off, ns, xq + grp * gs, d.xs, dt + (long)grp * OgB * P, dts, OgB, g->Ho,
                                  g->Wo, d.Wq, pr + (long)grp * K * OgB);
            }
        }
        /* dw[grp*Og + o][k] = sum over r of part[r][grp][k][o] */
#pragma omp for schedule(static)
        for (long i = 0; i < (long)g->G * K; i++) {
            const long grp = i / K, k = i % K;
            for (int o0 = 0; o0 < Og; o0 += CB) {
                float v[CB];
                memcpy(v, part + i * OgB + o0, sizeof v);
                for (long r = 1; r < nr; r++)
                    for (int t = 0; t < CB; t++) v[t] += part[r * PT + i * OgB + o0 + t];
                for (int t = 0; t < CB && o0 + t < Og; t++) dw[(grp * Og + o0 + t) * K + k] = v[t];
            }
        }
    }
}

void mlc_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *dy,
                           float *dw, float *ws) {
    mlc_conv_check(g, pl, MLC_CONV_BWD_FILTER);
    mlc_shift_bwd_filter(g, pl, B, x, dy, dw, ws);
}
