/* winograd_groups.c - the Winograd transforms in sample groups (mlc_winograd_layout.h):
 * the padded group xg [C][Hp][Wp][8] (a point's 8 samples side by side); F(4x4, 3x3)'s
 * 6x6 patches to V = B^T d B and its 36 products back to 4x4 output tiles A^T M A, and
 * F(2x2, 3x3)'s 4x4 patches to V (for its weight gradient), 8 samples a vector. The
 * arithmetic is the row layout's (F(4x4, 3x3): the same mlc_wino4_bt / _at on 8-float
 * vectors), so each sample's values are the row layout's bits. */
#include <string.h>

#include "winograd_tiles.h"

/* xg's row r of channel c: Wp points of 8 samples */
static float *mlc_wino_group_row(const mlc_wino_dims *d, float *xg, long c, long r) {
    return xg + (c * d->Hp + r) * d->Wp * MLC_WINO_GROUP;
}

/* Tile t's patch of channel c in xg: its top left point (tiles m apart, in raster order) */
static const float *mlc_wino_group_patch(const mlc_wino_dims *d, const float *xg, long c, long t) {
    return xg + ((c * d->Hp + d->m * (t / d->tW)) * d->Wp + d->m * (t % d->tW)) * MLC_WINO_GROUP;
}

/* The points j0 <= j < j1 of a padded row from the samples' rows src[s] (point j: column
 * j - j0 of each), 8 points a transpose; a row of 8 or more ends with the 8 points before
 * its end (some written twice), a shorter one goes a float at a time */
static void mlc_wino_group_gather_row(float *row, long j0, long j1, const float *const src[MLC_WINO_GROUP]) {
    const long n = j1 - j0;
    float *dst = row + j0 * MLC_WINO_GROUP;
    if (n < 8) {
        for (long j = 0; j < n; j++)
            for (int s = 0; s < MLC_WINO_GROUP; s++) dst[j * MLC_WINO_GROUP + s] = src[s][j];
        return;
    }
    for (long j = 0;; j += 8) {
        if (j > n - 8) j = n - 8;
        float block[8][8]; /* the samples' 8 columns, then transposed into the row */
        for (int s = 0; s < MLC_WINO_GROUP; s++) MLC_ST8(block[s], MLC_LD8(src[s] + j));
        mlc_transpose8(&block[0][0], 8, dst + j * MLC_WINO_GROUP, MLC_WINO_GROUP);
        if (j == n - 8) return;
    }
}

void mlc_wino_group_pad(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, long ns, float *xg) {
    const long plane = (long)g->H * g->W, sample = g->C * plane, W8 = d->Wp * MLC_WINO_GROUP;
    long j0 = g->pw < 0 ? 0 : g->pw, j1 = g->W + g->pw; /* the points that hold x's columns */
    j0 = j0 > d->Wp ? d->Wp : j0, j1 = j1 > d->Wp ? d->Wp : j1 < j0 ? j0 : j1;
    for (long c = 0; c < g->C; c++)
        for (long r = 0; r < d->Hp; r++) {
            float *row = mlc_wino_group_row(d, xg, c, r);
            const long h = r - g->ph;
            if (h < 0 || h >= g->H || j1 == j0) {
                memset(row, 0, sizeof(float) * (size_t)W8);
                continue;
            }
            const float *src[MLC_WINO_GROUP];
            for (long s = 0; s < MLC_WINO_GROUP; s++) /* empty lanes: the first sample again */
                src[s] = x + (s < ns ? s : 0) * sample + c * plane + h * g->W + j0 - g->pw;
            memset(row, 0, sizeof(float) * (size_t)(j0 * MLC_WINO_GROUP));
            mlc_wino_group_gather_row(row, j0, j1, src);
            memset(row + j1 * MLC_WINO_GROUP, 0, sizeof(float) * (size_t)((d->Wp - j1) * MLC_WINO_GROUP));
        }
}

void mlc_wino2g_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xg, long t0, long t1, float *V,
                            long ldc, long vs) {
    const long W8 = d->Wp * MLC_WINO_GROUP;
    for (long c = 0; c < g->C; c++)
        for (long t = t0; t < t1; t++) {
            const float *p0 = mlc_wino_group_patch(d, xg, c, t);
            float *v = V + c * ldc + (t - t0) * MLC_WINO_GROUP;
            mlc_f8 e[4][4]; /* B^T d: the patch's rows 0 - 2, 1 + 2, 2 - 1, 1 - 3 */
            for (int j = 0; j < 4; j++) {
                const mlc_f8 r0 = MLC_LD8(p0 + 8 * j), r1 = MLC_LD8(p0 + W8 + 8 * j);
                const mlc_f8 r2 = MLC_LD8(p0 + 2 * W8 + 8 * j), r3 = MLC_LD8(p0 + 3 * W8 + 8 * j);
                e[0][j] = r0 - r2, e[1][j] = r1 + r2, e[2][j] = r2 - r1, e[3][j] = r1 - r3;
            }
            for (int i = 0; i < 4; i++) { /* then each row times B */
                float *p = v + 4 * i * vs;
                MLC_ST8(p, e[i][0] - e[i][2]), MLC_ST8(p + vs, e[i][1] + e[i][2]);
                MLC_ST8(p + 2 * vs, e[i][2] - e[i][1]), MLC_ST8(p + 3 * vs, e[i][1] - e[i][3]);
            }
        }
}

