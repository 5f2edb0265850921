/* winograd_tiles.c - F(2x2, 3x3)'s transforms: input patches to V = B^T d B, products
 * back to output tiles A^T M A, dy tiles to Z = A dy A^T, weights to U = G w G^T and dU
 * back to dw = G^T dU G. Each loop runs along a row of tiles over contiguous memory (the
 * padded rows are stored even columns first), so the compiler vectorises it at the
 * machine's width. Every value is computed the same way whatever the thread count. */
#include <string.h>

#include "winograd_tiles.h"

void mlc_wino_pad(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, float *xp) {
    const long half = d->Wp / 2;
    for (long c = 0; c < g->C; c++)
        for (long r = 0; r < d->Hp; r++) {
            float *e = xp + (c * d->Hp + r) * d->Wp, *o = e + half;
            const long h = r - g->ph;
            if (h < 0 || h >= g->H) {
                memset(e, 0, sizeof(float) * (size_t)d->Wp);
                continue;
            }
            const float *xr = x + (c * g->H + h) * g->W;
            /* column m of the even half reads x column 2m - pw, of the odd half 2m + 1 - pw */
            for (long m = 0; m < half; m++) {
                const long je = 2 * m - g->pw, jo = je + 1;
                e[m] = je >= 0 && je < g->W ? xr[je] : 0.0f;
                o[m] = jo >= 0 && jo < g->W ? xr[jo] : 0.0f;
            }
        }
}

void mlc_wino_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, float *V, long vs) {
    const long half = d->Wp / 2, tW = d->tW;
    for (long c = 0; c < g->C; c++)
        for (long th = 0; th < d->tH; th++) {
            const float *r = xp + (c * d->Hp + 2 * th) * d->Wp;
            const float *restrict e0 = r, *restrict e1 = r + d->Wp, *restrict e2 = r + 2 * d->Wp,
                                  *restrict e3 = r + 3 * d->Wp;
            const float *restrict o0 = e0 + half, *restrict o1 = e1 + half, *restrict o2 = e2 + half,
                                  *restrict o3 = e3 + half;
            float *restrict v = V + c * d->T + th * tW;
            for (long t = 0; t < tW; t++) {
                /* rows of B^T d: the patch's columns 2t, 2t + 1, 2t + 2, 2t + 3 are e[t], o[t],
                 * e[t + 1], o[t + 1] */
                const float a0 = e0[t] - e2[t], a1 = o0[t] - o2[t], a2 = e0[t + 1] - e2[t + 1], a3 = o0[t + 1] - o2[t + 1];
                const float b0 = e1[t] + e2[t], b1 = o1[t] + o2[t], b2 = e1[t + 1] + e2[t + 1], b3 = o1[t + 1] + o2[t + 1];
                const float c0 = e2[t] - e1[t], c1 = o2[t] - o1[t], c2 = e2[t + 1] - e1[t + 1], c3 = o2[t + 1] - o1[t + 1];
                const float d0 = e1[t] - e3[t], d1 = o1[t] - o3[t], d2 = e1[t + 1] - e3[t + 1], d3 = o1[t + 1] - o3[t + 1];
                /* then each row times B */
                v[0 * vs + t] = a0 - a2, v[1 * vs + t] = a1 + a2, v[2 * vs + t] = a2 - a1, v[3 * vs + t] = a1 - a3;
                v[4 * vs + t] = b0 - b2, v[5 * vs + t] = b1 + b2, v[6 * vs + t] = b2 - b1, v[7 * vs + t] = b1 - b3;
                v[8 * vs + t] = c0 - c2, v[9 * vs + t] = c1 + c2, v[10 * vs + t] = c2 - c1, v[11 * vs + t] = c1 - c3;
                v[12 * vs + t] = d0 - d2, v[13 * vs + t] = d1 + d2, v[14 * vs + t] = d2 - d1, v[15 * vs + t] = d1 - d3;
            }
        }
}

void mlc_wino_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long ms, float *y) {
    const long tW = d->tW, full = g->Wo / 2; /* tiles with both columns inside */
    for (long o = 0; o < g->O; o++)
        for (long th = 0; th < d->tH; th++) {
            const float *restrict m = M + o * d->T + th * tW;
            float *restrict y0 = y + (o * g->Ho + 2 * th) * g->Wo;
            float *restrict y1 = 2 * th + 1 < g->Ho ? y0 + g->Wo : NULL;
#define MLC_WINO_TILE_OUT(t)                                                                                   \
    const float s0 = m[0 * ms + t] + m[4 * ms + t] + m[8 * ms + t], s1 = m[1 * ms + t] + m[5 * ms + t] + m[9 * ms + t]; \
    const float s2 = m[2 * ms + t] + m[6 * ms + t] + m[10 * ms + t], s3 = m[3 * ms + t] + m[7 * ms + t] + m[11 * ms + t]; \
    const float q0 = m[4 * ms + t] - m[8 * ms + t] - m[12 * ms + t], q1 = m[5 * ms + t] - m[9 * ms + t] - m[13 * ms + t]; \
    const float q2 = m[6 * ms + t] - m[10 * ms + t] - m[14 * ms + t], q3 = m[7 * ms + t] - m[11 * ms + t] - m[15 * ms + t]
            if (y1)
                for (long t = 0; t < full; t++) {
                    MLC_WINO_TILE_OUT(t);
                    y0[2 * t] = s0 + s1 + s2, y0[2 * t + 1] = s1 - s2 - s3;
                    y1[2 * t] = q0 + q1 + q2, y1[2 * t + 1] = q1 - q2 - q3;
                }
            else
                for (long t = 0; t < full; t++) {
                    MLC_WINO_TILE_OUT(t);
                    (void)q0, (void)q1, (void)q2, (void)q3;
                    y0[2 * t] = s0 + s1 + s2, y0[2 * t + 1] = s1 - s2 - s3;
                }
            if (full < tW) { /* Wo odd: the last tile's first column */
                MLC_WINO_TILE_OUT(full);
                (void)s3, (void)q3;
                y0[2 * full] = s0 + s1 + s2;
                if (y1) y1[2 * full] = q0 + q1 + q2;
            }
#undef MLC_WINO_TILE_OUT
        }
}

