/* winograd_filter.c - the Winograd F(2x2, 3x3) weight gradient: the forward algorithm
 * transposed (mlc_winograd_layout.h). dU[k] = sum of Z[k] V[k]^T over the samples of each
 * of min(B, red) fixed chunks, one thread a chunk (16 GEMMs a sample, summing over its
 * tiles), the chunks' partials added in chunk order, then dw = G^T dU G: the same bits
 * whatever the thread count. */
#include <cblas.h>

#include "conv_internal.h"
#include "winograd_tiles.h"

void mlc_wino_conv2d_bwd_filter(const mlc_conv_geom *g, const mlc_conv_plan *pl, long B, const float *x,
                                const float *dy, float *dw, float *ws) {
    const mlc_wino_dims d = mlc_wino_dims_of(g, MLC_CONV_WINOGRAD);
    const long vs = mlc_wino_stride(g->C * d.T), zs = mlc_wino_stride(g->O * d.T), U = 16L * g->O * g->C;
    const long xs = (long)g->C * g->H * g->W, ys = (long)g->O * g->Ho * g->Wo;
    const long nr = B < pl->red ? B : pl->red;
    float *part = ws + (long)pl->slots * pl->slot;
    if (nr < 1) {
        memset(dw, 0, sizeof(float) * (size_t)(g->O * g->C * 9));
        return;
    }
#pragma omp parallel num_threads(mlc_conv_team(pl, nr))
    {
        float *xp = mlc_conv_slot(pl, ws), *V = xp + mlc_wino_stride(g->C * d.Hp * d.Wp), *Z = V + 16 * vs;
#pragma omp for schedule(dynamic, 1)
        for (long r = 0; r < nr; r++) {
            float *pr = part + r * U;
            memset(pr, 0, sizeof(float) * (size_t)U);
            for (long n = B * r / nr; n < B * (r + 1) / nr; n++) {
                mlc_wino_pad(g, &d, x + n * xs, xp);
                mlc_wino_input_tiles(g, &d, xp, 0, d.tH, V, d.T, vs);
                mlc_wino_grad_tiles(g, &d, dy + n * ys, Z, zs);
                for (int k = 0; k < 16; k++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->O, g->C, (int)d.T, 1.0f, Z + k * zs,
                                (int)d.T, V + k * vs, (int)d.T, 1.0f, pr + k * (long)g->O * g->C, g->C);
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
        for (long o = 0; o < g->O; o++) mlc_wino_weight_grad(g, part, o, o + 1, dw);
    }
}
