/* winograd_tiles.c - the padded input of both tile sizes (mlc_wino_pad); F(2x2, 3x3)'s
 * transforms: input patches to V = B^T d B, products back to output tiles A^T M A, dy tiles to Z = A dy A^T, weights to U = G w G^T and dU
 * back to dw = G^T dU G. Each loop runs along a row of tiles over contiguous memory (the
 * padded rows are stored even columns first), so the compiler vectorises it at the
 * machine's width. Every value is computed the same way whatever the thread count. */
#include <string.h>

#include "winograd_tiles.h"

/* F(4x4, 3x3) pads as many rows of a channel as fit in this many floats into a buffer on
 * the stack first and then splits them into phases, 8 columns at a time: split right after
 * its padding, a row would be loaded while the stores that wrote it (offset by the
 * padding) are in flight, which stalled every load. Rows wider than the buffer: element
 * by element. */
enum { MLC_WINO_PAD_ROWS = 4096 };

/* F(4x4, 3x3)'s padded channel: index i of phase q of row r holds x column 4i + q - pw */
static void mlc_wino4_pad_channel(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, float *xp) {
    const long len = d->Wp / 4, rows = MLC_WINO_PAD_ROWS / d->Wp;
    if (rows > 0) {
        float t[MLC_WINO_PAD_ROWS + 8];
        long j0 = g->pw < 0 ? 0 : g->pw > d->Wp ? d->Wp : g->pw, j1 = g->W + g->pw; /* x's columns */
        j1 = j1 > d->Wp ? d->Wp : j1 < j0 ? j0 : j1;
        for (long r0 = 0; r0 < d->Hp; r0 += rows) {
            const long r1 = r0 + rows < d->Hp ? r0 + rows : d->Hp;
            for (long r = r0; r < r1; r++) { /* in address order: the zeros' spill is written next */
                float *row = t + (r - r0) * d->Wp;
                const long h = r - g->ph;
                if (h < 0 || h >= g->H) {
                    mlc_zero_spill(row, d->Wp);
                    continue;
                }
                mlc_zero_spill(row, j0);
                mlc_copy_row(row + j0, x + h * g->W + j0 - g->pw, j1 - j0);
                mlc_zero_spill(row + j1, d->Wp - j1);
            }
            for (long r = r0; r < r1; r++) mlc_split4_row(xp + r * d->Wp, len, t + (r - r0) * d->Wp, len);
        }
        return;
    }
    for (long r = 0; r < d->Hp; r++) {
        const long h = r - g->ph;
        for (long i = 0; i < len; i++)
            for (long q = 0; q < 4; q++) {
                const long col = 4 * i + q - g->pw;
                xp[r * d->Wp + q * len + i] = h >= 0 && h < g->H && col >= 0 && col < g->W ? x[h * g->W + col] : 0.0f;
            }
    }
}

void mlc_wino_pad(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *x, float *xp) {
    if (d->m == 4) {
        for (long c = 0; c < g->C; c++) mlc_wino4_pad_channel(g, d, x + c * g->H * g->W, xp + c * d->Hp * d->Wp);
        return;
    }
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
            /* column m of the even half reads x column 2m - pw, of the odd half 2m + 1 - pw:
             * zeros, then a stride-2 gather, then zeros */
            for (int par = 0; par < 2; par++) {
                float *dst = par ? o : e;
                const long first = par - g->pw; /* the x column of m = 0 */
                long m0 = first >= 0 ? 0 : (-first + 1) / 2, m1 = first < g->W ? (g->W - first + 1) / 2 : 0;
                m0 = m0 > half ? half : m0, m1 = m1 > half ? half : m1 < m0 ? m0 : m1;
                for (long m = 0; m < m0; m++) dst[m] = 0.0f;
                mlc_gather2_row(dst + m0, xr + 2 * m0 + first, m1 - m0);
                for (long m = m1; m < half; m++) dst[m] = 0.0f;
            }
        }
}

