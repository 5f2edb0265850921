/* conv_internal.h - internal to the kernel library: what the convolution's three ops
 * (conv_fwd.c, conv_data.c, conv_filter.c) share: the vector GEMM over shifted rows, the
 * padding and phase split of an input, the tap offsets, a thread's scratch slot. The
 * layout they all follow is in mlc_conv_layout.h. */
#ifndef MLC_CONV_INTERNAL_H
#define MLC_CONV_INTERNAL_H

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mlc_kernels.h"
#include "simd.h"

/* For segments s0 <= s < s1: y[4b + i][ys] = sum_k ap[b][k][i] * x[off[k] + xs] over the
 * MLC_VW columns of segment s, which start at xs = (s / spr)*Wq + (s % spr)*MLC_VW in x and
 * at ys = (s / spr)*yrow + (s % spr)*MLC_VW in y (only wlast columns for the last segment of a
 * row), for b < mb, i < 4; y's rows are ldy apart. Blocks of 4 rows by 3 segments: 12
 * vector accumulators, each k loads 3 vectors of x and broadcasts 4 weights (then
 * blocks of 2 segments, and 1 if one is left: its 4 accumulators wait on the FMA
 * latency, so 3 + 1 segments go as 2 + 2).
 * Out of line (conv_gemm.c): inlined into an OpenMP region, GCC ran out of registers for
 * its pointers and reloaded them from the stack in the inner loops. */
void mlc_shift_gemm(int mb, int K, const float *ap, const int *off, const float *x, long s0, long s1, long spr, long Wq,
                    int wlast, float *y, long ldy, long yrow);

/* The step of the 6 x 2 blocks with vectors over output channels (mlc_shift_gemm_cv,
 * mlc_shift_dwt): the accumulators a00, a01, a10, ... a51 in scope (a: the prefix given),
 * row r += s_r * (v0, v1), each of the 6 scalars s_r broadcast once */
#define MLC_FMA_6X2(a, s0, s1, s2, s3, s4, s5, v0, v1)                  \
    do {                                                                \
        mlc_vf t_ = MLC_BC(s0);                                         \
        a##00 = MLC_FMA(t_, v0, a##00), a##01 = MLC_FMA(t_, v1, a##01); \
        t_ = MLC_BC(s1);                                                \
        a##10 = MLC_FMA(t_, v0, a##10), a##11 = MLC_FMA(t_, v1, a##11); \
        t_ = MLC_BC(s2);                                                \
        a##20 = MLC_FMA(t_, v0, a##20), a##21 = MLC_FMA(t_, v1, a##21); \
        t_ = MLC_BC(s3);                                                \
        a##30 = MLC_FMA(t_, v0, a##30), a##31 = MLC_FMA(t_, v1, a##31); \
        t_ = MLC_BC(s4);                                                \
        a##40 = MLC_FMA(t_, v0, a##40), a##41 = MLC_FMA(t_, v1, a##41); \
        t_ = MLC_BC(s5);                                                \
        a##50 = MLC_FMA(t_, v0, a##50), a##51 = MLC_FMA(t_, v1, a##51); \
    } while (0)

/* Declares those accumulators, zero */
#define MLC_ZERO_6X2(a)                                                                                            \
    mlc_vf a##00 = {0}, a##01 = {0}, a##10 = {0}, a##11 = {0}, a##20 = {0}, a##21 = {0}, a##30 = {0}, a##31 = {0}, \
           a##40 = {0}, a##41 = {0}, a##50 = {0}, a##51 = {0}

