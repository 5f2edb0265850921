/* mlc_conv_layout.h - how a C convolution lays out its scratch: the sizes of the padded,
 * phase-split input, of the kernels' output rows and of the padded dy, and the plan
 * (mlc_conv_plan) that follows from them. Header-only and free of OpenMP and BLAS: the
 * kernels (runtime/kernels/c/conv_*.c) compute their layout with these functions, and the
 * compiler (compiler/ops/ops_conv.c) sizes the workspace it plans with the very same
 * ones, so the two cannot drift apart.
 *
 * The kernels work in vectors of vw floats, vw = 4, 8 or 16, fixed when the kernel library
 * is compiled (simd.h). Where a size depends on it, the function takes vw; the compiler,
 * which cannot know the width of the library a model will be linked with, sizes the
 * workspace for the largest of the three (mlc_conv_slot_floats, mlc_conv_shared_floats),
 * so one generated model runs with a library of any width. */
#ifndef MLC_CONV_LAYOUT_H
#define MLC_CONV_LAYOUT_H

#include "mlc_geom.h"

/* ---- shifted rows ----
 * Input x [C][H][W] is zero-padded to xp [C][Hp][Wp] (Hp = H + 2ph, Wp = W + 2pw) and
 * split into stride phases, planes of Hq x Wq (Hq = ceil(Hp/sh), Wq = ceil(Wp/sw)):
 * xq[c][a][b][i][j] = xp[c][sh*i + pa[a]][sw*j + pb[b]], for the row phases pa the taps
 * use (the distinct kh*dh % sh, nph of them, ascending) and likewise the column phases
 * pb (npw of them). Output (oh, ow) reads, for tap k = (c, kh, kw), xp[c][sh*oh + kh*dh]
 * [sw*ow + kw*dw]: phase kh*dh % sh, kw*dw % sw at (oh + kh*dh / sh, ow + kw*dw / sw),
 * which is the flat index q + off[k] with q = oh*Wq + ow, off[k] = ((c*nph + a)*npw + b)
 * *Hq*Wq + (kh*dh / sh)*Wq + kw*dw / sw (a, b: the phases' ranks).
 * So over q, row k of the column matrix is xq shifted by off[k]: no column matrix is
 * built. The q with ow >= Wo are junk: the forward kernel walks q in vw-column segments
 * (mlc_shift_segs), which may compute some and drop them; the weight-gradient kernel
 * skips them. q runs over [0, nq), nq = (Ho-1)*Wq + Wo rounded up to vw <= 16, and xq
 * ends with 32 zeros, so every read is in initialised memory. */

/* The vector widths the layout is sized for: the kernel library is built for one */
enum { MLC_CONV_VW_MIN = 4, MLC_CONV_VW_MAX = 16 };

/* mlc_shift layout of a geometry's input: the numbers of row and column phases used,
 * plane = Hq*Wq floats, xs floats per sample (C channels' planes and 32 zeros, rounded up
 * to 16) */
typedef struct mlc_shift_dims {
    long Hq, Wq, plane, xs;
    int nph, npw;
} mlc_shift_dims;

/* The number of distinct tap phases k*d % s (k < n) below p: phase p's rank, or with
 * p = s their count. k*d and j*d fall in one phase exactly when k - j is a multiple of
 * s / gcd(d, s), so the first min(n, s / gcd(d, s)) taps hold every phase once: one pass
 * over them, not a comparison of every pair of taps (which took minutes for a kernel
 * 65535 wide). */
static inline int mlc_phase_rank(int n, int d, int s, int p) {
    long a = d, b = s;
    while (b) {
        const long t = a % b;
        a = b, b = t;
    }
    const long period = s / a, m = n < period ? n : period;
    int r = 0;
    for (long k = 0; k < m; k++) r += k * d % s < p;
    return r;
}

/* Whether some tap k < n has phase p */
static inline int mlc_phase_used(int n, int d, int s, int p) {
    for (int k = 0; k < n; k++)
        if ((long)k * d % s == p) return 1;
    return 0;
}