void mlc_wino_input_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *xp, long th0, long th1, float *V,
                          long ldc, long vs) {
    const long half = d->Wp / 2, tW = d->tW;
    for (long c = 0; c < g->C; c++)
        for (long th = th0; th < th1; th++) {
            const float *e0 = xp + (c * d->Hp + 2 * th) * d->Wp, *e1 = e0 + d->Wp, *e2 = e1 + d->Wp, *e3 = e2 + d->Wp;
            const float *o0 = e0 + half, *o1 = e1 + half, *o2 = e2 + half, *o3 = e3 + half;
            float *v = V + c * ldc + (th - th0) * tW;
            /* MLC_VW tiles at a time; the last vector's spare lanes land on the next row of
             * tiles (written after) or in the slack after V's matrices (mlc_wino_stride) */
            for (long t = 0; t < tW; t += MLC_VW) {
                /* rows of B^T d: the patch's columns 2t, 2t + 1, 2t + 2, 2t + 3 are e[t], o[t],
                 * e[t + 1], o[t + 1] */
#define MLC_WINO_ROWS(r, ea, eb, oa, ob, op)                                                       \
    const mlc_v8 r##0 = MLC_LD(ea + t) op MLC_LD(eb + t), r##1 = MLC_LD(oa + t) op MLC_LD(ob + t); \
    const mlc_v8 r##2 = MLC_LD(ea + t + 1) op MLC_LD(eb + t + 1), r##3 = MLC_LD(oa + t + 1) op MLC_LD(ob + t + 1)
                MLC_WINO_ROWS(a, e0, e2, o0, o2, -);
                MLC_WINO_ROWS(b, e1, e2, o1, o2, +);
                MLC_WINO_ROWS(q, e2, e1, o2, o1, -);
                MLC_WINO_ROWS(z, e1, e3, o1, o3, -);
#undef MLC_WINO_ROWS
                /* then each row times B */
                float *p = v + t;
                MLC_ST(p, a0 - a2), MLC_ST(p + vs, a1 + a2), MLC_ST(p + 2 * vs, a2 - a1), MLC_ST(p + 3 * vs, a1 - a3);
                p += 4 * vs;
                MLC_ST(p, b0 - b2), MLC_ST(p + vs, b1 + b2), MLC_ST(p + 2 * vs, b2 - b1), MLC_ST(p + 3 * vs, b1 - b3);
                p += 4 * vs;
                MLC_ST(p, q0 - q2), MLC_ST(p + vs, q1 + q2), MLC_ST(p + 2 * vs, q2 - q1), MLC_ST(p + 3 * vs, q1 - q3);
                p += 4 * vs;
                MLC_ST(p, z0 - z2), MLC_ST(p + vs, z1 + z2), MLC_ST(p + 2 * vs, z2 - z1), MLC_ST(p + 3 * vs, z1 - z3);
            }
        }
}

