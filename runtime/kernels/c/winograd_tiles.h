/* winograd_tiles.h - internal to the kernel library: the tile transforms of F(2x2, 3x3)
 * (winograd_tiles.c) and F(4x4, 3x3) (winograd4_tiles.c) that the Winograd convolution's
 * three ops (winograd_conv.c, winograd_filter.c) are built from, on the layout of
 * mlc_winograd_layout.h. The products between the transforms are 16 or 36 GEMMs:
 * mlc_shift_gemm's (forward, input gradient), cblas_sgemm's (weight gradient). */
#ifndef MLC_WINOGRAD_TILES_H
#define MLC_WINOGRAD_TILES_H

#include "mlc_kernels.h"
#include "simd.h"

/* F(4x4, 3x3)'s 1-D transforms, on vectors of type T: B^T d (d a row or column of 6
 * points of a patch), A^T m (m a row or column of 6 products: 4 outputs). mlc_wino4_bt /
 * _at on mlc_vf (the row layout: a tile a lane), mlc_wino4_bt8 / _at8 on mlc_f8 (sample
 * groups: a sample a lane): one formula, so both layouts compute the same bits. */
#define MLC_WINO4_TRANSFORMS(sfx, T)                                                        \
    MLC_INLINE void mlc_wino4_bt##sfx(const T d[6], T o[6]) {                               \
        const T s12 = d[1] + d[2], d12 = d[1] - d[2], d31 = d[3] - d[1], d42 = d[4] - d[2]; \
        o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];                                            \
        o[1] = (d[3] + d[4]) - 4.0f * s12;                                                  \
        o[2] = (d[4] - d[3]) + 4.0f * d12;                                                  \
        o[3] = d42 + 2.0f * d31;                                                            \
        o[4] = d42 - 2.0f * d31;                                                            \
        o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];                                            \
    }                                                                                       \
    MLC_INLINE void mlc_wino4_at##sfx(const T m[6], T y[4]) {                               \
        const T s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4]; \
        y[0] = m[0] + s12 + s34;                                                            \
        y[1] = d12 + 2.0f * d34;                                                            \
        y[2] = s12 + 4.0f * s34;                                                            \
        y[3] = d12 + 8.0f * d34 + m[5];                                                     \
    }
MLC_WINO4_TRANSFORMS(, mlc_vf)
MLC_WINO4_TRANSFORMS(8, mlc_f8)
#undef MLC_WINO4_TRANSFORMS

#if defined(MLC_SHUF)
/* The 4 columns of an output tile row, c[j] one column of 8 tiles or samples, interleaved
 * in registers: z[k] holds lanes 2k and 2k + 1 of each, (c0, c1, c2, c3 of lane 2k, then
 * of lane 2k + 1), two tiles' rows in order */
MLC_INLINE void mlc_wino4_interleave(const mlc_f8 c[4], mlc_f8 z[4]) {
    const mlc_f8 p0 = MLC_SHUF(c[0], c[1], 0, 8, 1, 9, 2, 10, 3, 11);
    const mlc_f8 p1 = MLC_SHUF(c[0], c[1], 4, 12, 5, 13, 6, 14, 7, 15);
    const mlc_f8 p2 = MLC_SHUF(c[2], c[3], 0, 8, 1, 9, 2, 10, 3, 11);
    const mlc_f8 p3 = MLC_SHUF(c[2], c[3], 4, 12, 5, 13, 6, 14, 7, 15);
    z[0] = MLC_SHUF(p0, p2, 0, 1, 8, 9, 2, 3, 10, 11), z[1] = MLC_SHUF(p0, p2, 4, 5, 12, 13, 6, 7, 14, 15);
    z[2] = MLC_SHUF(p1, p3, 0, 1, 8, 9, 2, 3, 10, 11), z[3] = MLC_SHUF(p1, p3, 4, 5, 12, 13, 6, 7, 14, 15);
}
#endif

/* xp [C][Hp][Wp] = sample x [C][H][W] zero-padded by (ph, pw) (any sign), each row as its
 * d->m phases (F(2x2, 3x3): its even columns, then its odd ones) */
void mlc_wino_pad(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, float *xp);