/* Stores them as 6 rows of 2 vectors from float *r on, rows ld apart */
#define MLC_ST_6X2(a, r, ld)                                       \
    do {                                                           \
        float *r_ = (r);                                           \
        MLC_ST(r_, a##00), MLC_ST(r_ + MLC_VW, a##01), r_ += (ld); \
        MLC_ST(r_, a##10), MLC_ST(r_ + MLC_VW, a##11), r_ += (ld); \
        MLC_ST(r_, a##20), MLC_ST(r_ + MLC_VW, a##21), r_ += (ld); \
        MLC_ST(r_, a##30), MLC_ST(r_ + MLC_VW, a##31), r_ += (ld); \
        MLC_ST(r_, a##40), MLC_ST(r_ + MLC_VW, a##41), r_ += (ld); \
        MLC_ST(r_, a##50), MLC_ST(r_ + MLC_VW, a##51);             \
    } while (0)

/* Positions per call of mlc_shift_gemm_cv: 12 blocks, between the prefetches of the
 * next sample */
#define MLC_CV_PIECE 72

/* The same sums with the vectors over output channels (mlc_shift_cv_for says when):
 * yt[p][o] = sum_k x[q(p) + off[k]] * wt[k][o] for positions p0 <= p < p1 of an Ho x Wo
 * grid, q(p) = (p / Wo)*Wq + p % Wo, and o < 2*MLC_VW*ob; wt's rows ldw apart, yt's ldt.
 * Blocks of 6 positions by 2 vectors of channels: 12 vector accumulators, each k
 * broadcasts 6 inputs and loads 2 vectors of weights. Every output is the same sum in the
 * same order as mlc_shift_gemm's, so the two give the same bits. */
void mlc_shift_gemm_cv(int K, int ob, const float *wt, long ldw, const int *off, const float *x, long p0, long p1,
                       long Wo, long Wq, float *yt, long ldt);

/* dst[c*ldc + i*ldr + j*sj] = yt[(i*Wo + j)*Og + c] for c < Og, i < Ho, j < Wo: the
 * channel kernel's output put back in channel planes (Og is a multiple of 8, as the
 * kernel's vectors are); 8x8 transposes where a plane's positions are contiguous (sj = 1,
 * ldr = Wo), element by element where they are not (through a transpose into a block
 * cost more than it saved there). */
MLC_INLINE void mlc_cv_store(int Og, long Ho, long Wo, const float *yt, float *dst, long ldc, long ldr, int sj) {
    if (sj == 1 && ldr == Wo) { /* one run of Ho*Wo positions a channel */
        const long P = Ho * Wo, p8 = P / 8 * 8;
        for (int c0 = 0; c0 + 8 <= Og; c0 += 8)
            for (long p0 = 0; p0 < p8; p0 += 8) mlc_transpose8(yt + p0 * Og + c0, Og, dst + c0 * ldc + p0, ldc);
        for (long p = p8; p < P; p++)
            for (int c = 0; c < Og; c++) dst[c * ldc + p] = yt[p * Og + c];
        return;
    }
    for (long i = 0; i < Ho; i++)
        for (int c = 0; c < Og; c++) {
            const float *yr = yt + i * Wo * Og + c;
            float *dr = dst + c * ldc + i * ldr;
            for (long j = 0; j < Wo; j++) dr[j * sj] = yr[j * Og];
        }
}

/* Output channels per block of the weight gradient's kernel: two vectors */
#define MLC_DW_CB (2 * MLC_VW)

/* dwt[k][o] += sum over samples s < ns and output positions (oh, ow) of
 * x[s*xs + off[k] + oh*Wq + ow] * dt[s*ds + (oh*Wo + ow)*ldt + o] for k < K and o < MLC_DW_CB*ob;
 * dwt's rows are ldt apart. dt is dy transposed, [Ho*Wo][o], so the vectors run over
 * output channels and no lanes need adding: blocks of 6 taps by MLC_DW_CB channels, 12 vector
 * accumulators, each position broadcasts 6 inputs and loads 2 vectors (then blocks of 3
 * taps and single taps). In conv_filter.c; also the Winograd weight gradient's products
 * (winograd_filter.c). */
void mlc_shift_dwt(int K, int ob, const int *off, int ns, const float *x, long xs, const float *dt, long ds, long ldt,
                   int Ho, int Wo, long Wq, float *dwt);

/* dt[p][o] (rows OgB = mlc_dw_channels floats apart, 0 at o >= Og) = src[o][p] (one
 * group's Og channels of one sample's dy, P positions): 8x8 blocks, then the edges element
 * by element. 8 channels at a time, along their rows: P = 1024 puts rows 4 KiB apart, in
 * one L1 set, so 16 rows read side by side (both blocks of a 16-channel dy) kept evicting
 * each other. */
MLC_INLINE void mlc_dy_transpose(int Og, long P, const float *src, float *dt) {
    const int OgB = (int)mlc_dw_channels(Og, MLC_VW), o8 = Og / 8 * 8;
    const long p8 = P / 8 * 8;
    for (int o0 = 0; o0 < o8; o0 += 8)
        for (long p0 = 0; p0 < p8; p0 += 8) mlc_transpose8(src + o0 * P + p0, P, dt + p0 * OgB + o0, OgB);
    for (long p = 0; p < P; p++) {
        for (int o = p < p8 ? o8 : 0; o < Og; o++) dt[p * OgB + o] = src[o * P + p];
        mlc_zero_row(dt + p * OgB + Og, OgB - Og);
    }
}

/* This thread's scratch slot */
MLC_INLINE float *mlc_conv_slot(const mlc_conv_plan *pl, float *ws) {
#ifdef _OPENMP
    return ws + (long)omp_get_thread_num() * pl->slot;
#else
    return ws;
#endif
}

/* Stops the program when the plan's slot is smaller than op needs: the compiler sized it
 * with mlc_conv_plan_for, so this is an internal error, not the user's. */
MLC_INLINE void mlc_conv_check(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    if (mlc_conv_slot_floats_vw(g, pl, op, MLC_VW) > pl->slot) {
        fprintf(stderr, "mlc: internal error: a conv2d workspace slot is too small\n");
        abort();
    }
}

/* xq = x [C][H][W] padded and split into phases (the layout above), then zeros up to xs */
MLC_INLINE void mlc_shift_pad(const mlc_conv_geom *g, const mlc_shift_dims *d, const float *x, float *xq) {
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
                    if (g->sw == 1) mlc_copy_row(p + j0, xr + j0, j1 - j0);
                    else if (g->sw == 2) mlc_gather2_row(p + j0, xr + 2 * j0, j1 - j0);
                    else
                        for (long j = j0; j < j1; j++) p[j] = xr[g->sw * j];
                    mlc_zero_spill(p + j1, Wq - j1);
                }
            }
        }
    memset(p, 0, sizeof(float) * (size_t)(d->xs - (p - xq)));
}

/* off[k] for k = (c*KH + kh)*KW + kw over one group's Cg input channels */
MLC_INLINE void mlc_shift_offsets(const mlc_conv_geom *g, const mlc_shift_dims *d, int *off) {
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

#endif
