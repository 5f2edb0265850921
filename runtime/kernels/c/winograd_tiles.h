/* winograd_tiles.h - internal to the kernel library: the tile transforms of F(2x2, 3x3)
 * (winograd_tiles.c) and F(4x4, 3x3) (winograd4_tiles.c) that the Winograd convolution's
 * three ops (winograd_conv.c, winograd_filter.c) are built from, on the layout of
 * mlc_winograd_layout.h. The products between the transforms are 16 or 36 GEMMs:
 * mlc_shift_gemm's (forward, input gradient), cblas_sgemm's (weight gradient). */
#ifndef MLC_WINOGRAD_TILES_H
#define MLC_WINOGRAD_TILES_H

#include "mlc_kernels.h"
#include "simd.h"

#ifndef MLC_VW
#define MLC_VW 8 /* floats in an mlc_v8 (simd.h) */
/* F(4x4, 3x3), as the four above: V[k][c][t] (k < 36) = (B^T patch B)[k] of the 6x6
 * patches; y's rows th0 <= th < th1 of 4x4 tiles = A^T M A; U = G w G^T as
 * [36][ceil(R/4)][K][4] */
void mlc_wino4_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1,
                           float *V, long ldc, long vs);
void mlc_wino4_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1,
                            long ldo, long ms, float *y);
void mlc_wino4_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U);

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

/* Zt[k][t][o] (matrices zs floats apart, rows OB) = (A dy A^T)[k] of tile t's 2x2 of dy,
 * for o < OB (a multiple of MLC_VW), read from dy transposed: dt [Ho*Wo][OB] (zeros
 * past Ho, Wo) */
void mlc_wino_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dt, long OB, float *Zt, long zs);

/* U = G w[o][c] G^T for w [O][C][3][3], for mlc_shift_gemm: point k's matrix as blocks of
 * 4 output channels, [16][ceil(O/4)][C][4], zeros past O. flip: the input gradient's
 * (rows c, inputs o, w rotated by 180 degrees), [16][ceil(C/4)][O][4]. */
void mlc_wino_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U);

/* U = G w G^T for the n x 3 matrix G (n = 4, 6: F(2x2, 3x3), F(4x4, 3x3)), computed in
 * double and rounded once, laid out as mlc_wino_weight_tiles says for n*n points */
void mlc_wino_transform_weights(const mlc_conv_geom *g, const float *w, int flip, int n, const double *G, float *U);

/* dw[o][c] = G^T dU[.][c][o] G for o in [o0, o1) (dU [16][C][OB]) */
void mlc_wino_weight_grad(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, float *dw);

/* F(4x4, 3x3), as the four above: V[k][c][t] (k < 36) = (B^T patch B)[k] of the 6x6
 * patches; y's rows th0 <= th < th1 of 4x4 tiles = A^T M A; U = G w G^T as
 * [36][ceil(R/4)][K][4] */
void mlc_wino4_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1,
                           float *V, long ldc, long vs);
void mlc_wino4_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1,
                            long ldo, long ms, float *y);
void mlc_wino4_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U);

#endif
