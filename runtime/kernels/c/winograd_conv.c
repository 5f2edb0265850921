/* winograd_conv.c - the Winograd forward pass and input gradient (the forward pass of the
 * transposed geometry), F(2x2, 3x3) (mlc_wino_*) and F(4x4, 3x3) (mlc_wino4_*): the input
 * tiles transformed, P = 16 or 36 GEMMs M[k] = U[k] V[k] over channels (mlc_shift_gemm's),
 * the output tiles transformed back. A piece of work is a sample (pl->spt = 1: its rows of
 * tiles in the vector lanes) or a group of 8 (F(4x4, 3x3) on small outputs, pl->spt = 8:
 * the samples in the lanes), as in the direct kernels a fixed cut of the batch, so each
 * output is computed by one thread the same way whatever the thread count. */
#include "conv_internal.h"
#include "winograd_tiles.h"

/* y (sample) = conv(x (sample), w) over geometry g by algorithm algo with U, off = the
 * transformed weights and the GEMM's offsets; slot: the padded sample, V, M */
static void mlc_wino_sample(const mlc_conv_geom *g, int algo, const float *U, const int *off, const float *x, float *y,
                            float *slot) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, algo);
    const int mb = (g->O + 3) / 4;
    const long vs = mlc_wino_stride(g->C * d.Tb), ms = mlc_wino_stride(4L * mb * d.Tb);
    float *xp = slot, *V = xp + mlc_wino_stride(g->C * d.Hp * d.Wp), *M = V + d.P * vs;
    mlc_wino_pad(g, &d, x, xp);
    for (long th0 = 0; th0 < d.tH; th0 += d.rb) { /* a block of rb rows of tiles, in cache */
        const long th1 = th0 + d.rb < d.tH ? th0 + d.rb : d.tH, nt = (th1 - th0) * d.tW;
        const long nseg = (nt + MLC_VW - 1) / MLC_VW;
        if (d.m == 4) mlc_wino4_input_tiles(g, &d, xp, th0, th1, V, d.Tb, vs);
        else mlc_wino_input_tiles(g, &d, xp, th0, th1, V, d.Tb, vs);
        /* M[k] [4mb][Tb] = U[k] V[k]: segments of MLC_VW tiles along V's rows (one row of
         * segments, so no row stride), the last one with the rest */
        for (long k = 0; k < d.P; k++)
            mlc_shift_gemm(mb, g->C, U + k * mb * 4 * g->C, off, V + k * vs, 0, nseg, nseg, 0,
                           (int)(nt - MLC_VW * (nseg - 1)), M + k * ms, d.Tb, 0);
        if (d.m == 4) mlc_wino4_output_tiles(g, &d, M, th0, th1, d.Tb, ms, y);
        else mlc_wino_output_tiles(g, &d, M, th0, th1, d.Tb, ms, y);
    }
}

/* The ns <= 8 samples of y from y on = conv(the ns samples from x on, w) over geometry g
 * by F(4x4, 3x3) in a sample group, with U, off as above; slot: the padded group, V, M */
static void mlc_wino4_group(const mlc_conv_geom *g, const float *U, const int *off, const float *x, long ns, float *y,
                            float *slot) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, MLC_CONV_WINOGRAD4);
    const int mb = (g->O + 3) / 4;
    const long Tb = mlc_wino_group_block(&d), cols = MLC_WINO_GROUP * Tb;
    const long vs = mlc_wino_stride(g->C * cols), ms = mlc_wino_stride(4L * mb * cols);
    float *xg = slot, *V = xg + mlc_wino_stride(MLC_WINO_GROUP * g->C * d.Hp * d.Wp), *M = V + d.P * vs;
    mlc_wino_group_pad(g, &d, x, ns, xg);
    for (long t0 = 0; t0 < d.T; t0 += Tb) { /* a block of Tb tiles of the 8 samples, in cache */
        const long t1 = t0 + Tb < d.T ? t0 + Tb : d.T, n = (t1 - t0) * MLC_WINO_GROUP;
        const long nseg = (n + MLC_VW - 1) / MLC_VW;
        mlc_wino4g_input_tiles(g, &d, xg, t0, t1, V, cols, vs);
        for (long k = 0; k < d.P; k++)
            mlc_shift_gemm(mb, g->C, U + k * mb * 4 * g->C, off, V + k * vs, 0, nseg, nseg, 0,
                           (int)(n - MLC_VW * (nseg - 1)), M + k * ms, cols, 0);
        mlc_wino4g_output_tiles(g, &d, M, t0, t1, cols, ms, ns, y);
    }
}

/* The samples of a piece of work of algo under plan pl: 1, or a group of MLC_WINO_GROUP
 * (F(4x4, 3x3) only) */
static long mlc_wino_piece(int algo, const mlc_conv_plan *pl) {
    return algo == MLC_CONV_WINOGRAD4 && pl->spt > 1 ? MLC_WINO_GROUP : 1;
}

