/* mlc_winograd_layout.h - which convolutions the Winograd kernels take (3x3, stride 1,
 * dilation 1, one group, any padding), how they lay out their scratch, and the plan that
 * sizes it. Header-only, like mlc_conv_layout.h: the kernels (runtime/kernels/c/
 * winograd_*.c) and the compiler's workspace planning (compiler/targets/c/conv.c) call the
 * same functions, so the sizes cannot drift apart.
 *
 * Two tile sizes: F(2x2, 3x3) (MLC_CONV_WINOGRAD, m = 2: 16 products for 4 outputs) and
 * F(4x4, 3x3) (MLC_CONV_WINOGRAD4, m = 4: 36 products for 16 outputs; its weight
 * gradient in sample groups only). The output is cut into tH x tW tiles of m x m (tH = ceil(Ho/m),
 * tW = ceil(Wo/m), T = tH*tW a sample; a tile past Ho or Wo computes values that are
 * dropped). Tile (th, tw) reads the (m+2) x (m+2) input patch at rows m th - ph ..
 * m th - ph + m + 1 (likewise columns), taken from the input zero-padded into Hp x Wp
 * planes, Hp = m tH + 2, Wp = m (tW + 1), each row stored as m phases of tW + 1 floats
 * (phase q holds the columns q, m + q, 2m + q, ...) so that the transforms read
 * contiguous memory. The P = (m+2)^2 points of a tile's transform are P independent
 * products over channels: V [P][C][T], U [P][O][C], M = U V [P][O][T] (the forward pass:
 * a block of Tb tiles at a time, not the sample's T).
 *
 * The input gradient is the forward pass of the transposed geometry (mlc_wino_data_geom):
 * dy convolved with the weights flipped and transposed, padding 2 - ph (mlc_wino_pad
 * reads any padding, also negative). The weight gradient is the transpose of the forward
 * algorithm: dU[k] = sum over samples and tiles of V[k] Z[k]^T with Z = A dy A^T (the m x m
 * output tile of dy taken to (m+2) x (m+2)), then dw = G^T dU G, so it saves
 * multiplications the same way. Z is computed from dy transposed (dt [Ho*Wo][OB], OB =
 * mlc_dw_channels(O) floats a position, as the direct weight gradient has it), as Zt
 * [P][T][OB], so the products are the direct weight gradient's kernel with input channels
 * for taps and tiles for positions: dU [P][C][OB]. Its partial sums over fixed chunks of
 * samples are added in chunk order. F(4x4, 3x3)'s runs in sample groups only
 * (mlc_wino_dw_algo). */
#ifndef MLC_WINOGRAD_LAYOUT_H
#define MLC_WINOGRAD_LAYOUT_H

#include "mlc_conv_layout.h"
#include "mlc_geom.h"

/* The algorithms a C convolution can run with (the compiler's --conv-algo) */
enum { MLC_CONV_DIRECT = 0, MLC_CONV_WINOGRAD = 1, MLC_CONV_WINOGRAD4 = 2 };

/* The output tile of a Winograd algorithm: its m */
static inline int mlc_wino_tile(int algo) { return algo == MLC_CONV_WINOGRAD4 ? 4 : 2; }

/* The convolutions both tile sizes compute */
static inline int mlc_wino_applies(const mlc_conv_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->G == 1 && g->Ho > 0 &&
           g->Wo > 0;
}

typedef struct mlc_wino_dims {
    long m, P;      /* the output tile's edge, the transform's points ((m + 2)^2) */
    long tH, tW, T; /* tiles down, across, in all (a sample) */
    long Hp, Wp;    /* a padded input plane (rows of Wp: m phases of tW + 1 columns) */
    long rb, Tb;    /* the forward pass's blocks: rows of tiles, tiles (rb*tW) */
} mlc_wino_dims;

/* The forward pass transforms, multiplies and transforms back a block of about this many
 * tile points (whole rows of tiles) at a time, so that V and M stay in the core's cache:
 * 128 tiles of F(2x2, 3x3), 56 of F(4x4, 3x3) */
enum { MLC_WINO_BLOCK_POINTS = 2048 };

/* The tiles of algorithm algo's m over geometry g */
static inline mlc_wino_dims mlc_wino_dims_of(const mlc_conv_geom *g, int algo) {
    mlc_wino_dims d;
    d.m = mlc_wino_tile(algo), d.P = (d.m + 2) * (d.m + 2);
    d.tH = (g->Ho + d.m - 1) / d.m, d.tW = (g->Wo + d.m - 1) / d.m, d.T = d.tH * d.tW;
    d.Hp = d.m * d.tH + 2, d.Wp = d.m * (d.tW + 1);
    d.rb = MLC_WINO_BLOCK_POINTS / d.P / d.tW;
    d.rb = d.rb < 1 ? 1 : d.rb > d.tH ? d.tH : d.rb;
    d.Tb = d.rb * d.tW;
    return d;
}