static inline mlc_shift_dims mlc_shift_dims_of(const mlc_conv_geom *g) {
    mlc_shift_dims d;
    d.Hq = (g->H + 2L * g->ph + g->sh - 1) / g->sh, d.Wq = (g->W + 2L * g->pw + g->sw - 1) / g->sw;
    d.plane = d.Hq * d.Wq;
    d.nph = mlc_phase_rank(g->KH, g->dh, g->sh, g->sh), d.npw = mlc_phase_rank(g->KW, g->dw, g->sw, g->sw);
    d.xs = ((long)g->C * d.nph * d.npw * d.plane + 32 + 15) & ~15L;
    return d;
}

/* How the forward kernel's vw-column segments cover the output: along each output row,
 * ceil(Wo/vw) segments a row, the last one with wlast <= vw real columns, when that
 * computes no more junk columns than running along q over the padded rows (Wq - Wo a
 * row), else along q. Along rows, with output channels per group a multiple of 4 (the
 * kernel's blocks of 4 rows stay in the group), the kernel stores straight into y, only
 * the real columns of the last segments; otherwise it fills rows of ldo floats per
 * channel, output row oh at oh*orow, which are then copied out. */
typedef struct mlc_shift_segs {
    long nseg, spr, Wq; /* segments, segments per row, their rows' stride in q */
    int vw;             /* columns of a segment: the kernels' vector width */
    int wlast;          /* real columns of a row's last segment (vw: all) */
    long ldo, orow;     /* the kernel's output rows (one per channel), an output row's offset */
    int direct;         /* the kernel writes y itself (ldo = Ho*Wo, orow = Wo) */
} mlc_shift_segs;

/* Segments of vw columns for an Ho x Wo output over rows Wq apart in q, q < nq =
 * (Ho-1)*Wq + Wo rounded up to vw; direct_ok: the kernel may write the output itself (its
 * blocks of 4 rows stay in the group, and the output is a dense Ho x Wo plane per
 * channel) */
static inline mlc_shift_segs mlc_shift_segs_for(long Ho, long Wo, long Wq, int vw, int direct_ok) {
    mlc_shift_segs s;
    const long wv = (Wo + vw - 1) / vw * vw, nq = ((Ho - 1) * Wq + Wo + vw - 1) / vw * vw;
    s.direct = 0, s.vw = vw, s.wlast = vw;
    if (wv <= Wq) {
        s.direct = direct_ok;
        s.spr = wv / vw, s.nseg = Ho * s.spr, s.Wq = Wq;
        s.orow = wv, s.ldo = Ho * wv;
        if (s.direct) s.wlast = (int)(Wo - wv + vw), s.orow = Wo, s.ldo = Ho * Wo;
    } else {
        s.spr = s.nseg = nq / vw, s.Wq = 0;
        s.orow = Wq, s.ldo = nq;
    }
    return s;
}

static inline mlc_shift_segs mlc_shift_segs_of(const mlc_conv_geom *g, const mlc_shift_dims *d, int vw) {
    return mlc_shift_segs_for(g->Ho, g->Wo, d->Wq, vw, g->O / g->G % 4 == 0);
}

/* Whether the kernel for Og output channels over an Ho x Wo grid read at rows Wq apart runs
 * its vectors over output channels (mlc_shift_gemm_cv: 6 output positions by 2 vectors of
 * channels, the positions taken anywhere in the grid) rather than over output columns
 * (mlc_shift_gemm's segments): when the segments would compute columns they drop (rows
 * of 28, 14, 7 with vw = 8) and Og fills the vectors. On rows that fill the segments the
 * column kernel is the faster one; on the others the channel kernel ran 1.06-1.28x its
 * rate (bench/results/vector_width.md). */
static inline int mlc_shift_cv_for(long Og, long Ho, long Wo, long Wq, int vw) {
    const mlc_shift_segs s = mlc_shift_segs_for(Ho, Wo, Wq, vw, 0);
    return Og % (2 * vw) == 0 && s.nseg * vw > Ho * Wo;
}

static inline int mlc_shift_cv_of(const mlc_conv_geom *g, const mlc_shift_dims *d, int vw) {
    return mlc_shift_cv_for(g->O / g->G, g->Ho, g->Wo, d->Wq, vw);
}

