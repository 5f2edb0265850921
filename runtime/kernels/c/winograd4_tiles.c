/* winograd4_tiles.c - F(4x4, 3x3)'s transforms (interpolation points 0, 1, -1, 2, -2 and
 * infinity): 6x6 input patches to V = B^T d B, the 36 products back to 4x4 output tiles
 * A^T M A, and the weights to U = G w G^T. As in winograd_tiles.c, each loop runs along a
 * row of tiles over contiguous memory (the padded rows are stored as four phases, column
 * 4i + q of the patch row at phase q, index i), MLC_VW tiles a vector, so every value is
 * computed the same way whatever the thread count. */
#include <string.h>

#include "winograd_tiles.h"

void mlc_wino4_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1,
                           float *V, long ldc, long vs) {
    const long len = d->Wp / 4, tW = d->tW;
    for (long c = 0; c < g->C; c++)
        for (long th = th0; th < th1; th++) {
            const float *rows = xp + (c * d->Hp + 4 * th) * d->Wp;
            float *v = V + c * ldc + (th - th0) * tW;
            /* MLC_VW tiles at a time; the last vector's spare lanes land on the next row of
             * tiles (written after) or in the slack after V's matrices (mlc_wino_stride) */
            for (long t = 0; t < tW; t += MLC_VW) {
                mlc_vf e[6][6]; /* e[r] = B^T of the patch's row r */
                for (int r = 0; r < 6; r++) {
                    const float *row = rows + r * d->Wp + t;
                    /* the patch's column j: phase j % 4, index t + j / 4 */
                    const mlc_vf p[6] = {MLC_LD(row),           MLC_LD(row + len), MLC_LD(row + 2 * len),
                                         MLC_LD(row + 3 * len), MLC_LD(row + 1),   MLC_LD(row + len + 1)};
                    mlc_wino4_bt(p, e[r]);
                }
                for (int i = 0; i < 6; i++) { /* then each column of them */
                    const mlc_vf col[6] = {e[0][i], e[1][i], e[2][i], e[3][i], e[4][i], e[5][i]};
                    mlc_vf o[6];
                    mlc_wino4_bt(col, o);
                    for (int a = 0; a < 6; a++) MLC_ST(v + (a * 6 + i) * vs + t, o[a]);
                }
            }
        }
}

/* Row dst of the tiles t .. t + n - 1 (n <= MLC_VW), whose output columns are 4t ..
 * min(4(t + n), Wo) - 1; c[j]: the row's column j of each tile, a lane a tile. Called
 * for each row as soon as it is computed, a row of 8 whole tiles stored straight: with
 * the four rows' 16 vectors computed first and every row stored through the opaque loop
 * below, a 16-channel 32x32 forward pass took 1.10x as long (why each part costs what it
 * does was not measured apart). */
__attribute__((always_inline)) static inline void mlc_wino4_store_row(float *dst, long t, long n, long Wo,
                                                                      const mlc_vf c[4]) {
    long whole = Wo / 4 - t; /* tiles with all 4 columns inside */
    whole = whole < 0 ? 0 : whole > n ? n : whole;
    dst += 4 * t;
    float row[4 * MLC_VW]; /* the tiles' columns in order */
#if defined(MLC_SHUF) && MLC_VW == 8
    /* the 4 columns interleaved in registers, two tiles a vector, stored as far as the
     * tiles are whole (an odd one: a 4-float store) */
    mlc_vf z[4];
    mlc_wino4_interleave(c, z);
    if (whole == 8) {
        MLC_ST(dst, z[0]), MLC_ST(dst + 8, z[1]), MLC_ST(dst + 16, z[2]), MLC_ST(dst + 24, z[3]);
        return;
    }
    for (long k = 0; k < whole / 2; k++) { /* opaque: not a memcpy call from z */
        MLC_OPAQUE(k);
        MLC_ST(dst + 8 * k, z[k]);
    }
    if (whole & 1) memcpy(dst + 8 * (whole / 2), &z[whole / 2], 4 * sizeof(float));
    if (whole == n) return;
    for (int k = 0; k < 4; k++) MLC_ST(row + 8 * k, z[k]);
#else
    float lanes[4][MLC_VW];
    for (int j = 0; j < 4; j++) MLC_ST(lanes[j], c[j]);
    for (long l = 0; l < n; l++)
        for (int j = 0; j < 4; j++) row[4 * l + j] = lanes[j][l];
    for (long k = 0; k < 4 * whole; k++) dst[k] = row[k];
#endif
    for (long k = 4 * whole; k < 4 * n && 4 * t + k < Wo; k++) dst[k] = row[k]; /* the partial tile */
}