void mlc_wino_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dy, float *Z, long zs) {
    const long tW = d->tW, full = g->Wo / 2;
    for (long o = 0; o < g->O; o++)
        for (long th = 0; th < d->tH; th++) {
            const float *restrict r0 = dy + (o * g->Ho + 2 * th) * g->Wo;
            /* past the last row: read row 0 again, weighted 0 */
            const int has1 = 2 * th + 1 < g->Ho;
            const float *restrict r1 = has1 ? r0 + g->Wo : r0;
            const float w1 = has1 ? 1.0f : 0.0f;
            float *restrict z = Z + o * d->T + th * tW;
            for (long t = 0; t <= full && t < tW; t++) {
                const int in1 = t < full; /* the tile's second column is inside */
                const long j1 = in1 ? 2 * t + 1 : 2 * t;
                const float c1 = in1 ? 1.0f : 0.0f;
                const float p00 = r0[2 * t], p01 = c1 * r0[j1], p10 = w1 * r1[2 * t], p11 = c1 * w1 * r1[j1];
                /* rows of A dy: dy0, dy0 + dy1, dy0 - dy1, -dy1; then each row times A^T */
                const float a0 = p00, a1 = p01, b0 = p00 + p10, b1 = p01 + p11;
                const float c0 = p00 - p10, cc1 = p01 - p11, d0 = -p10, d1 = -p11;
                z[0 * zs + t] = a0, z[1 * zs + t] = a0 + a1, z[2 * zs + t] = a0 - a1, z[3 * zs + t] = -a1;
                z[4 * zs + t] = b0, z[5 * zs + t] = b0 + b1, z[6 * zs + t] = b0 - b1, z[7 * zs + t] = -b1;
                z[8 * zs + t] = c0, z[9 * zs + t] = c0 + cc1, z[10 * zs + t] = c0 - cc1, z[11 * zs + t] = -cc1;
                z[12 * zs + t] = d0, z[13 * zs + t] = d0 + d1, z[14 * zs + t] = d0 - d1, z[15 * zs + t] = -d1;
            }
        }
}

/* G of F(2x2, 3x3), 4x3 */
static const float mlc_wino_G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

void mlc_wino_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U) {
    const long O = g->O, C = g->C, OC = O * C;
    for (long o = 0; o < O; o++)
        for (long c = 0; c < C; c++) {
            const float *f = w + (o * C + c) * 9;
            float k3[3][3], t[4][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) k3[a][b] = flip ? f[(2 - a) * 3 + 2 - b] : f[a * 3 + b];
            for (int i = 0; i < 4; i++)
                for (int b = 0; b < 3; b++)
                    t[i][b] = mlc_wino_G[i][0] * k3[0][b] + mlc_wino_G[i][1] * k3[1][b] + mlc_wino_G[i][2] * k3[2][b];
            const long at = flip ? c * O + o : o * C + c;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    U[(i * 4 + j) * OC + at] =
                        t[i][0] * mlc_wino_G[j][0] + t[i][1] * mlc_wino_G[j][1] + t[i][2] * mlc_wino_G[j][2];
        }
}

void mlc_wino_weight_grad(const mlc_conv_geom *g, const float *dU, long o0, long o1, float *dw) {
    const long C = g->C, OC = (long)g->O * C;
    for (long o = o0; o < o1; o++)
        for (long c = 0; c < C; c++) {
            float u[4][4], t[3][4];
            for (int k = 0; k < 16; k++) u[k / 4][k % 4] = dU[k * OC + o * C + c];
            for (int a = 0; a < 3; a++)
                for (int j = 0; j < 4; j++)
                    t[a][j] = mlc_wino_G[0][a] * u[0][j] + mlc_wino_G[1][a] * u[1][j] + mlc_wino_G[2][a] * u[2][j] +
                              mlc_wino_G[3][a] * u[3][j];
            float *f = dw + (o * C + c) * 9;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    f[a * 3 + b] = t[a][0] * mlc_wino_G[0][b] + t[a][1] * mlc_wino_G[1][b] + t[a][2] * mlc_wino_G[2][b] +
                                   t[a][3] * mlc_wino_G[3][b];
        }
}
