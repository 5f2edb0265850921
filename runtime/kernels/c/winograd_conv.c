/* winograd_conv.c - the Winograd F(2x2, 3x3) forward pass and input gradient (the forward
 * pass of the transposed geometry): per sample, the input tiles transformed, 16 GEMMs
 * M[k] = U[k] V[k] over channels (one single-threaded cblas_sgemm each), the output tiles
 * transformed back. A sample per piece of work, as in the direct kernels, so each output
 * is computed by one thread the same way whatever the thread count. */
#include "conv_internal.h"
#include "winograd_tiles.h"

/* y (sample) = conv(x (sample), w) over geometry g with U, off = the transformed weights
 * and the GEMM's offsets; slot: the padded sample, V, M */
static void mlc_wino_sample(const mlc_conv_geom *g, const float *U, const int *off, const float *x, float *y,
                            float *slot) {
    const mlc_wino_dims d = mlc_wino_dims_of(g);
    const int mb = (g->O + 3) / 4;
    const long vs = mlc_wino_stride(g->C * d.Tb), ms = mlc_wino_stride(4L * mb * d.Tb);
    float *xp = slot, *V = xp + mlc_wino_stride(g->C * d.Hp * d.Wp), *M = V + 16 * vs;
    mlc_wino_pad(g, &d, x, xp);
    for (long th0 = 0; th0 < d.tH; th0 += d.rb) { /* a block of rb rows of tiles, in cache */
        const long th1 = th0 + d.rb < d.tH ? th0 + d.rb : d.tH, nt = (th1 - th0) * d.tW;
        const long nseg = (nt + MLC_VW - 1) / MLC_VW;
        mlc_wino_input_tiles(g, &d, xp, th0, th1, V, d.Tb, vs);
        /* M[k] [4mb][Tb] = U[k] V[k]: segments of MLC_VW tiles along V's rows (one row of
         * segments, so no row stride), the last one with the rest */
        for (int k = 0; k < 16; k++)
            mlc_shift_gemm(mb, g->C, U + (long)k * mb * 4 * g->C, off, V + k * vs, 0, nseg, nseg, 0,
                           (int)(nt - MLC_VW * (nseg - 1)), M + k * ms, d.Tb, 0);
        mlc_wino_output_tiles(g, &d, M, th0, th1, d.Tb, ms, y);
    }
}

/* U and off in the workspace after the slots, for geometry g (the input gradient's: the
 * transposed one) */
static float *mlc_wino_packed(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws, int **off) {
    float *U = ws + (long)pl->slots * pl->slot;
    *off = (int *)(void *)(U + 16L * (g->O + 3) / 4 * 4 * g->C);
    return U;
}

/* off[c] = c*Tb: the GEMM's row c of V is input channel c's tiles of the block */
static void mlc_wino_offsets(const mlc_conv_geom *g, const mlc_conv_plan *pl, float *ws) {
    int *off;
    mlc_wino_packed(g, pl, ws, &off);
    const long T = mlc_wino_dims_of(g).Tb;
    for (int c = 0; c < g->C; c++) off[c] = (int)(c * T);
}

static void mlc_wino_run(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, float *y, float *ws) {
    int *off;
    const float *U = mlc_wino_packed(g, pl, ws, &off);
    const long xs = (long)g->C * g->H * g->W, ys = (long)g->O * g->Ho * g->Wo;
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(pl, B))
    for (long n = 0; n < B; n++) mlc_wino_sample(g, U, off, x + n * xs, y + n * ys, mlc_conv_slot(pl, ws));
}

void mlc_wino_conv2d_fwd_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    int *off;
    mlc_wino_weight_tiles(g, w, 0, mlc_wino_packed(g, pl, ws, &off));
    mlc_wino_offsets(g, pl, ws);
}

void mlc_wino_conv2d_fwd_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *x,
                                float *y, float *ws) {
    (void)B;
    int *off;
    const float *U = mlc_wino_packed(g, pl, ws, &off);
    mlc_wino_sample(g, U, off, x + n * g->C * g->H * g->W, y + n * g->O * g->Ho * g->Wo, mlc_conv_slot(pl, ws));
}

void mlc_wino_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w,
                         float *y, float *ws) {
    mlc_wino_conv2d_fwd_prepare(g, pl, w, ws);
    mlc_wino_run(g, pl, B, x, y, ws);
}

void mlc_wino_conv2d_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    const mlc_conv_geom t = mlc_wino_data_geom(g);
    int *off;
    mlc_wino_weight_tiles(g, w, 1, mlc_wino_packed(&t, pl, ws, &off));
    mlc_wino_offsets(&t, pl, ws);
}

void mlc_wino_conv2d_bwd_data_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *dy,
                                     float *dx, float *ws) {
    const mlc_conv_geom t = mlc_wino_data_geom(g);
    mlc_wino_conv2d_fwd_sample(&t, pl, B, n, dy, dx, ws);
}

void mlc_wino_conv2d_bwd_data(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *dy, const float *w,
                              float *dx, float *ws) {
    const mlc_conv_geom t = mlc_wino_data_geom(g);
    mlc_wino_conv2d_bwd_data_prepare(g, pl, w, ws);
    mlc_wino_run(&t, pl, B, dy, dx, ws);
}
