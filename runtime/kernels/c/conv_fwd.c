/* conv_fwd.c - the convolution's forward pass, y = conv(x, w): per sample, the input
 * padded and split into stride phases, then the vector GEMM over shifted rows with the
 * weights packed in blocks of 4 output channels, or where the output rows leave vector
 * lanes empty, the one with vectors over output channels (mlc_shift_cv_for). */
#include "conv_internal.h"

/* The weights as blocks of 4 output channels, [G][mb][K][4] (mb = ceil(Og/4)), zeros past
 * the last channel: ap[((grp*mb + b)*K + k)*4 + i] = w[grp*Og + 4b + i][k]. */
static inline void mlc_shift_pack(const mlc_conv_geom *g, const float *w, float *ap) {
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW, mb = (Og + 3) / 4;
    for (int grp = 0; grp < g->G; grp++)
        for (int b = 0; b < mb; b++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < 4; i++)
                    ap[(((long)grp * mb + b) * K + k) * 4 + i] =
                        4 * b + i < Og ? w[((long)grp * Og + 4 * b + i) * K + k] : 0.0f;
}

/* The weights for the kernel with vectors over channels: [G][K][Og], wt[(grp*K + k)*Og + o]
 * = w[grp*Og + o][k] */
static inline void mlc_shift_pack_cv(const mlc_conv_geom *g, const float *w, float *wt) {
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW;
    for (int grp = 0; grp < g->G; grp++)
        for (int k = 0; k < K; k++)
            for (int o = 0; o < Og; o++) wt[((long)grp * K + k) * Og + o] = w[((long)grp * Og + o) * K + k];
}

/* Sample n with the vectors over output channels: MLC_CV_PIECE positions at a time,
 * each piece followed by a share of the prefetches of the next sample's input, into the
 * slot's [Ho*Wo][Og] after xq, then put in y's planes. */
static inline void mlc_shift_fwd_sample_cv(const mlc_conv_geom *g, long B, long n, const float *x, const float *wt,
                                           const int *off, float *y, float *xq) {
    const int Cg = g->C / g->G, Og = g->O / g->G, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long CHW = (long)g->C * g->H * g->W, P = (long)g->Ho * g->Wo, gs = (long)Cg * d.nph * d.npw * d.plane;
    const long pieces = (P + MLC_CV_PIECE - 1) / MLC_CV_PIECE, xl = (CHW * 4 + 63) / 64, us = (long)g->G * pieces;
    float *yt = xq + d.xs;
    mlc_shift_pad(g, &d, x + n * CHW, xq);
    for (int grp = 0; grp < g->G; grp++) {
        for (long i = 0; i < pieces; i++) {
            const long u = (long)grp * pieces + i;
            const long p0 = MLC_CV_PIECE * i, p1 = p0 + MLC_CV_PIECE < P ? p0 + MLC_CV_PIECE : P;
            mlc_shift_gemm_cv(K, Og / (2 * MLC_VW), wt + (long)grp * K * Og, Og, off, xq + grp * gs, p0, p1, g->Wo,
                              d.Wq, yt, Og);
            if (n + 1 < B) MLC_PREFETCH_LINES(x + (n + 1) * CHW, xl * u / us, xl * (u + 1) / us, 0);
        }
        mlc_cv_store(Og, g->Ho, g->Wo, yt, y + (n * g->O + (long)grp * Og) * P, P, g->Wo, 1);
    }
}

/* Sample n of y = conv(x, w) in scratch slot xq; ap, off: the packed weights and the
 * offsets. */
static inline void mlc_shift_fwd_sample(const mlc_conv_geom *g, long B, long n, const float *x, const float *ap,
                                        const int *off, float *y, float *xq) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Og + 3) / 4, K = Cg * g->KH * g->KW;
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    if (mlc_shift_cv_of(g, &d, MLC_VW)) {
        mlc_shift_fwd_sample_cv(g, B, n, x, ap, off, y, xq);
        return;
    }
    const mlc_shift_segs sg = mlc_shift_segs_of(g, &d, MLC_VW);
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
static inline void mlc_shift_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                 const float *ap, const int *off, float *y, float *ws) {
#pragma omp parallel num_threads(mlc_conv_team(pl, B))
    {
        float *xq = mlc_conv_slot(pl, ws);
#pragma omp for schedule(dynamic, 1)
        for (long n = 0; n < B; n++) mlc_shift_fwd_sample(g, B, n, x, ap, off, y, xq);
    }
}

/* The forward pass's packed weights and offsets: in the workspace, after the slots */
static float *mlc_conv2d_fwd_packed(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws, int **off) {
    const int Og = g->O / g->G, K = g->C / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(ap + (long)g->G * ((Og + 3) / 4 * 4) * K);
    return ap;
}

void mlc_conv2d_fwd_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_conv_check(g, pl, MLC_CONV_FWD);
    int *off;
    float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    if (mlc_shift_cv_of(g, &d, MLC_VW)) mlc_shift_pack_cv(g, w, ap);
    else mlc_shift_pack(g, w, ap);
    mlc_shift_offsets(g, &d, off);
}

void mlc_conv2d_fwd_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *x, float *y,
                           float *ws) {
    int *off;
    const float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    mlc_shift_fwd_sample(g, B, n, x, ap, off, y, mlc_conv_slot(pl, ws));
}

void mlc_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w, float *y,
                    float *ws) {
    mlc_conv2d_fwd_prepare(g, pl, w, ws);
    int *off;
    const float *ap = mlc_conv2d_fwd_packed(g, pl, ws, &off);
    mlc_shift_fwd(g, pl, B, x, ap, off, y, ws);
}