/* U and off in the workspace after the slots, for geometry g (the input gradient's: the
 * transposed one), as mlc_wino_shared_floats counts them */
static float *mlc_wino_packed(const mlc_conv_geom *g, int algo, const mlc_conv_plan *pl, float *ws, int **off) {
    float *U = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(U + mlc_wino_dims_of(g, algo).P * ((g->O + 3) / 4 * 4) * g->C);
    return U;
}

/* The transformed weights (the input gradient's: flipped and transposed) and off[c] =
 * c * (V's columns): the GEMM's row c of V is input channel c's tiles of the block */
static void mlc_wino_prepare(const mlc_conv_geom *g, int algo, int flip, const mlc_conv_plan *pl, const float *w,
                             float *ws) {
    const mlc_conv_geom t = flip ? mlc_wino_data_geom(g) : *g;
    int *off;
    float *U = mlc_wino_packed(&t, algo, pl, ws, &off);
    if (algo == MLC_CONV_WINOGRAD4) mlc_wino4_weight_tiles(g, w, flip, U);
    else mlc_wino_weight_tiles(g, w, flip, U);
    const mlc_wino_dims d = mlc_wino_dims_of(&t, algo);
    const long cols = mlc_wino_piece(algo, pl) > 1 ? MLC_WINO_GROUP * mlc_wino_group_block(&d) : d.Tb;
    for (int c = 0; c < t.C; c++) off[c] = (int)(c * cols);
}

/* The piece of work at sample n of y = conv(x, w) over g (B samples), after
 * mlc_wino_prepare: sample n, or (pl->spt = MLC_WINO_GROUP, set by mlc_wino_spt) the
 * group from n on */
static void mlc_wino_one(const mlc_conv_geom *g, int algo, const mlc_conv_plan *pl, long B, long n, const float *x,
                         float *y, float *ws) {
    int *off;
    const float *U = mlc_wino_packed(g, algo, pl, ws, &off);
    const float *xn = x + n * g->C * g->H * g->W;
    float *yn = y + n * g->O * g->Ho * g->Wo, *slot = mlc_conv_slot(pl, ws);
    const long grp = mlc_wino_piece(algo, pl);
    if (grp > 1) mlc_wino4_group(g, U, off, xn, B - n < grp ? B - n : grp, yn, slot);
    else mlc_wino_sample(g, algo, U, off, xn, yn, slot);
}

static void mlc_wino_run(const mlc_conv_geom *g, int algo, const mlc_conv_plan *pl, long B, const float *x, float *y,
                         float *ws) {
    const long grp = mlc_wino_piece(algo, pl), units = (B + grp - 1) / grp;
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(pl, units))
    for (long u = 0; u < units; u++) mlc_wino_one(g, algo, pl, B, u * grp, x, y, ws);
}

/* The public entry points of both tile sizes: prefix (mlc_wino, mlc_wino4) and algorithm */
#define MLC_WINO_ENTRY_POINTS(pfx, algo)                                                                             \
    void pfx##_conv2d_fwd_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {      \
        mlc_wino_prepare(g, algo, 0, pl, w, ws);                                                                     \
    }                                                                                                                \
    void pfx##_conv2d_fwd_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *x,    \
                                 float *y, float *ws) {                                                              \
        mlc_wino_one(g, algo, pl, B, n, x, y, ws);                                                                   \
    }                                                                                                                \
    void pfx##_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w,   \
                          float *y, float *ws) {                                                                     \
        mlc_wino_prepare(g, algo, 0, pl, w, ws);                                                                     \
        mlc_wino_run(g, algo, pl, B, x, y, ws);                                                                      \
    }                                                                                                                \
    void pfx##_conv2d_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) { \
        mlc_wino_prepare(g, algo, 1, pl, w, ws);                                                                     \
    }                                                                                                                \
    void pfx##_conv2d_bwd_data_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n,               \
                                      const float *dy, float *dx, float *ws) {                                       \
        const mlc_conv_geom t = mlc_wino_data_geom(g);                                                               \
        mlc_wino_one(&t, algo, pl, B, n, dy, dx, ws);                                                                \
    }                                                                                                                \
    void pfx##_conv2d_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy,             \
                               const float *w, float *dx, float *ws) {                                               \
        const mlc_conv_geom t = mlc_wino_data_geom(g);                                                               \
        mlc_wino_prepare(g, algo, 1, pl, w, ws);                                                                     \
        mlc_wino_run(&t, algo, pl, B, dy, dx, ws);                                                                   \
    }

MLC_WINO_ENTRY_POINTS(mlc_wino, MLC_CONV_WINOGRAD)
MLC_WINO_ENTRY_POINTS(mlc_wino4, MLC_CONV_WINOGRAD4)