/* ---- the input gradient, phase by phase ----
 * dx[c][ih][iw] = sum over o, kh, kw of w[o][c][kh][kw] * dy[o][oh][ow] where ih = sh*oh -
 * ph + kh*dh and iw = sw*ow - pw + kw*dw. The rows ih = a + sh*i of row phase a get the
 * taps kh with kh*dh - ph = a (mod sh), from dy row oh = i + e(kh), e = (a + ph -
 * kh*dh) / sh; likewise the columns. So each phase pair (a, b) of dx is a stride-1
 * correlation of dy with its share of the taps, over a grid of ceil((H-a)/sh) x
 * ceil((W-b)/sw) outputs: the forward kernel once more, on dy zero-padded by PT rows
 * above and PL columns left (so every shifted read is inside) into planes of Hp x Wp,
 * with off[k] = o*Hp*Wp + (e(kh) + PT)*Wp + e(kw) + PL for its taps k = (o, kh, kw).
 * Phases no tap reaches are zero. Stride 1 is one phase, the kernel flipped. */

/* The phase of tap k (stride s, dilation d, padding p) and its shift e */
static inline int mlc_tap_phase(int k, int d, int p, int s) { return (int)((((long)k * d - p) % s + s) % s); }
static inline long mlc_tap_shift(int k, int d, int p, int s) {
    return (mlc_tap_phase(k, d, p, s) + p - (long)k * d) / s;
}
/* The number of indices a + s*i below n */
static inline long mlc_phase_len(long n, long a, int s) { return a < n ? (n - a + s - 1) / s : 0; }

/* One axis of the padded dy: *pad zeros before its no entries, *len in all, enough for the
 * reads of every tap k < K whose phase has outputs (n inputs). */
static inline void mlc_bwd_axis(long n, long no, int K, int d, int p, int s, long *pad, long *len) {
    long lo = 0, hi = no;
    for (int k = 0; k < K; k++) {
        const long e = mlc_tap_shift(k, d, p, s), m = mlc_phase_len(n, mlc_tap_phase(k, d, p, s), s);
        if (m == 0) continue;
        if (e < lo) lo = e;
        if (m + e > hi) hi = m + e;
    }
    *pad = -lo, *len = hi - lo;
}

typedef struct mlc_bwd_dims {
    long PT, PL, Hp, Wp, plane, xs; /* xs: floats of a padded dy, O planes and 32 zeros, rounded to 16 */
} mlc_bwd_dims;

static inline mlc_bwd_dims mlc_bwd_dims_of(const mlc_conv_geom *g) {
    mlc_bwd_dims d;
    mlc_bwd_axis(g->H, g->Ho, g->KH, g->dh, g->ph, g->sh, &d.PT, &d.Hp);
    mlc_bwd_axis(g->W, g->Wo, g->KW, g->dw, g->pw, g->sw, &d.PL, &d.Wp);
    d.plane = d.Hp * d.Wp;
    d.xs = ((long)g->O * d.plane + 32 + 15) & ~15L;
    return d;
}

/* The number of taps k < K of phase a */
static inline int mlc_phase_taps(int K, int d, int p, int s, int a) {
    int n = 0;
    for (int k = 0; k < K; k++) n += mlc_tap_phase(k, d, p, s) == a;
    return n;
}

/* Whether the input gradient's phase pair (a, b) runs the kernel with vectors over
 * channels: mlc_shift_cv_for on the phase's grid of outputs, rows d->Wp apart */
static inline int mlc_bwd_phase_cv(const mlc_conv_geom *g, const mlc_bwd_dims *d, int a, int b, int vw) {
    return mlc_shift_cv_for(g->C / g->G, mlc_phase_len(g->H, a, g->sh), mlc_phase_len(g->W, b, g->sw), d->Wp, vw);
}

/* The three convolution ops, as plans and slot sizes name them */
enum { MLC_CONV_FWD = 0, MLC_CONV_BWD_DATA = 1, MLC_CONV_BWD_FILTER = 2 };

/* The weight gradient's vectors run over output channels in blocks of two: a group's Og
 * channels padded to a multiple of 2*vw */
static inline long mlc_dw_channels(long Og, int vw) { return (Og + 2 * vw - 1) / (2 * vw) * (2 * vw); }

/* Floats one scratch slot of op needs with vw-float vectors. The forward pass: a sample's
 * xq and, unless the kernel writes y itself, its output rows [ceil(Og/4)*4][ldo], or with
 * vectors over channels its output transposed, [Ho*Wo][Og]. The
 * weight gradient: spt samples' xq and transposed dy [G][Ho*Wo][mlc_dw_channels]. The
 * input gradient: a sample's padded dy and the kernel's output rows,
 * [ceil(Cg/4)*4][Hp*Wp + vw] (room too for a phase's output transposed, [Hi*Wi][Cg]). */
