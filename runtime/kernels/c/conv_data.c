/* conv_data.c - the convolution's input gradient, dx, phase by phase of dx (the layout
 * is in mlc_conv_layout.h): each phase pair a stride-1 correlation of zero-padded dy with
 * its share of the taps, run by one of the forward pass's vector GEMMs (the same choice,
 * mlc_shift_cv_for, on the phase's grid). */
#include "conv_internal.h"

static inline void mlc_bwd_pad(const mlc_conv_geom *g, const mlc_bwd_dims *d, const float *dy, float *xp) {
    for (int o = 0; o < g->O; o++) { /* in address order, as mlc_zero_spill wants */
        float *p = xp + o * d->plane;
        memset(p, 0, sizeof(float) * (size_t)(d->PT * d->Wp));
        for (int h = 0; h < g->Ho; h++) {
            float *r = p + (d->PT + h) * d->Wp;
            mlc_zero_spill(r, d->PL);
            mlc_copy_row(r + d->PL, dy + ((long)o * g->Ho + h) * g->Wo, g->Wo);
            mlc_zero_spill(r + d->PL + g->Wo, d->Wp - d->PL - g->Wo);
        }
        memset(p + (d->PT + g->Ho) * d->Wp, 0, sizeof(float) * (size_t)((d->Hp - d->PT - g->Ho) * d->Wp));
    }
    memset(xp + g->O * d->plane, 0, sizeof(float) * (size_t)(d->xs - g->O * d->plane));
}

/* The packed weights of every phase pair with taps, in phase order: for each, [G][mb][K'][4]
 * (mb = ceil(Cg/4), K' = Og * its row taps * its column taps, k' = (o, row tap, column tap)),
 * ap = w[grp*Og + o][4b + i][kh][kw], or for the kernel with vectors over channels
 * [G][K'][Cg] (the same size: Cg is a multiple of 8 then); and its K' offsets. */
static inline void mlc_bwd_pack(const mlc_conv_geom *g, const mlc_bwd_dims *d, const float *w, float *ap, int *off) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Cg + 3) / 4, T = g->KH * g->KW;
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const int na = mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a);
            const int nb = mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b);
            const int K = Og * na * nb;
            if (K == 0) continue;
            const int cv = mlc_bwd_phase_cv(g, d, a, b, MLC_VW);
            int k = 0; /* = (o*na + the row tap's rank)*nb + the column tap's rank */
            for (int o = 0; o < Og; o++)
                for (int kh = 0; kh < g->KH; kh++) {
                    if (mlc_tap_phase(kh, g->dh, g->ph, g->sh) != a) continue;
                    const long row = (mlc_tap_shift(kh, g->dh, g->ph, g->sh) + d->PT) * d->Wp + d->PL;
                    for (int kw = 0; kw < g->KW; kw++) {
                        if (mlc_tap_phase(kw, g->dw, g->pw, g->sw) != b) continue;
                        off[k] = (int)(o * d->plane + row + mlc_tap_shift(kw, g->dw, g->pw, g->sw));
                        for (int grp = 0; grp < g->G; grp++) {
                            const float *wk = w + ((long)grp * Og + o) * Cg * T + kh * g->KW + kw;
                            if (cv) { /* [G][K'][Cg] */
                                for (int c = 0; c < Cg; c++) ap[((long)grp * K + k) * Cg + c] = wk[(long)c * T];
                                continue;
                            }
                            float *a4 = ap + ((long)grp * mb * K + k) * 4; /* channel c at a4[(c/4)*4K + c%4] */
                            int c = 0;
                            for (; c < Cg; c++) a4[(long)(c / 4) * 4 * K + c % 4] = wk[(long)c * T];
                            for (; c < 4 * mb; c++) a4[(long)(c / 4) * 4 * K + c % 4] = 0.0f;
                        }
                        k++;
                    }
                }
            ap += (long)g->G * mb * 4 * K, off += K;
        }
}