void mlc_wino_output_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *M, long th0, long th1, long ldo,
                           long ms, float *y) {
    const long tW = d->tW, full = g->Wo / 2; /* tiles with both columns inside */
    for (long o = 0; o < g->O; o++)
        for (long th = th0; th < th1; th++) {
            const float *restrict m = M + o * ldo + (th - th0) * tW;
            float *restrict y0 = y + (o * g->Ho + 2 * th) * g->Wo;
            float *restrict y1 = 2 * th + 1 < g->Ho ? y0 + g->Wo : NULL;
#define MLC_WINO_TILE_OUT(t)                                          \
    const float s0 = m[0 * ms + t] + m[4 * ms + t] + m[8 * ms + t],   \
                s1 = m[1 * ms + t] + m[5 * ms + t] + m[9 * ms + t];   \
    const float s2 = m[2 * ms + t] + m[6 * ms + t] + m[10 * ms + t],  \
                s3 = m[3 * ms + t] + m[7 * ms + t] + m[11 * ms + t];  \
    const float q0 = m[4 * ms + t] - m[8 * ms + t] - m[12 * ms + t],  \
                q1 = m[5 * ms + t] - m[9 * ms + t] - m[13 * ms + t];  \
    const float q2 = m[6 * ms + t] - m[10 * ms + t] - m[14 * ms + t], \
                q3 = m[7 * ms + t] - m[11 * ms + t] - m[15 * ms + t]
            long t0 = 0;
#if defined(MLC_SHUF) && MLC_VW == 8
            /* 8 tiles at a time while both rows are inside, their columns interleaved in
             * registers */
            for (; y1 && t0 + 8 <= full; t0 += 8) {
                mlc_v8 v[16];
                for (int k = 0; k < 16; k++) v[k] = MLC_LD(m + k * ms + t0);
                const mlc_v8 s0 = v[0] + v[4] + v[8], s1 = v[1] + v[5] + v[9], s2 = v[2] + v[6] + v[10];
                const mlc_v8 s3 = v[3] + v[7] + v[11], q0 = v[4] - v[8] - v[12], q1 = v[5] - v[9] - v[13];
                const mlc_v8 q2 = v[6] - v[10] - v[14], q3 = v[7] - v[11] - v[15];
                const mlc_v8 a = s0 + s1 + s2, b = s1 - s2 - s3, c = q0 + q1 + q2, e = q1 - q2 - q3;
                MLC_ST(y0 + 2 * t0, MLC_SHUF(a, b, 0, 8, 1, 9, 2, 10, 3, 11));
                MLC_ST(y0 + 2 * t0 + 8, MLC_SHUF(a, b, 4, 12, 5, 13, 6, 14, 7, 15));
                MLC_ST(y1 + 2 * t0, MLC_SHUF(c, e, 0, 8, 1, 9, 2, 10, 3, 11));
                MLC_ST(y1 + 2 * t0 + 8, MLC_SHUF(c, e, 4, 12, 5, 13, 6, 14, 7, 15));
            }
#endif
            if (y1)
                for (long t = t0; t < full; t++) {
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

void mlc_wino_grad_tiles(const mlc_conv_geom *g, const mlc_wino_dims *d, const float *dt, long OB, long t0, long t1,
                         float *Zt, long ldt, long zs) {
    const mlc_vf zero = {0};
    for (long t = t0; t < t1; t++) {
        const long th = t / d->tW, tw = t % d->tW;
        /* the tile's 2x2 of dy, zeros past Ho and Wo */
        const long p00 = 2 * th * g->Wo + 2 * tw;
        const int in1 = 2 * tw + 1 < g->Wo, has1 = 2 * th + 1 < g->Ho;
        const float *r0 = dt + p00 * OB, *r1 = r0 + g->Wo * OB;
        float *z = Zt + (t - t0) * ldt;
        for (long o = 0; o < OB; o += MLC_VW) {
            const mlc_vf p00v = MLC_LD(r0 + o), p01 = in1 ? (mlc_vf)MLC_LD(r0 + OB + o) : zero;
            const mlc_vf p10 = has1 ? (mlc_vf)MLC_LD(r1 + o) : zero;
            const mlc_vf p11 = in1 && has1 ? (mlc_vf)MLC_LD(r1 + OB + o) : zero;
            /* rows of A dy: dy0, dy0 + dy1, dy0 - dy1, -dy1; then each row times A^T */
            const mlc_vf a0 = p00v, a1 = p01, b0 = p00v + p10, b1 = p01 + p11;
            const mlc_vf c0 = p00v - p10, c1 = p01 - p11, d0 = -p10, d1 = -p11;
            float *q = z + o;
            MLC_ST(q, a0), MLC_ST(q + zs, a0 + a1), MLC_ST(q + 2 * zs, a0 - a1), MLC_ST(q + 3 * zs, -a1);
            q += 4 * zs;
            MLC_ST(q, b0), MLC_ST(q + zs, b0 + b1), MLC_ST(q + 2 * zs, b0 - b1), MLC_ST(q + 3 * zs, -b1);
            q += 4 * zs;
            MLC_ST(q, c0), MLC_ST(q + zs, c0 + c1), MLC_ST(q + 2 * zs, c0 - c1), MLC_ST(q + 3 * zs, -c1);
            q += 4 * zs;
            MLC_ST(q, d0), MLC_ST(q + zs, d0 + d1), MLC_ST(q + 2 * zs, d0 - d1), MLC_ST(q + 3 * zs, -d1);
        }
    }
}

/* G of F(2x2, 3x3), 4x3 (in double, as F(4x4, 3x3)'s, so both share mlc_wino_transform_weights) */
static const double mlc_wino_G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

/* One (output, input) pair's n x n tile, G k G^T in double; inlined with n a constant, so
 * that its loops unroll. */
static inline __attribute__((always_inline)) void mlc_wino_tile_of(const float *f, int flip, int n, const double *G,
                                                                   double *tile) {
    double k3[3][3], t[6][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) k3[a][b] = flip ? f[(2 - a) * 3 + 2 - b] : f[a * 3 + b];
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 3; b++) t[i][b] = G[i * 3] * k3[0][b] + G[i * 3 + 1] * k3[1][b] + G[i * 3 + 2] * k3[2][b];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            tile[i * n + j] = t[i][0] * G[j * 3] + t[i][1] * G[j * 3 + 1] + t[i][2] * G[j * 3 + 2];
}

void mlc_wino_transform_weights(const mlc_conv_geom *g, const float *w, int flip, int n, const double *G, float *U) {
    enum { KC = 64 }; /* inputs per chunk: their tiles are computed, then written plane by plane */
    const long O = g->O, C = g->C, R = flip ? C : O, K = flip ? O : C, mb = (R + 3) / 4; /* rows, their inputs */
    const long plane = mb * 4 * K;                                                       /* floats per point */
    memset(U, 0, sizeof(float) * (size_t)(n * n * plane));
    /* once a step, before the samples' parallel loop: threaded itself, since serial it held
     * the other threads for 4 % of resnet's step; each row is one thread's. A pair's n * n
     * points lie a plane apart (often 2^k floats, so one cache set): storing each pair's
     * tile as computed missed on nearly every store, so a row's tiles go out a plane and a
     * chunk of inputs at a time. */
#pragma omp parallel for schedule(static) if (O * C >= 256)
    for (long r = 0; r < R; r++)
        for (long k0 = 0; k0 < K; k0 += KC) {
            const long nk = K - k0 < KC ? K - k0 : KC;
            double tiles[KC][36];
            for (long k = 0; k < nk; k++) {
                const float *f = w + (flip ? (k0 + k) * C + r : r * C + k0 + k) * 9; /* w [O][C][3][3] */
                if (n == 6) mlc_wino_tile_of(f, flip, 6, G, tiles[k]);
                else mlc_wino_tile_of(f, flip, 4, G, tiles[k]);
            }
            float *u = U + ((r / 4) * K + k0) * 4 + r % 4; /* row r, input k: at [r / 4][k][r % 4] */
            for (int ij = 0; ij < n * n; ij++)
                for (long k = 0; k < nk; k++) u[ij * plane + k * 4] = (float)tiles[k][ij];
        }
}

void mlc_wino_weight_tiles(const mlc_conv_geom *g, const float *w, int flip, float *U) {
    mlc_wino_transform_weights(g, w, flip, 4, &mlc_wino_G[0][0], U);
}

void mlc_wino_grad_to_weights(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, int n,
                              const double *G, float *dw) {
    const long C = g->C, CB = C * OB;
    for (long o = o0; o < o1; o++)
        for (long c = 0; c < C; c++) {
            double u[6][6], t[3][6];
            for (int k = 0; k < n * n; k++) u[k / n][k % n] = dU[k * CB + c * OB + o];
            for (int a = 0; a < 3; a++)
                for (int j = 0; j < n; j++) {
                    double s = G[a] * u[0][j];
                    for (int i = 1; i < n; i++) s += G[i * 3 + a] * u[i][j];
                    t[a][j] = s;
                }
            float *f = dw + (o * C + c) * 9;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    double s = t[a][0] * G[b];
                    for (int j = 1; j < n; j++) s += t[a][j] * G[j * 3 + b];
                    f[a * 3 + b] = (float)s;
                }
        }
}

void mlc_wino_weight_grad(const mlc_conv_geom *g, const float *dU, long OB, long o0, long o1, float *dw) {
    mlc_wino_grad_to_weights(g, dU, OB, o0, o1, 4, &mlc_wino_G[0][0], dw);
}