void mlc_wino4_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1,
                            long ldo, long ms, float *y) {
    const long tW = d->tW;
    for (long o = 0; o < g->O; o++)
        for (long th = th0; th < th1; th++) {
            const float *m = M + o * ldo + (th - th0) * tW;
            const long rows = g->Ho - 4 * th < 4 ? g->Ho - 4 * th : 4; /* output rows inside */
            float *y0 = y + (o * g->Ho + 4 * th) * g->Wo;
            for (long t = 0; t < tW; t += MLC_VW) {
                mlc_vf q[4][6]; /* q[.][i] = A^T of the products' column i */
                for (int i = 0; i < 6; i++) {
                    const mlc_vf col[6] = {MLC_LD(m + i * ms + t),        MLC_LD(m + (6 + i) * ms + t),
                                           MLC_LD(m + (12 + i) * ms + t), MLC_LD(m + (18 + i) * ms + t),
                                           MLC_LD(m + (24 + i) * ms + t), MLC_LD(m + (30 + i) * ms + t)};
                    mlc_vf a[4];
                    mlc_wino4_at(col, a);
                    for (int r = 0; r < 4; r++) q[r][i] = a[r];
                }
                const long n = tW - t < MLC_VW ? tW - t : MLC_VW;
                for (int r = 0; r < rows; r++) {
                    mlc_vf out[4];
                    mlc_wino4_at(q[r], out);
                    mlc_wino4_store_row(y0 + r * g->Wo, t, n, g->Wo, out);
                }
            }
        }
}

/* G of F(4x4, 3x3), 6x3, in double: the weights are transformed once a step, and its
 * sixths and 24ths are not exact in float */
static const double mlc_wino4_G[6][3] = {{1.0 / 4, 0, 0},
                                         {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                         {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                         {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                         {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                         {0, 0, 1}};

void mlc_wino4_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U) {
    mlc_wino_transform_weights(g, w, flip, 6, &mlc_wino4_G[0][0], U);
}

/* A v for F(4x4, 3x3)'s A (6x4, the transpose of mlc_wino4_at's A^T): 4 points of dy to
 * the 6 the products are taken at */
static inline __attribute__((always_inline)) void mlc_wino4_a(const mlc_vf v[4], mlc_vf t[6]) {
    const mlc_vf s02 = v[0] + v[2], s13 = v[1] + v[3], f02 = v[0] + 4.0f * v[2], f13 = 2.0f * v[1] + 8.0f * v[3];
    t[0] = v[0], t[1] = s02 + s13, t[2] = s02 - s13, t[3] = f02 + f13, t[4] = f02 - f13, t[5] = v[3];
}

void mlc_wino4_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dt, long OB, long t0, long t1,
                          float *Zt, long ldt, long zs) {
    const mlc_vf zero = {0};
    for (long t = t0; t < t1; t++) {
        const long th = t / d->tW, tw = t % d->tW;
        const long rows = g->Ho - 4 * th < 4 ? g->Ho - 4 * th : 4, cols = g->Wo - 4 * tw < 4 ? g->Wo - 4 * tw : 4;
        const float *r0 = dt + (4 * th * g->Wo + 4 * tw) * OB;
        float *z = Zt + (t - t0) * ldt;
        for (long o = 0; o < OB; o += MLC_VW) {
            mlc_vf e[6][4]; /* e[.][q] = A of the tile's column q (zeros past Ho and Wo) */
            for (int q = 0; q < 4; q++) {
                mlc_vf col[4];
                for (int r = 0; r < 4; r++)
                    col[r] = r < rows && q < cols ? (mlc_vf)MLC_LD(r0 + (r * g->Wo + q) * OB + o) : zero;
                mlc_vf a[6];
                mlc_wino4_a(col, a);
                for (int k = 0; k < 6; k++) e[k][q] = a[k];
            }
            for (int a = 0; a < 6; a++) { /* then each row of them: point a*6 + i */
                mlc_vf zr[6];
                mlc_wino4_a(e[a], zr);
                for (int i = 0; i < 6; i++) MLC_ST(z + (a * 6 + i) * zs + o, zr[i]);
            }
        }
    }
}

void mlc_wino4_weight_grad(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, float *dw) {
    mlc_wino_grad_to_weights(g, dU, OB, o0, o1, 6, &mlc_wino4_G[0][0], dw);
}