static inline long mlc_conv_slot_floats_vw(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op, int vw) {
    if (op == MLC_CONV_BWD_DATA) {
        const mlc_bwd_dims d = mlc_bwd_dims_of(g);
        return d.xs + (g->C / g->G + 3) / 4 * 4 * (d.plane + vw);
    }
    const mlc_shift_dims d = mlc_shift_dims_of(g);
    const long Og = g->O / g->G;
    if (op == MLC_CONV_FWD) {
        const mlc_shift_segs sg = mlc_shift_segs_of(g, &d, vw);
        if (mlc_shift_cv_of(g, &d, vw)) return d.xs + Og * g->Ho * g->Wo;
        return d.xs + (sg.direct ? 0 : (Og + 3) / 4 * 4 * sg.ldo);
    }
    return pl->spt * (d.xs + g->G * mlc_dw_channels(Og, vw) * ((long)g->Ho * g->Wo));
}

/* Floats of the part after the slots that the threads share: the forward pass's packed
 * weights [G][ceil(Og/4)][K][4] (with vectors over channels [G][K][Og], no larger: Og is
 * a multiple of 4 then) and K offsets (K = Cg*KH*KW); the input gradient's
 * [G][ceil(Cg/4)][Og*KH*KW][4] (or its phases' [G][K'][Cg]) and Og*KH*KW offsets; the weight gradient's red partial
 * sums [G][K][mlc_dw_channels] and K offsets. An offset is an int in a float's place. */
static inline long mlc_conv_shared_floats_vw(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op, int vw) {
    const long Cg = g->C / g->G, Og = g->O / g->G, T = (long)g->KH * g->KW, K = Cg * T;
    if (op == MLC_CONV_FWD) return g->G * ((Og + 3) / 4 * 4) * K + K;
    if (op == MLC_CONV_BWD_DATA) return g->G * ((Cg + 3) / 4 * 4) * Og * T + Og * T;
    return pl->red * g->G * K * mlc_dw_channels(Og, vw) + K;
}

/* What a slot and the shared part take at the widest any library may be built with */
static inline long mlc_conv_slot_floats(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    long m = 0;
    for (int vw = MLC_CONV_VW_MIN; vw <= MLC_CONV_VW_MAX; vw *= 2) {
        const long f = mlc_conv_slot_floats_vw(g, pl, op, vw);
        m = f > m ? f : m;
    }
    return m;
}

static inline long mlc_conv_shared_floats(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op) {
    long m = 0;
    for (int vw = MLC_CONV_VW_MIN; vw <= MLC_CONV_VW_MAX; vw *= 2) {
        const long f = mlc_conv_shared_floats_vw(g, pl, op, vw);
        m = f > m ? f : m;
    }
    return m;
}

/* The weight gradient in up to MLC_CONV_RED_CHUNKS partial sums (more: more threads can
 * share it; fewer: less to add up), taking at least MLC_CONV_DW_COLS output positions per
 * step. */
enum { MLC_CONV_RED_CHUNKS = 16, MLC_CONV_DW_COLS = 256 };

/* The plan of op at batch size `batch`: every field but `slots`, which the model fills in
 * when it is created (a slot per thread of its team); slots 64-byte aligned. */
static inline mlc_conv_plan mlc_conv_plan_for(const mlc_conv_geom *g, int op, long batch) {
    mlc_conv_plan p = {
        .spt = 1, .slots = 0, .red = (int)(batch < MLC_CONV_RED_CHUNKS ? batch : MLC_CONV_RED_CHUNKS), .slot = 0};
    if (p.red < 1) p.red = 1;
    if (op == MLC_CONV_BWD_FILTER) {
        const long P = (long)g->Ho * g->Wo, spt = (MLC_CONV_DW_COLS + P - 1) / P;
        p.spt = (int)(spt > batch ? batch : spt);
        if (p.spt < 1) p.spt = 1;
    }
    p.slot = (mlc_conv_slot_floats(g, &p, op) + 15) & ~15L;
    return p;
}

#endif