/* V[k][c][t] (k < 16, c < C, t < (th1 - th0)*tW: the tiles of rows th0 <= th < th1;
 * channels ldc floats apart, the k-th matrix vs floats after the (k-1)-th) = (B^T patch
 * B)[k] of tile t's 4x4 patch of xp */
void mlc_wino_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1, float *V,
                          long ldc, long vs);

/* The rows th0 <= th < th1 of y [O][Ho][Wo]'s tiles = A^T M A, M[k][o][t] (t counted from
 * row th0's first tile; channels ldo floats apart, matrices ms floats apart) */
void mlc_wino_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1, long ldo,
                           long ms, float *y);

/* Zt[k][t - t0][o] (matrices zs floats apart, tile t's row ldt floats after tile t - 1's)
 * = (A dy A^T)[k] of tile t's 2x2 of dy for the tiles t0 <= t < t1 (raster order), o < OB
 * (a multiple of MLC_VW), read from dy transposed: dt [Ho*Wo][OB] (zeros past Ho, Wo) */
void mlc_wino_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dt, long OB, long t0, long t1,
                         float *Zt, long ldt, long zs);

/* U = G w[o][c] G^T for w [O][C][3][3], for mlc_shift_gemm: point k's matrix as blocks of
 * 4 output channels, [16][ceil(O/4)][C][4], zeros past O. flip: the input gradient's
 * (rows c, inputs o, w rotated by 180 degrees), [16][ceil(C/4)][O][4]. */
void mlc_wino_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U);

/* U = G w G^T for the n x 3 matrix G (n = 4, 6: F(2x2, 3x3), F(4x4, 3x3)), computed in
 * double and rounded once, laid out as mlc_wino_weight_tiles says for n*n points */
void mlc_wino_transform_weights(const mlc_conv_geom *g, const float *w, int flip, int n, const double *G, float *U);

/* dw[o][c] = G^T dU[.][c][o] G for o in [o0, o1) (dU [16][C][OB]); for the n x 3 matrix G
 * in general (dU [n*n][C][OB]), in double */
void mlc_wino_weight_grad(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, float *dw);
void mlc_wino_grad_to_weights(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, int n,
                              const double *G, float *dw);

/* F(4x4, 3x3), as the four above: V[k][c][t] (k < 36) = (B^T patch B)[k] of the 6x6
 * patches; y's rows th0 <= th < th1 of 4x4 tiles = A^T M A; U = G w G^T as
 * [36][ceil(R/4)][K][4] */
void mlc_wino4_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1,
                           float *V, long ldc, long vs);
void mlc_wino4_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1,
                            long ldo, long ms, float *y);
void mlc_wino4_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U);
/* F(4x4, 3x3)'s weight gradient, as F(2x2, 3x3)'s above: Zt[k][t - t0][o] (k < 36) = (A dy
 * A^T)[k] of tile t's 4x4 of dy, A 6x4; dw = G^T dU G from dU [36][C][OB] */
void mlc_wino4_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dt, long OB, long t0, long t1,
                          float *Zt, long ldt, long zs);
void mlc_wino4_weight_grad(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, float *dw);

/* Sample groups (winograd_groups.c; mlc_winograd_layout.h): xg [C][Hp][Wp][8] = the
 * ns <= 8 samples from x on (x [ns][C][H][W]) zero-padded by (ph, pw), empty lanes
 * repeating sample 0. F(4x4, 3x3): V[k][c][(t - t0)*8 + s] = (B^T patch B)[k] of tile
 * t's patch of sample s, for tiles t0 <= t < t1 in raster order; the tiles t0 <= t < t1
 * of the ns samples of y (y [ns][O][Ho][Wo]) = A^T M A, M[k][o][(t - t0)*8 + s]
 * (channels ldo floats apart, matrices ms floats apart). F(2x2, 3x3): V likewise, k < 16
 * (its weight gradient's). */
void mlc_wino_group_pad(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, long ns, float *xg);
void mlc_wino2g_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xg, long t0, long t1, float *V,
                            long ldc, long vs);
void mlc_wino4g_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xg, long t0, long t1, float *V,
                            long ldc, long vs);
void mlc_wino4g_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long t0, long t1, long ldo,
                             long ms, long ns, float *y);

#endif