/* The input gradient's geometry: dx = conv(dy, w flipped and transposed), a 3x3 stride-1
 * convolution from O channels of Ho x Wo to C channels of H x W with padding 2 - p */
static inline mlc_conv_geom mlc_wino_data_geom(const mlc_conv_geom *g) {
    mlc_conv_geom t = *g;
    t.C = g->O, t.H = g->Ho, t.W = g->Wo, t.O = g->C, t.Ho = g->H, t.Wo = g->W;
    t.ph = 2 - g->ph, t.pw = 2 - g->pw;
    return t;
}

/* The floats from one of the transform points' matrices of n floats to the next (and
 * from the padded sample to V): whole 64-byte lines and a spare 64 for the vector loops'
 * last lanes, and never a power of two: 16 streams 2^k floats apart would fall into the
 * same cache sets (it made the transforms 3x slower) */
static inline long mlc_wino_stride(long n) {
    const long s = ((n + 15) & ~15L) + 16;
    return s % 64 ? s : s + 16;
}

/* F(4x4, 3x3) in sample groups: MLC_WINO_GROUP consecutive samples are a piece of work,
 * padded together as xg [C][Hp][Wp][MLC_WINO_GROUP] (a point's samples side by side), so
 * that the transforms put samples, not a row's tiles, in the vector lanes (an 8x8 output
 * has two tiles a row, which left 6 of 8 lanes empty). V [P][C][Tb*8] and M [P][O][Tb*8]
 * then hold a block of Tb tiles (in raster order) of the 8 samples, a tile's samples side
 * by side. Each sample's values are computed with the same operations as in the row
 * layout (a lane is a lane), so the two layouts give the same bits and the layout can be
 * chosen when the step runs (mlc_wino_spt). A group short of samples (the batch's last)
 * repeats its first sample in the empty lanes and stores nothing from them. */
enum { MLC_WINO_GROUP = 8 };

/* Sample groups where a row has at most this many tiles (outputs up to 32 columns: on
 * wider ones the row layout's lanes are full, and a 64x64 plane ran 0.9x as fast grouped)
 * and the padded group takes at most MLC_WINO_GROUP_FLOATS (bench/results/winograd.md) */
enum { MLC_WINO_GROUP_TW = 8, MLC_WINO_GROUP_FLOATS = 1 << 20 };

/* Whether algo over geometry g (the input gradient's: the transposed one) may run in
 * sample groups */
static inline int mlc_wino_groupable(const mlc_conv_geom *g, int algo) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, algo);
    return algo == MLC_CONV_WINOGRAD4 && d.tW <= MLC_WINO_GROUP_TW &&
           (long)MLC_WINO_GROUP * g->C * d.Hp * d.Wp <= MLC_WINO_GROUP_FLOATS;
}

/* The sample groups' block: tiles, about MLC_WINO_BLOCK_POINTS points of 8 samples, cut
 * into equal blocks */
static inline long mlc_wino_group_block(const mlc_wino_dims *d) {
    long most = MLC_WINO_BLOCK_POINTS / (d->P * MLC_WINO_GROUP);
    most = most < 1 ? 1 : most;
    const long blocks = (d->T + most - 1) / most;
    return (d->T + blocks - 1) / blocks;
}

/* Floats one slot of the forward pass over geometry g needs, with grp samples a piece of
 * work: the padded sample (group), a block's V and M */
static inline long mlc_wino_fwd_slot(const mlc_conv_geom *g, int algo, long grp) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, algo);
    const long cols = grp > 1 ? grp * mlc_wino_group_block(&d) : d.Tb;
    return mlc_wino_stride(grp * g->C * d.Hp * d.Wp) + d.P * mlc_wino_stride(g->C * cols) +
           d.P * mlc_wino_stride((g->O + 3) / 4 * 4 * cols);
}

/* The weight gradient's floats per position of dt and tile of Zt: sized at the widest
 * vectors any library may be built with, like the direct kernels' workspace */
static inline long mlc_wino_dw_channels(const mlc_conv_geom *g) { return mlc_dw_channels(g->O, MLC_CONV_VW_MAX); }

