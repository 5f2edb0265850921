/* winograd_conv.c - the Winograd F(2x2, 3x3) forward pass and input gradient (the forward
 * pass of the transposed geometry): per sample, the input tiles transformed, 16 GEMMs
 * M[k] = U[k] V[k] over channels (one single-threaded cblas_sgemm each), the output tiles
 * transformed back. A sample per piece of work, as in the direct kernels, so each output
 * is computed by one thread the same way whatever the thread count. */
#include <cblas.h>

#include "conv_internal.h"
#include "winograd_tiles.h"

/* y (sample) = conv(x (sample), w) over geometry g with U = the transformed weights
 * [16][O][C]; slot: the padded sample, V, M */
static void mlc_wino_sample(const mlc_conv_geom *g, const float *U, const float *x, float *y, float *slot) {
    const mlc_wino_dims d = mlc_wino_dims_of(g);
    const long vs = mlc_wino_stride(g->C * d.T), ms = mlc_wino_stride(g->O * d.T);
    float *xp = slot, *V = xp + mlc_wino_stride(g->C * d.Hp * d.Wp), *M = V + 16 * vs;
    mlc_wino_pad(g, &d, x, xp);
    mlc_wino_input_tiles(g, &d, xp, V, vs);
    for (int k = 0; k < 16; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, (int)d.T, g->C, 1.0f, U + (long)k * g->O * g->C,
                    g->C, V + k * vs, (int)d.T, 0.0f, M + k * ms, (int)d.T);
    mlc_wino_output_tiles(g, &d, M, ms, y);
}

static void mlc_wino_run(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, float *y,
                         float *ws) {
    const float *U = ws + (long)pl->slots * pl->slot;
    const long xs = (long)g->C * g->H * g->W, ys = (long)g->O * g->Ho * g->Wo;
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(pl, B))
    for (long n = 0; n < B; n++) mlc_wino_sample(g, U, x + n * xs, y + n * ys, mlc_conv_slot(pl, ws));
}

void mlc_wino_conv2d_fwd_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_wino_weight_tiles(g, w, 0, ws + (long)pl->slots * pl->slot);
}

void mlc_wino_conv2d_fwd_sample(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, long n, const float *x,
                                float *y, float *ws) {
    (void)B;
    mlc_wino_sample(g, ws + (long)pl->slots * pl->slot, x + n * g->C * g->H * g->W, y + n * g->O * g->Ho * g->Wo,
                    mlc_conv_slot(pl, ws));
}

void mlc_wino_conv2d_fwd(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x, const float *w,
                         float *y, float *ws) {
    mlc_wino_conv2d_fwd_prepare(g, pl, w, ws);
    mlc_wino_run(g, pl, B, x, y, ws);
}

void mlc_wino_conv2d_bwd_data_prepare(const mlc_conv_geom *g, const mlc_conv_plan *pl, const float *w, float *ws) {
    mlc_wino_weight_tiles(g, w, 1, ws + (long)pl->slots * pl->slot);
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