/* Sample n of dx, the input gradient; ap0, off0 from mlc_bwd_pack; xp: this thread's slot. */
static inline void mlc_bwd_data_sample(const mlc_conv_geom *g, long B, long n, const float *dy, const float *ap0,
                                       const int *off0, float *dx, float *xp) {
    const int Cg = g->C / g->G, Og = g->O / g->G, mb = (Cg + 3) / 4;
    const mlc_bwd_dims d = mlc_bwd_dims_of(g);
    const long HW = (long)g->H * g->W, OP = (long)g->O * g->Ho * g->Wo, dl = (OP * 4 + 63) / 64;
    int empty = 0; /* some phase gets no tap: dx starts zeroed */
    for (int a = 0; a < g->sh; a++) empty |= mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a) == 0;
    for (int b = 0; b < g->sw; b++) empty |= mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b) == 0;
    /* the kernel runs in pieces of 12 segments (pieces of them a sample), each followed by
     * a share of the prefetches of the next sample's dy */
    long pieces = 0;
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const long Hi = mlc_phase_len(g->H, a, g->sh), Wi = mlc_phase_len(g->W, b, g->sw);
            if (Hi == 0 || Wi == 0 || mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a) == 0 ||
                mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b) == 0)
                continue;
            const mlc_shift_segs sg = mlc_shift_segs_for(Hi, Wi, d.Wp, MLC_VW, 0);
            pieces += g->G * (mlc_bwd_phase_cv(g, &d, a, b, MLC_VW) ? (Hi * Wi + MLC_CV_PIECE - 1) / MLC_CV_PIECE
                                                                    : (sg.nseg + 11) / 12);
        }
    float *out = xp + d.xs;
    mlc_bwd_pad(g, &d, dy + n * OP, xp);
    if (empty) memset(dx + n * g->C * HW, 0, sizeof(float) * (size_t)(g->C * HW));
    const float *ap = ap0;
    const int *off = off0;
    long u = 0; /* pieces done */
    for (int a = 0; a < g->sh; a++)
        for (int b = 0; b < g->sw; b++) {
            const int na = mlc_phase_taps(g->KH, g->dh, g->ph, g->sh, a);
            const int nb = mlc_phase_taps(g->KW, g->dw, g->pw, g->sw, b);
            const int K = Og * na * nb;
            const long Hi = mlc_phase_len(g->H, a, g->sh), Wi = mlc_phase_len(g->W, b, g->sw);
            float *dxn = dx + n * g->C * HW + (long)a * g->W + b; /* dx[n][0][a][b] */
            if (K == 0 || Hi == 0 || Wi == 0) {                   /* no tap reaches these positions: zeroed above */
                ap += (long)g->G * mb * 4 * K, off += K;
                continue;
            }
            if (mlc_bwd_phase_cv(g, &d, a, b, MLC_VW)) { /* in pieces, then into dx's planes */
                for (int grp = 0; grp < g->G; grp++) {
                    for (long p0 = 0; p0 < Hi * Wi; p0 += MLC_CV_PIECE, u++) {
                        const long p1 = p0 + MLC_CV_PIECE < Hi * Wi ? p0 + MLC_CV_PIECE : Hi * Wi;
                        mlc_shift_gemm_cv(K, Cg / (2 * MLC_VW), ap + (long)grp * K * Cg, Cg, off,
                                          xp + (long)grp * Og * d.plane, p0, p1, Wi, d.Wp, out, Cg);
                        if (n + 1 < B) MLC_PREFETCH_LINES(dy + (n + 1) * OP, dl * u / pieces, dl * (u + 1) / pieces, 0);
                    }
                    mlc_cv_store(Cg, Hi, Wi, out, dxn + (long)grp * Cg * HW, HW, g->sh * g->W, g->sw);
                }
                ap += (long)g->G * mb * 4 * K, off += K;
                continue;
            }
            const mlc_shift_segs sg = mlc_shift_segs_for(Hi, Wi, d.Wp, MLC_VW, g->sh == 1 && g->sw == 1 && Cg % 4 == 0);
            for (int grp = 0; grp < g->G; grp++) {
                float *dxg = dxn + (long)grp * Cg * HW;
                for (long s0 = 0; s0 < sg.nseg; s0 += 12, u++) {
                    mlc_shift_gemm(mb, K, ap + (long)grp * mb * 4 * K, off, xp + (long)grp * Og * d.plane, s0,
                                   s0 + 12 < sg.nseg ? s0 + 12 : sg.nseg, sg.spr, sg.Wq, sg.wlast,
                                   sg.direct ? dxg : out, sg.direct ? HW : sg.ldo, sg.orow);
                    if (n + 1 < B) MLC_PREFETCH_LINES(dy + (n + 1) * OP, dl * u / pieces, dl * (u + 1) / pieces, 0);
                }
                if (sg.direct) continue;
                for (long c = 0; c < Cg; c++)
                    for (long i = 0; i < Hi; i++) {
                        float *r = dxg + c * HW + i * g->sh * g->W;
                        const float *o = out + c * sg.ldo + i * sg.orow;
                        if (g->sw == 1) mlc_copy_row(r, o, Wi);
                        else
                            for (long j = 0; j < Wi; j++) r[j * g->sw] = o[j];
                    }
            }
            ap += (long)g->G * mb * 4 * K, off += K;
        }
}

/* dx = the input gradient; ap, off from mlc_bwd_pack. A sample per piece of work. */
static inline void mlc_bwd_data_run(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                    const float *ap0, const int *off0, float *dx, float *ws) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(pl, B))
    for (long n = 0; n < B; n++) mlc_bwd_data_sample(g, B, n, dy, ap0, off0, dx, mlc_conv_slot(pl, ws));
}

/* The input gradient's packed weights and offsets: in the workspace, after the slots */
static float *mlc_bwd_data_packed(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws, int **off) {
    const int Cg = g->C / g->G, K = g->O / g->G * g->KH * g->KW;
    float *ap = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(ap + (long)g->G * ((Cg + 3) / 4 * 4) * K);
    return ap;
}

static inline void mlc_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    int *off;
    float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    const mlc_bwd_dims d = mlc_bwd_dims_of(g);
    mlc_bwd_pack(g, &d, w, ap, off);
}

static inline void mlc_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,
                                const float *w, float *dx, float *ws) {
    mlc_bwd_data_prepare(g, pl, w, ws);
    int *off;
    const float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    mlc_bwd_data_run(g, pl, B, dy, ap, off, dx, ws);
}

void mlc_conv2d_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy, const float *w,
                         float *dx, float *ws) {
    mlc_conv_check(g, pl, MLC_CONV_BWD_DATA);
    mlc_bwd_data(g, pl, B, dy, w, dx, ws);
}

void mlc_conv2d_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_conv_check(g, pl, MLC_CONV_BWD_DATA);
    mlc_bwd_data_prepare(g, pl, w, ws);
}

void mlc_conv2d_bwd_data_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *dy,
                                float *dx, float *ws) {
    int *off;
    const float *ap = mlc_bwd_data_packed(g, pl, ws, &off);
    mlc_bwd_data_sample(g, B, n, dy, ap, off, dx, mlc_conv_slot(pl, ws));
}