/* The weight gradient's block in sample groups: tiles whose V and Zt rows for the 8
 * samples take about MLC_WINO_DW_BLOCK_FLOATS (so that they stay in the core's cache),
 * cut into equal blocks. The products run over a block's positions in order, so the
 * blocks change no sum. */
enum { MLC_WINO_DW_BLOCK_FLOATS = 1 << 17 };
static inline long mlc_wino_dw_block(const mlc_conv_geom *g, const mlc_wino_dims *d) {
    long most = MLC_WINO_DW_BLOCK_FLOATS / (d->P * MLC_WINO_GROUP * (g->C + mlc_wino_dw_channels(g)));
    most = most < 1 ? 1 : most;
    const long blocks = (d->T + most - 1) / most;
    return (d->T + blocks - 1) / blocks;
}

/* The algorithm the weight gradient runs for algo with grp samples a piece of work:
 * F(4x4, 3x3) in sample groups only (its transforms put samples in the lanes, and it was
 * not written for a sample's rows of tiles), else F(2x2, 3x3) */
static inline int mlc_wino_dw_algo(int algo, long grp) {
    return algo == MLC_CONV_WINOGRAD4 && grp > 1 ? MLC_CONV_WINOGRAD4 : MLC_CONV_WINOGRAD;
}

/* Floats one scratch slot of op needs (MLC_CONV_FWD, _BWD_DATA, _BWD_FILTER of
 * mlc_conv_layout.h: 0, 1, 2), grp samples a piece of work (1, or MLC_WINO_GROUP). The
 * weight gradient (mlc_wino_dw_algo, P points): the padded sample (group), V [P][C][T]
 * and Zt [P][T][OB] (groups: a block's, [P][C][Tb*8] and [P][Tb*8][OB]), dt
 * [grp][Ho*Wo][OB]. */
static inline long mlc_wino_slot_floats(const mlc_conv_geom *g, int op, int algo, long grp) {
    if (op == 0) return mlc_wino_fwd_slot(g, algo, grp);
    const mlc_conv_geom t = mlc_wino_data_geom(g);
    if (op == 1) return mlc_wino_fwd_slot(&t, algo, grp);
    const mlc_wino_dims d = mlc_wino_dims_of(g, mlc_wino_dw_algo(algo, grp));
    const long OB = mlc_wino_dw_channels(g), cols = grp > 1 ? grp * mlc_wino_dw_block(g, &d) : d.T;
    return mlc_wino_stride(grp * g->C * d.Hp * d.Wp) + d.P * mlc_wino_stride(g->C * cols) +
           mlc_wino_stride(grp * g->Ho * g->Wo * OB) + d.P * mlc_wino_stride(cols * OB);
}

/* The weight gradient's points (mlc_wino_dw_algo's tiles) */
static inline long mlc_wino_dw_points(const mlc_conv_geom *g, int algo, long grp) {
    return mlc_wino_dims_of(g, mlc_wino_dw_algo(algo, grp)).P;
}

/* Floats the threads share: the transformed weights U [P][ceil(O/4)*4][C] (input
 * gradient: [P][ceil(C/4)*4][O]) and the GEMM's offsets (an int in a float's place, one
 * per input channel); the weight gradient's red partial sums dU [P][C][OB] and its
 * offsets, one per input channel */
static inline long mlc_wino_shared_floats(const mlc_conv_geom *g, const mlc_conv_plan *pl, int op, int algo) {
    if (op == 2) return pl->red * mlc_wino_dw_points(g, algo, pl->spt) * g->C * mlc_wino_dw_channels(g) + g->C;
    const mlc_conv_geom t = op == 1 ? mlc_wino_data_geom(g) : *g;
    const long P = mlc_wino_dims_of(&t, algo).P;
    return P * ((t.O + 3) / 4 * 4) * t.C + t.C;
}

/* The weight gradient's partial sums take at most this many floats (chunks fewer then) */
enum { MLC_WINO_PARTIAL_FLOATS = 1 << 22 };

/* The plan of op by Winograd algorithm algo at batch size `batch` (slots filled in by the
 * model), its slots sized for sample groups (grouped 1: F(4x4, 3x3)'s forward pass and
 * input gradient, the weight gradient) or not (0). The forward pass and input
 * gradient: pl->spt = 1 (a sample a piece of work), mlc_wino_spt sets the groups when
 * the step runs. The weight gradient: pl->spt = MLC_WINO_GROUP in groups, its pl->red
 * chunks made of whole groups. */