void mlc_wino4g_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xg, long t0, long t1, float *V,
                            long ldc, long vs) {
    const long W8 = d->Wp * MLC_WINO_GROUP;
    for (long c = 0; c < g->C; c++)
        for (long t = t0; t < t1; t++) {
            const float *p0 = mlc_wino_group_patch(d, xg, c, t);
            float *v = V + c * ldc + (t - t0) * MLC_WINO_GROUP;
            mlc_f8 e[6][6]; /* e[r] = B^T of the patch's row r */
            for (int r = 0; r < 6; r++) {
                const float *row = p0 + r * W8;
                const mlc_f8 p[6] = {MLC_LD8(row),      MLC_LD8(row + 8),  MLC_LD8(row + 16),
                                     MLC_LD8(row + 24), MLC_LD8(row + 32), MLC_LD8(row + 40)};
                mlc_wino4_bt8(p, e[r]);
            }
            for (int i = 0; i < 6; i++) { /* then each column of them */
                const mlc_f8 col[6] = {e[0][i], e[1][i], e[2][i], e[3][i], e[4][i], e[5][i]};
                mlc_f8 o[6];
                mlc_wino4_bt8(col, o);
                for (int a = 0; a < 6; a++) MLC_ST8(v + (a * 6 + i) * vs, o[a]);
            }
        }
}

/* An output row of one tile: c[j], its column j of the 8 samples, to the samples' rows
 * dst + s*sample (cols of the 4 inside, ns samples) */
static inline __attribute__((always_inline)) void mlc_wino4g_store_row(float *dst, long sample, long cols, long ns,
                                                                       const mlc_f8 c[4]) {
#if defined(MLC_SHUF)
    if (cols == 4 && ns == MLC_WINO_GROUP) {
        mlc_f8 z[4]; /* z[k]: samples 2k and 2k + 1's row */
        mlc_wino4_interleave(c, z);
        for (int k = 0; k < 4; k++) {
            memcpy(dst + 2 * k * sample, &z[k], 4 * sizeof(float));
            memcpy(dst + (2 * k + 1) * sample, (const float *)&z[k] + 4, 4 * sizeof(float));
        }
        return;
    }
#endif
    float lanes[4][MLC_WINO_GROUP];
    for (int j = 0; j < 4; j++) MLC_ST8(lanes[j], c[j]);
    for (long s = 0; s < ns; s++)
        for (long j = 0; j < cols; j++) dst[s * sample + j] = lanes[j][s];
}

void mlc_wino4g_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long t0, long t1, long ldo,
                             long ms, long ns, float *y) {
    const long sample = (long)g->O * g->Ho * g->Wo;
    for (long o = 0; o < g->O; o++)
        for (long t = t0; t < t1; t++) {
            const long th = t / d->tW, tw = t % d->tW;
            const float *m = M + o * ldo + (t - t0) * MLC_WINO_GROUP;
            const long rows = g->Ho - 4 * th < 4 ? g->Ho - 4 * th : 4, cols = g->Wo - 4 * tw < 4 ? g->Wo - 4 * tw : 4;
            float *y0 = y + (o * g->Ho + 4 * th) * g->Wo + 4 * tw;
            mlc_f8 q[4][6]; /* q[.][i] = A^T of the products' column i */
            for (int i = 0; i < 6; i++) {
                const mlc_f8 col[6] = {MLC_LD8(m + i * ms),        MLC_LD8(m + (6 + i) * ms),
                                       MLC_LD8(m + (12 + i) * ms), MLC_LD8(m + (18 + i) * ms),
                                       MLC_LD8(m + (24 + i) * ms), MLC_LD8(m + (30 + i) * ms)};
                mlc_f8 a[4];
                mlc_wino4_at8(col, a);
                for (int r = 0; r < 4; r++) q[r][i] = a[r];
            }
            for (int r = 0; r < rows; r++) {
                mlc_f8 out[4];
                mlc_wino4_at8(q[r], out);
                mlc_wino4g_store_row(y0 + r * g->Wo, sample, cols, ns, out);
            }
        }
}
