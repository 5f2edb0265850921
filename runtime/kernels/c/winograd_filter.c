/* winograd_filter.c - the Winograd weight gradient: the forward algorithm transposed
 * (mlc_winograd_layout.h), F(2x2, 3x3) and, in sample groups, F(4x4, 3x3). Per sample
 * (F(2x2, 3x3)): the padded x to V [16][C][T], dy transposed (as the direct weight
 * gradient has it) to Zt [16][T][OB], then for each of the 16 points dU[k] [C][OB] +=
 * V[k] Zt[k], the direct weight gradient's kernel (mlc_shift_dwt) with the input channels
 * for taps and the tiles for positions. In sample groups (pl->spt = 8, small outputs): a
 * block of tiles at a time, the group's V [P][C][Tb*8] from the transform with the
 * samples in the lanes, its Zt [P][Tb*8][OB] in the same order (tile, then sample), and
 * the products over the block's 8 Tb positions in one call of the kernel (its
 * accumulators loaded and stored once a block of the group, not once a sample; the
 * blocks run in order, so they change no sum). Each of min(B, red) fixed chunks of
 * samples (of groups) is summed by one thread, the chunks' partials added in chunk
 * order, then dw = G^T dU G: the same bits whatever the thread count. */
#include "conv_internal.h"
#include "winograd_tiles.h"

/* The weight gradient by algo's tiles (mlc_wino_dw_algo: F(4x4, 3x3) in groups only) */
static void mlc_wino_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                const float *dy, float *dw, float *ws, int algo) {
    const long grp = pl->spt > 1 ? MLC_WINO_GROUP : 1, units = (B + grp - 1) / grp; /* samples, groups */
    const int f4 = mlc_wino_dw_algo(algo, grp) == MLC_CONV_WINOGRAD4;
    const mlc_wino_dims d = mlc_wino_dims_of(g, mlc_wino_dw_algo(algo, grp));
    const long OB = mlc_dw_channels(g->O, MLC_VW), P = (long)g->Ho * g->Wo, np = d.P;
    const long Tb = grp > 1 ? mlc_wino_dw_block(g, &d) : d.T, cols = grp * Tb; /* a block's tiles, V's columns */
    const long vs = mlc_wino_stride(g->C * cols), zs = mlc_wino_stride(cols * OB), U = np * g->C * OB;
    const long xs = (long)g->C * g->H * g->W, ys = (long)g->O * P;
    const long nr = units < pl->red ? units : pl->red;
    float *part = ws + (long)pl->slots * pl->slot;
    int *off = (int *)(void *)(part + (long)pl->red * U); /* channel c's row of V[k] */
    if (nr < 1) {
        memset(dw, 0, sizeof(float) * (size_t)(g->O * g->C * 9));
        return;
    }
    for (int c = 0; c < g->C; c++) off[c] = (int)(c * cols);
#pragma omp parallel num_threads(mlc_conv_team(pl, nr))
    {
        float *xp = mlc_conv_slot(pl, ws), *V = xp + mlc_wino_stride(grp * g->C * d.Hp * d.Wp), *dt = V + np * vs;
        float *Zt = dt + mlc_wino_stride(grp * P * OB);
#pragma omp for schedule(dynamic, 1)
        for (long r = 0; r < nr; r++) {
            float *pr = part + r * U;
            memset(pr, 0, sizeof(float) * (size_t)U);
            for (long u = units * r / nr; u < units * (r + 1) / nr; u++) {
                const long n0 = u * grp, ns = B - n0 < grp ? B - n0 : grp;
                if (grp == 1) {
                    mlc_wino_pad(g, &d, x + n0 * xs, xp);
                    mlc_wino_input_tiles(g, &d, xp, 0, d.tH, V, d.T, vs);
                    mlc_dy_transpose(g->O, P, dy + n0 * ys, dt);
                    mlc_wino_grad_tiles(g, &d, dt, OB, 0, d.T, Zt, OB, zs);
                    for (int k = 0; k < 16; k++)
                        mlc_shift_dwt(g->C, (int)(OB / MLC_DW_CB), off, 1, V + k * vs, 0, Zt + k * zs, 0, OB, 1,
                                      (int)d.T, d.T, pr + k * g->C * OB);
                    continue;
                }
                mlc_wino_group_pad(g, &d, x + n0 * xs, ns, xp);
                for (long s = 0; s < ns; s++) mlc_dy_transpose(g->O, P, dy + (n0 + s) * ys, dt + s * P * OB);
                for (long t0 = 0; t0 < d.T; t0 += Tb) { /* a block of Tb tiles of the 8 samples, in cache */
                    const long t1 = t0 + Tb < d.T ? t0 + Tb : d.T, n = (t1 - t0) * grp;
                    (f4 ? mlc_wino4g_input_tiles : mlc_wino2g_input_tiles)(g, &d, xp, t0, t1, V, cols, vs);
                    /* Zt [P][(t - t0)*8 + s][OB]: a tile's samples side by side, as V's columns
                     * are, so that the products run over contiguous positions (tile, sample);
                     * an empty lane's rows zero, so its products add nothing */
                    for (long s = 0; s < grp; s++) {
                        if (s < ns) {
                            (f4 ? mlc_wino4_grad_tiles : mlc_wino_grad_tiles)(g, &d, dt + s * P * OB, OB, t0, t1,
                                                                              Zt + s * OB, grp * OB, zs);
                            continue;
                        }
                        for (long k = 0; k < np; k++)
                            for (long t = 0; t < t1 - t0; t++)
                                memset(Zt + k * zs + (t * grp + s) * OB, 0, sizeof(float) * (size_t)OB);
                    }
                    for (long k = 0; k < np; k++)
                        mlc_shift_dwt(g->C, (int)(OB / MLC_DW_CB), off, 1, V + k * vs, 0, Zt + k * zs, 0, OB, 1, (int)n,
                                      n, pr + k * g->C * OB);
                }
            }
        }
        /* part[0] += part[r] for r = 1, 2, ... in order, each element by one thread: blocks of
         * 1024 floats a piece of work, the chunks the inner loop (along rows, vectorised) */
#pragma omp for schedule(static)
        for (long i0 = 0; i0 < U; i0 += 1024) {
            const long i1 = i0 + 1024 < U ? i0 + 1024 : U;
            for (long r = 1; r < nr; r++)
                for (long i = i0; i < i1; i++) part[i] += part[r * U + i];
        }
#pragma omp for schedule(static)
        for (long o = 0; o < g->O; o++) (f4 ? mlc_wino4_weight_grad : mlc_wino_weight_grad)(g, part, OB, o, o + 1, dw);
    }
}

void mlc_wino_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                const float *dy, float *dw, float *ws) {
    mlc_wino_bwd_filter(g, pl, B, x, dy, dw, ws, MLC_CONV_WINOGRAD);
}

void mlc_wino4_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                 const float *dy, float *dw, float *ws) {
    mlc_wino_bwd_filter(g, pl, B, x, dy, dw, ws, MLC_CONV_WINOGRAD4);
}