static inline mlc_conv_plan mlc_wino_plan_as(const mlc_conv_geom *g, int op, long batch, int algo, int grouped) {
    mlc_conv_plan p = {.spt = 1, .slots = 0, .red = (int)(batch < 16 ? batch : 16), .slot = 0};
    const long pts = mlc_wino_dw_points(g, algo, op == 2 && grouped ? MLC_WINO_GROUP : 1);
    const long u = pts * g->C * mlc_wino_dw_channels(g), most = MLC_WINO_PARTIAL_FLOATS / (u > 0 ? u : 1);
    if (op == 2 && p.red > most) p.red = (int)most;
    if (p.red < 1) p.red = 1;
    long f = mlc_wino_slot_floats(g, op, algo, 1);
    if (op != 2 && algo == MLC_CONV_WINOGRAD4 && grouped) {
        const long fg = mlc_wino_slot_floats(g, op, algo, MLC_WINO_GROUP);
        f = fg > f ? fg : f;
    } else if (op == 2 && grouped) { /* the weight gradient's groups: fixed, chunks of groups */
        const long groups = (batch + MLC_WINO_GROUP - 1) / MLC_WINO_GROUP;
        p.spt = MLC_WINO_GROUP, p.red = (int)(groups < p.red ? groups : p.red);
        f = mlc_wino_slot_floats(g, op, algo, MLC_WINO_GROUP);
    }
    p.slot = (f + 15) & ~15L;
    return p;
}

/* The geometry op runs the Winograd forward pass over: g's, or the input gradient's */
static inline mlc_conv_geom mlc_wino_run_geom(const mlc_conv_geom *g, int op) {
    return op == 1 ? mlc_wino_data_geom(g) : *g;
}

/* Whether the weight gradient over g at batch size `batch` runs in sample groups:
 * outputs of at most MLC_WINO_DW_COLS columns whose padded group takes at most
 * MLC_WINO_GROUP_FLOATS (for either tile size), and at least MLC_WINO_DW_GROUPS groups to
 * share among threads. Measured (bench/results/winograd.md, 2 threads, AVX-512 and AVX2):
 * F(2x2, 3x3) 1.10-1.43x a sample at a time on every layer of 7x7 to 32x32 the samples
 * have. */
enum { MLC_WINO_DW_COLS = 32, MLC_WINO_DW_GROUPS = 4 };
static inline int mlc_wino_dw_grouped(const mlc_conv_geom *g, long batch) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, MLC_CONV_WINOGRAD), d4 = mlc_wino_dims_of(g, MLC_CONV_WINOGRAD4);
    const long most = d.Hp * d.Wp > d4.Hp * d4.Wp ? d.Hp * d.Wp : d4.Hp * d4.Wp;
    return g->Wo <= MLC_WINO_DW_COLS && (long)MLC_WINO_GROUP * g->C * most <= MLC_WINO_GROUP_FLOATS &&
           batch >= (long)MLC_WINO_DW_GROUPS * MLC_WINO_GROUP;
}

/* The plan of op by algo, its slots sized for sample groups where they may run: the
 * forward pass's and input gradient's chosen when the step runs (mlc_wino_spt), the
 * weight gradient's here (its sums follow the groups, so the choice changes bits) */
static inline mlc_conv_plan mlc_wino_plan_for(const mlc_conv_geom *g, int op, long batch, int algo) {
    const mlc_conv_geom t = mlc_wino_run_geom(g, op);
    return mlc_wino_plan_as(g, op, batch, algo, op == 2 ? mlc_wino_dw_grouped(g, batch) : mlc_wino_groupable(&t, algo));
}

/* The samples a piece of work of op by algo takes at batch size B with `slots` threads:
 * groups of MLC_WINO_GROUP where the layer may run so and there are at least as many
 * groups as threads, else 1 (fewer groups idle threads: a single group of a 64x56x56
 * layer ran at 0.36x the row layout's rate on 2 threads). On outputs of up to 8 columns
 * groups are still taken when a third of the threads get one: there a grouped thread
 * computes 3.7x as fast as a row-layout one (7x7, 64 channels). Either gives the same
 * bits. For pl->spt of a plan from mlc_wino_plan_for. */
static inline int mlc_wino_spt(const mlc_conv_geom *g, int op, int algo, long B, int slots) {
    const mlc_conv_geom t = mlc_wino_run_geom(g, op);
    if (op == 2 || !mlc_wino_groupable(&t, algo)) return 1;
    const long groups = (B + MLC_WINO_GROUP - 1) / MLC_WINO_GROUP;
    const int narrow = mlc_wino_dims_of(&t, algo).tW <= 2;
    return groups >= slots || (narrow && 3 * groups >= slots) ? MLC_WINO_GROUP : 1;
}

#endif
