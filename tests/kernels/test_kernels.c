/* test_kernels.c - the C kernel library (libmlckernels) on its own, against plain
 * reference loops in double: the SGEMM split for odd shapes and team sizes, the three
 * convolution ops (strides, padding, dilation, groups, odd channel counts, the
 * sample-by-sample entry points), pooling forward and backward, batch norm's sums, layer
 * and RMS norm over rows, the embedding's gather and scatter, the strided-batched SGEMM.
 * All but the SGEMMs (OpenBLAS's rounding may follow the block sizes) also give the same
 * bits whatever the thread count, and run again on the same inputs, which they check.
 * Built once against the library as installed and once per vector width (4, 8, 16 floats:
 * tests/kernels/meson.build, MLC_TEST_VW).
 *
 * Tolerances are relative to the sum of the magnitudes of what is added up, a few float
 * roundings per term: a tap or a row off by one moves a result by a whole term, orders of
 * magnitude more. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_kernels.h"

static float *alloc_floats(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64 + 64));
    cr_assert_not_null(p);
    return p;
}

static void fill(float *p, long n, unsigned s) {
    for (long i = 0; i < n; i++) s = s * 1103515245u + 12345u, p[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* |got - want| within 1e-5 of mag (the sum of the terms' magnitudes) */
static void expect_near(const float *got, const double *want, const double *mag, long n, const char *what) {
    for (long i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 * mag[i] + 1e-7, "%s: element %ld is %.9g, expected %.9g", what, i,
                  (double)got[i], want[i]);
}

/* ---- SGEMM ---- */

static void naive_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, double *C,
                       double *mag) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (int k = 0; k < K; k++) {
                const double p =
                    (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                s += p, m += fabs(p);
            }
            C[i * N + j] = s, mag[i * N + j] = m;
        }
}

Test(kernels, sgemm_matches_naive_for_odd_shapes_and_teams) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {37, 53, 19}, {130, 33, 70}, {33, 200, 50}, {257, 65, 17}};
    mlc_kernels_init();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = t & 1, tb = t >> 1;
            const int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = alloc_floats((long)M * K), *B = alloc_floats((long)K * N), *C = alloc_floats((long)M * N);
            float *C1 = alloc_floats((long)M * N);
            double *R = malloc(sizeof(double) * (size_t)M * N), *mag = malloc(sizeof(double) * (size_t)M * N);
            fill(A, (long)M * K, 1u + (unsigned)s), fill(B, (long)K * N, 7u + (unsigned)s);
            naive_gemm(ta, tb, M, N, K, A, lda, B, ldb, R, mag);
            for (int threads = 1; threads <= 3; threads++) {
                omp_set_num_threads(threads);
                for (int rep = 0; rep < 2; rep++) {
                    memset(C, 0xff, sizeof(float) * (size_t)M * N); /* NaNs: every element must be written */
                    mlc_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, N);
                    expect_near(C, R, mag, (long)M * N, "mlc_sgemm");
                    /* OpenBLAS may round a block differently by its size, so the bits depend on
                     * the team size (a trainer's seed and --threads fix them), not on the run */
                    if (rep == 0) memcpy(C1, C, sizeof(float) * (size_t)M * N);
                    else
                        cr_assert_eq(memcmp(C, C1, sizeof(float) * (size_t)M * N), 0,
                                     "%dx%dx%d, %d threads: runs differ", M, N, K, threads);
                }
            }
            free(A), free(B), free(C), free(C1), free(R), free(mag);
        }
}

/* mlc_sgemm_batched: every entry against the reference, an operand shared by all entries
 * (stride 0) on either side, each transpose, padded leading dimensions and strides; and
 * the same bits on 1, 2 and 3 threads (each entry is one cblas_sgemm whatever the team). */
Test(kernels, sgemm_batched_matches_naive_and_team_sizes) {
    static const int shapes[][4] = {{1, 1, 1, 1}, {5, 7, 3, 6}, {3, 37, 53, 19}, {2, 130, 33, 70}, {9, 16, 16, 8}};
    mlc_kernels_init();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 16; t++) {
            const int count = shapes[s][0], M = shapes[s][1], N = shapes[s][2], K = shapes[s][3];
            const int ta = t & 1, tb = (t >> 1) & 1, share_a = (t >> 2) & 1, share_b = (t >> 3) & 1;
            const int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3; /* padded rows */
            const long ea = (long)(ta ? K : M) * lda, eb = (long)(tb ? N : K) * ldb, ec = (long)M * ldc + 5;
            const long sa = share_a ? 0 : ea, sb = share_b ? 0 : eb;
            float *A = alloc_floats(ea * count), *B = alloc_floats(eb * count), *C = alloc_floats(ec * count);
            float *C1 = alloc_floats(ec * count);
            double *R = malloc(sizeof(double) * (size_t)M * N), *mag = malloc(sizeof(double) * (size_t)M * N);
            float *got = alloc_floats((long)M * N);
            fill(A, ea * count, 11u + (unsigned)s), fill(B, eb * count, 17u + (unsigned)t);
            for (int threads = 1; threads <= 3; threads++) {
                omp_set_num_threads(threads);
                memset(C, 0xff, sizeof(float) * (size_t)(ec * count)); /* NaNs: every element must be written */
                mlc_sgemm_batched(ta, tb, M, N, K, A, lda, sa, B, ldb, sb, C, ldc, ec, count);
                for (int i = 0; i < count; i++) {
                    naive_gemm(ta, tb, M, N, K, A + i * sa, lda, B + i * sb, ldb, R, mag);
                    for (int r = 0; r < M; r++)
                        memcpy(got + (long)r * N, C + i * ec + (long)r * ldc, sizeof(float) * (size_t)N);
                    expect_near(got, R, mag, (long)M * N, "mlc_sgemm_batched");
                }
                if (threads == 1) memcpy(C1, C, sizeof(float) * (size_t)(ec * count));
                for (int i = 0; i < count; i++)
                    for (int r = 0; r < M; r++)
                        cr_assert_eq(
                            memcmp(C + i * ec + (long)r * ldc, C1 + i * ec + (long)r * ldc, sizeof(float) * (size_t)N),
                            0, "%d x %dx%dx%d (ta %d tb %d): %d threads differ from 1", count, M, N, K, ta, tb,
                            threads);
            }
            free(A), free(B), free(C), free(C1), free(R), free(mag), free(got);
        }
}

/* The blocks of mlc_sgemm_block's team cover C exactly once, whatever the team size. */
Test(kernels, sgemm_blocks_cover_the_output_once) {
    static const int shapes[][3] = {{130, 33, 70}, {33, 200, 50}, {1000, 40, 10}, {17, 33, 1000}};
    mlc_kernels_init();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int threads = 1; threads <= 5; threads++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = alloc_floats((long)M * K), *B = alloc_floats((long)K * N), *C = alloc_floats((long)M * N);
            int *count = calloc((size_t)M * N, sizeof(int));
            fill(A, (long)M * K, 3), fill(B, (long)K * N, 4);
#pragma omp parallel num_threads(threads)
            {
                long r0, r1, c0, c1;
                mlc_sgemm_block(0, 0, M, N, K, A, K, B, N, C, N, &r0, &r1, &c0, &c1);
                for (long i = r0; i < r1; i++)
                    for (long j = c0; j < c1; j++)
#pragma omp atomic
                        count[i * N + j]++;
            }
            for (long i = 0; i < (long)M * N; i++)
                cr_assert_eq(count[i], 1, "%dx%dx%d, %d threads: element %ld covered %d times", M, N, K, threads, i,
                             count[i]);
            free(A), free(B), free(C), free(count);
        }
}

/* ---- convolution ---- */

typedef struct ConvCase {
    int C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, G;
} ConvCase;

// clang-format off
static const ConvCase conv_cases[] = {
    {3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},     /* same padding, 5 output channels */
    {2, 11, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1},    /* stride 2, odd sizes */
    {2, 10, 10, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1},   /* dilation 2 */
    {4, 8, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2},     /* groups 2, 4 channels a group: direct stores */
    {6, 7, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3},     /* groups 3, strided */
    {3, 9, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1},     /* 1x1 stride 2: a downsampling shortcut */
    {2, 13, 14, 3, 5, 4, 3, 3, 2, 1, 1, 1, 1},   /* stride 3, a 5x4 kernel */
    {3, 9, 8, 7, 3, 2, 2, 1, 1, 0, 1, 2, 1},     /* different strides, padding, dilation per axis */
    {1, 28, 28, 32, 5, 5, 1, 1, 2, 2, 1, 1, 1},  /* wide rows: several segments a row */
    {3, 6, 6, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* 17 output channels: the 16-channel blocks' edge */
    {5, 12, 12, 20, 3, 3, 1, 1, 0, 0, 1, 1, 1},  /* no padding, 20 channels */
    {4, 5, 5, 4, 2, 2, 2, 2, 0, 0, 1, 1, 4},     /* depthwise 2x2 stride 2 */
    {2, 9, 37, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* 37 columns, 40 channels: 16-wide tails and blocks */
    {3, 6, 19, 36, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* 19 columns: a row of one 16-float segment and a tail */
    {4, 15, 15, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1},   /* 1x1: rows of 15 columns, along q at width 16 */
    /* rows that leave lanes empty, with channels that fill 2 vectors: the kernel with
     * vectors over channels (mlc_shift_cv_for), forward and input gradient */
    {32, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2},   /* 7x7, groups 2: blocks of 6 across rows, the last overlapping */
    {32, 14, 14, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1}, /* stride 2: the input gradient's 7x7 phases stored strided */
    {32, 9, 34, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1},  /* phases of 17 columns: 8x8 blocks and a tail, strided */
    {32, 4, 4, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1},   /* 2x2 outputs: fewer than 6 positions */
    {32, 9, 9, 32, 3, 3, 1, 1, 2, 2, 2, 2, 1},   /* dilation 2: taps two apart in the padded rows */
    {32, 10, 13, 32, 3, 3, 2, 1, 1, 1, 1, 1, 1}, /* stride 2 down, 1 across: dx's phases with gaps between rows */
};
// clang-format on

static mlc_conv_geom geom_of(const ConvCase *c) {
    mlc_conv_geom g = {.C = c->C,
                       .H = c->H,
                       .W = c->W,
                       .O = c->O,
                       .KH = c->KH,
                       .KW = c->KW,
                       .sh = c->sh,
                       .sw = c->sw,
                       .ph = c->ph,
                       .pw = c->pw,
                       .dh = c->dh,
                       .dw = c->dw,
                       .G = c->G};
    g.Ho = (g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1) / g.sh + 1;
    g.Wo = (g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1) / g.sw + 1;
    return g;
}

enum { REF_FWD, REF_DATA, REF_FILTER };

/* The direct convolution: every tap (x index, w index, y index) once. Writes op's result
 * and the sum of its terms' magnitudes. */
static void naive_conv(const mlc_conv_geom *g, long B, int op, const float *x, const float *w, const float *dy,
                       double *out, double *mag, long n_out) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    memset(out, 0, sizeof(double) * (size_t)n_out), memset(mag, 0, sizeof(double) * (size_t)n_out);
    for (long n = 0; n < B; n++)
        for (int o = 0; o < g->O; o++)
            for (int oh = 0; oh < g->Ho; oh++)
                for (int ow = 0; ow < g->Wo; ow++)
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                const int ih = oh * g->sh - g->ph + kh * g->dh, iw = ow * g->sw - g->pw + kw * g->dw;
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                                const long xi = ((n * g->C + (long)o / Og * Cg + c) * g->H + ih) * g->W + iw;
                                const long wi = (((long)o * Cg + c) * g->KH + kh) * g->KW + kw;
                                const long yi = ((n * g->O + o) * g->Ho + oh) * g->Wo + ow;
                                double p;
                                long at;
                                if (op == REF_FWD) p = (double)x[xi] * w[wi], at = yi;
                                else if (op == REF_DATA) p = (double)dy[yi] * w[wi], at = xi;
                                else p = (double)x[xi] * dy[yi], at = wi;
                                out[at] += p, mag[at] += fabs(p);
                            }
}

/* The op's workspace for the current team: mlc_conv_plan_for, a slot per thread, the
 * shared part */
static float *conv_ws(const mlc_conv_geom *g, int op, long B, mlc_conv_plan *pl) {
    *pl = mlc_conv_plan_for(g, op, B);
    pl->slots = mlc_scratch_slots();
    return alloc_floats(pl->slots * pl->slot + mlc_conv_shared_floats(g, pl, op));
}

/* Runs op with 1 and 2 threads, whole and (fwd, data) sample by sample, against the
 * reference, then the first run once more; all results must be the same bits. */
static void check_conv_op(const ConvCase *cc, long B, int op) {
    const mlc_conv_geom g = geom_of(cc);
    const long nx = B * g.C * g.H * g.W, ny = B * g.O * g.Ho * g.Wo, nw = (long)g.O * (g.C / g.G) * g.KH * g.KW;
    float *x = alloc_floats(nx), *w = alloc_floats(nw), *dy = alloc_floats(ny);
    fill(x, nx, 11), fill(w, nw, 12), fill(dy, ny, 13);
    const long n_out = op == MLC_CONV_FWD ? ny : op == MLC_CONV_BWD_DATA ? nx : nw;
    double *ref = malloc(sizeof(double) * (size_t)n_out), *mag = malloc(sizeof(double) * (size_t)n_out);
    naive_conv(&g, B,
               op == MLC_CONV_FWD        ? REF_FWD
               : op == MLC_CONV_BWD_DATA ? REF_DATA
                                         : REF_FILTER,
               x, w, dy, ref, mag, n_out);
    float *first = alloc_floats(n_out), *out = alloc_floats(n_out);
    char what[160];
    snprintf(what, sizeof what, "conv op %d, C%d %dx%d O%d k%dx%d s%d,%d p%d,%d d%d,%d G%d, B %ld", op, g.C, g.H, g.W,
             g.O, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.G, B);
    for (int run = 0; run < 5; run++) {
        const int threads = run % 2 ? 2 : 1, by_sample = run == 2 || run == 3; /* run 4: run 0 again */
        if (by_sample && op == MLC_CONV_BWD_FILTER) continue;
        omp_set_num_threads(threads);
        mlc_conv_plan pl;
        float *ws = conv_ws(&g, op, B, &pl);
        memset(out, 0xff, sizeof(float) * (size_t)n_out); /* NaNs: every element must be written */
        if (op == MLC_CONV_FWD && !by_sample) mlc_conv2d_fwd(&g, &pl, B, x, w, out, ws);
        else if (op == MLC_CONV_FWD) {
            mlc_conv2d_fwd_prepare(&g, &pl, w, ws);
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(&pl, B))
            for (long n = 0; n < B; n++) mlc_conv2d_fwd_sample(&g, &pl, B, n, x, out, ws);
        } else if (op == MLC_CONV_BWD_DATA && !by_sample) mlc_conv2d_bwd_data(&g, &pl, B, dy, w, out, ws);
        else if (op == MLC_CONV_BWD_DATA) {
            mlc_conv2d_bwd_data_prepare(&g, &pl, w, ws);
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(&pl, B))
            for (long n = 0; n < B; n++) mlc_conv2d_bwd_data_sample(&g, &pl, B, n, dy, out, ws);
        } else mlc_conv2d_bwd_filter(&g, &pl, B, x, dy, out, ws);
        expect_near(out, ref, mag, n_out, what);
        if (run == 0) memcpy(first, out, sizeof(float) * (size_t)n_out);
        else
            cr_assert_eq(memcmp(first, out, sizeof(float) * (size_t)n_out), 0, "%s: run %d differs from run 0", what,
                         run);
        free(ws);
    }
    free(x), free(w), free(dy), free(ref), free(mag), free(first), free(out);
}

static void check_conv_cases(int op) {
    mlc_kernels_init();
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        check_conv_op(&conv_cases[i], 3, op);
        if (op == MLC_CONV_BWD_FILTER) check_conv_op(&conv_cases[i], 19, op); /* more samples than chunks */
    }
}

Test(kernels, conv_forward_matches_direct_convolution) { check_conv_cases(MLC_CONV_FWD); }
Test(kernels, conv_input_gradient_matches_direct_convolution) { check_conv_cases(MLC_CONV_BWD_DATA); }
Test(kernels, conv_weight_gradient_matches_direct_convolution) { check_conv_cases(MLC_CONV_BWD_FILTER); }

/* The library reports the vector width it was built with (the per-width builds of this
 * test know which they link) and an instruction set */
Test(kernels, vector_width_is_the_one_built) {
    const int vw = mlc_kernels_vec_width();
#ifdef MLC_TEST_VW
    cr_assert_eq(vw, MLC_TEST_VW, "the library has %d-float vectors, built for %d", vw, MLC_TEST_VW);
#else
    cr_assert(vw == 4 || vw == 8 || vw == 16, "vector width %d", vw);
#endif
    cr_assert_gt(strlen(mlc_kernels_isa()), 0);
}

/* The plan the compiler sizes workspaces with covers what the kernels need at every
 * width a library may be built with. */
Test(kernels, conv_plan_slots_hold_what_the_kernels_use) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        const mlc_conv_geom g = geom_of(&conv_cases[i]);
        for (int op = 0; op < 3; op++) {
            const mlc_conv_plan pl = mlc_conv_plan_for(&g, op, 64);
            cr_assert_eq(pl.slot % 16, 0);
            for (int vw = 4; vw <= 16; vw *= 2) {
                cr_assert_geq(pl.slot, mlc_conv_slot_floats_vw(&g, &pl, op, vw));
                cr_assert_geq(mlc_conv_shared_floats(&g, &pl, op), mlc_conv_shared_floats_vw(&g, &pl, op, vw));
            }
            cr_assert_eq(pl.red, MLC_CONV_RED_CHUNKS);
        }
    }
}

/* A phase's rank among the taps' distinct phases k*d % s (mlc_phase_rank, one pass over
 * a period of taps) is what comparing every pair of taps gives, for every kernel size,
 * dilation and stride up to 12; and a kernel 65535 wide is ranked at once. */
Test(kernels, phase_rank_counts_distinct_tap_phases) {
    for (int n = 1; n <= 12; n++)
        for (int d = 1; d <= 12; d++)
            for (int s = 1; s <= 12; s++)
                for (int p = 0; p <= s; p++) {
                    int want = 0;
                    for (int k = 0; k < n; k++) {
                        int first = 1;
                        for (int j = 0; j < k; j++) first &= j * d % s != k * d % s;
                        want += first && k * d % s < p;
                    }
                    cr_assert_eq(mlc_phase_rank(n, d, s, p), want, "n %d, d %d, s %d, p %d", n, d, s, p);
                }
    cr_assert_eq(mlc_phase_rank(65535, 1, 1, 1), 1);
    cr_assert_eq(mlc_phase_rank(65535, 3, 65535, 65535), 21845);
}

/* ---- pooling ---- */

static void naive_pool(const mlc_pool_geom *g, long planes, int max, const float *x, const float *dy, float *y,
                       float *dx) {
    memset(dx, 0, sizeof(float) * (size_t)(planes * g->H * g->W));
    for (long p = 0; p < planes; p++)
        for (int oh = 0; oh < g->Ho; oh++)
            for (int ow = 0; ow < g->Wo; ow++) {
                long best = -1;
                double s = 0;
                for (int kh = 0; kh < g->KH; kh++)
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int ih = oh * g->sh - g->ph + kh, iw = ow * g->sw - g->pw + kw;
                        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                        const long i = (p * g->H + ih) * g->W + iw;
                        s += x[i];
                        if (best < 0 || x[i] > x[best]) best = i;
                    }
                const long o = (p * g->Ho + oh) * g->Wo + ow;
                y[o] = max ? x[best] : (float)(s / (g->KH * g->KW));
                if (max) dx[best] += dy[o];
                else
                    for (int kh = 0; kh < g->KH; kh++)
                        for (int kw = 0; kw < g->KW; kw++) {
                            const int ih = oh * g->sh - g->ph + kh, iw = ow * g->sw - g->pw + kw;
                            if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W)
                                dx[(p * g->H + ih) * g->W + iw] += dy[o] * (1.0f / (float)(g->KH * g->KW));
                        }
            }
}

Test(kernels, pooling_matches_naive_windows) {
    static const mlc_pool_geom cases[] = {
        {.H = 28, .W = 28, .KH = 2, .KW = 2, .sh = 2, .sw = 2}, /* the 2x2 fast path: 4 windows a step, */
        {.H = 14, .W = 14, .KH = 2, .KW = 2, .sh = 2, .sw = 2}, /* then the last 2 or 3 through a copy; */
        {.H = 4, .W = 8, .KH = 2, .KW = 2, .sh = 2, .sw = 2},   /* rows of whole steps, */
        {.H = 6, .W = 2, .KH = 2, .KW = 2, .sh = 2, .sw = 2},   /* of one window, */
        {.H = 4, .W = 10, .KH = 2, .KW = 2, .sh = 2, .sw = 2},  /* a step and one window */
        {.H = 7, .W = 5, .KH = 3, .KW = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1},
        {.H = 5, .W = 6, .KH = 3, .KW = 2, .sh = 1, .sw = 1},
        {.H = 7, .W = 7, .KH = 2, .KW = 2, .sh = 2, .sw = 2}, /* odd: the general path */
        {.H = 9, .W = 9, .KH = 3, .KW = 3, .sh = 3, .sw = 3, .ph = 1, .pw = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mlc_pool_geom g = cases[i];
        g.Ho = (g.H + 2 * g.ph - g.KH) / g.sh + 1, g.Wo = (g.W + 2 * g.pw - g.KW) / g.sw + 1;
        const long planes = 200, nx = planes * g.H * g.W, ny = planes * g.Ho * g.Wo; /* large: the team runs it */
        float *x = alloc_floats(nx), *dy = alloc_floats(ny), *y = alloc_floats(ny), *dx = alloc_floats(nx);
        float *ry = alloc_floats(ny), *rdx = alloc_floats(nx);
        fill(x, nx, 21), fill(dy, ny, 22);
        for (long j = 0; j < nx; j += 3) x[j] = x[j + 1 < nx ? j + 1 : j]; /* ties: the first maximum wins */
        for (int max = 0; max < 2; max++) {
            naive_pool(&g, planes, max, x, dy, ry, rdx);
            for (int threads = 1; threads <= 2; threads++) {
                omp_set_num_threads(threads);
                memset(y, 0xff, sizeof(float) * (size_t)ny), memset(dx, 0xff, sizeof(float) * (size_t)nx);
                if (max) mlc_maxpool2d_fwd(&g, planes, x, y), mlc_maxpool2d_bwd(&g, planes, dy, x, dx);
                else mlc_avgpool2d_fwd(&g, planes, x, y), mlc_avgpool2d_bwd(&g, planes, dy, dx);
                for (long j = 0; j < ny; j++)
                    cr_assert(max ? y[j] == ry[j] : fabsf(y[j] - ry[j]) <= 1e-6f,
                              "case %zu %s fwd: y[%ld] = %g, not %g", i, max ? "max" : "avg", j, (double)y[j],
                              (double)ry[j]);
                for (long j = 0; j < nx; j++)
                    cr_assert(max ? dx[j] == rdx[j] : fabsf(dx[j] - rdx[j]) <= 1e-6f,
                              "case %zu %s bwd: dx[%ld] = %g, not %g", i, max ? "max" : "avg", j, (double)dx[j],
                              (double)rdx[j]);
                const int tiled =
                    g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && !g.ph && !g.pw && g.H % 2 == 0 && g.W % 2 == 0;
                if (max && tiled) { /* in place, as the memory plan puts dx in x's buffer (fuse.c, pool_bwd_2x2) */
                    memcpy(dx, x, sizeof(float) * (size_t)nx);
                    mlc_maxpool2d_bwd(&g, planes, dy, dx, dx);
                    cr_assert_eq(memcmp(dx, rdx, sizeof(float) * (size_t)nx), 0, "case %zu: in place, dx differs", i);
                }
            }
        }
        free(x), free(dy), free(y), free(dx), free(ry), free(rdx);
    }
}

/* ---- batch norm ---- */

Test(kernels, batch_norm_sums_match_double_reference) {
    static const long sizes[][3] = {{3, 4, 1}, {3, 4, 7}, {2, 3, 33}, {5, 2, 40}, {64, 16, 100}}; /* B, C, S */
    const float eps = 1e-3f;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const long B = sizes[i][0], C = sizes[i][1], S = sizes[i][2], n = B * C * S;
        float *x = alloc_floats(n), *dy = alloc_floats(n), *dx = alloc_floats(n), *dx2 = alloc_floats(n);
        float *gamma = alloc_floats(C);
        float st[128], pg[128], st1[128], pg1[128]; /* [2][C]: mean and variance; dbeta and dgamma */
        fill(x, n, 31), fill(dy, n, 32), fill(gamma, C, 33);
        for (long j = 0; j < n; j++) x[j] = 3.0f + 0.5f * x[j]; /* a mean far from 0 */
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            mlc_bn_stats(B, C, S, x, st);
            mlc_bn_param_grads(B, C, S, dy, x, st, eps, pg);
            mlc_bn_bwd(B, C, S, dy, x, st, pg, gamma, eps, dx);
            /* the fused call (the C target's, without --sync-bn): the same bits */
            float pg2[128];
            mlc_bn_backward(B, C, S, dy, x, st, gamma, eps, pg2, dx2);
            cr_assert_eq(memcmp(pg, pg2, sizeof(float) * (size_t)(2 * C)), 0, "mlc_bn_backward's sums differ");
            cr_assert_eq(memcmp(dx, dx2, sizeof(float) * (size_t)n), 0, "mlc_bn_backward's dx differs");
            if (threads == 1) memcpy(st1, st, sizeof st), memcpy(pg1, pg, sizeof pg);
            else {
                cr_assert_eq(memcmp(st1, st, sizeof(float) * (size_t)(2 * C)), 0, "bn_stats depends on the team size");
                cr_assert_eq(memcmp(pg1, pg, sizeof(float) * (size_t)(2 * C)), 0, "bn_param_grads depends on the team");
            }
            for (long c = 0; c < C; c++) {
                double s = 0, v = 0, sd = 0, sdx = 0;
                for (long b = 0; b < B; b++)
                    for (long k = 0; k < S; k++) s += x[(b * C + c) * S + k];
                const double mean = s / (double)(B * S);
                for (long b = 0; b < B; b++)
                    for (long k = 0; k < S; k++) {
                        const double d = x[(b * C + c) * S + k] - mean;
                        v += d * d, sd += dy[(b * C + c) * S + k], sdx += dy[(b * C + c) * S + k] * d;
                    }
                v /= (double)(B * S);
                const double rstd = 1.0 / sqrt(v + eps), N = (double)(B * S);
                cr_assert(fabs(st[c] - mean) <= 1e-6 * fabs(mean) + 1e-7, "mean[%ld] = %.9g, not %.9g", c,
                          (double)st[c], mean);
                cr_assert(fabs(st[C + c] - v) <= 1e-5 * v + 1e-7, "var[%ld] = %.9g, not %.9g", c, (double)st[C + c], v);
                cr_assert(fabs(pg[c] - sd) <= 1e-5 * N, "dbeta[%ld] = %.9g, not %.9g", c, (double)pg[c], sd);
                cr_assert(fabs(pg[C + c] - sdx * rstd) <= 1e-5 * N, "dgamma[%ld] = %.9g, not %.9g", c,
                          (double)pg[C + c], sdx * rstd);
                for (long b = 0; b < B; b++)
                    for (long k = 0; k < S; k++) {
                        const long j = (b * C + c) * S + k;
                        const double xhat = (x[j] - mean) * rstd;
                        const double want = gamma[c] * rstd / N * (N * dy[j] - sd - xhat * sdx * rstd);
                        cr_assert(fabs(dx[j] - want) <= 1e-5 * (fabs(want) + fabs(gamma[c]) * rstd * 4),
                                  "dx[%ld] = %.9g, not %.9g", j, (double)dx[j], want);
                    }
            }
        }
        free(x), free(dy), free(dx), free(dx2), free(gamma);
    }
}

/* ---- layer and RMS norm over rows (rownorm.c) ---- */

/* Each kernel against the definitions in double, for both norms; and the same bits on 1
 * and 2 threads (the largest case is past the OpenMP threshold). */
Test(kernels, row_norms_match_double_reference) {
    static const long sizes[][2] = {{1, 1}, {3, 5}, {7, 16}, {33, 37}, {600, 128}}; /* rows, D */
    const float eps = 1e-3f;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const long rows = sizes[i][0], D = sizes[i][1], n = rows * D;
        float *x = alloc_floats(n), *dy = alloc_floats(n), *w = alloc_floats(D), *b = alloc_floats(D);
        float *y = alloc_floats(n), *dx = alloc_floats(n), *st = alloc_floats(2 * rows), *pg = alloc_floats(2 * D);
        float *y1 = alloc_floats(n), *dx1 = alloc_floats(n), *st1 = alloc_floats(2 * rows), *pg1 = alloc_floats(2 * D);
        fill(x, n, 41), fill(dy, n, 42), fill(w, D, 43), fill(b, D, 44);
        for (long j = 0; j < n; j++) x[j] = 2.0f + 0.5f * x[j]; /* a mean far from 0 */
        for (int centred = 0; centred <= 1; centred++) {
            for (int threads = 1; threads <= 2; threads++) {
                omp_set_num_threads(threads);
                mlc_row_norm(rows, D, centred, eps, x, w, centred ? b : NULL, y);
                mlc_row_norm_stats(rows, D, centred, eps, x, st);
                mlc_row_norm_bwd(rows, D, centred, dy, x, w, st, dx);
                mlc_row_norm_param_grads(rows, D, centred, dy, x, st, pg);
                if (threads == 1) {
                    memcpy(y1, y, sizeof(float) * (size_t)n), memcpy(dx1, dx, sizeof(float) * (size_t)n);
                    memcpy(st1, st, sizeof(float) * (size_t)(2 * rows)),
                        memcpy(pg1, pg, sizeof(float) * (size_t)(2 * D));
                    continue;
                }
                cr_assert_eq(memcmp(y1, y, sizeof(float) * (size_t)n), 0, "row_norm depends on the team size");
                cr_assert_eq(memcmp(st1, st, sizeof(float) * (size_t)(2 * rows)), 0,
                             "row_norm_stats depends on the team");
                cr_assert_eq(memcmp(dx1, dx, sizeof(float) * (size_t)n), 0, "row_norm_bwd depends on the team size");
                cr_assert_eq(memcmp(pg1, pg, sizeof(float) * (size_t)((1 + centred) * D)), 0,
                             "row_norm_param_grads depends on the team size");
            }
            double *sb = calloc((size_t)D, sizeof(double)), *sw = calloc((size_t)D, sizeof(double));
            double *mb = calloc((size_t)D, sizeof(double)), *mw = calloc((size_t)D, sizeof(double));
            for (long r = 0; r < rows; r++) {
                const float *xr = x + r * D, *d = dy + r * D;
                double m = 0, v = 0, sg = 0, sgx = 0;
                if (centred)
                    for (long j = 0; j < D; j++) m += xr[j] / (double)D;
                for (long j = 0; j < D; j++) v += (xr[j] - m) * (xr[j] - m) / (double)D;
                const double rs = 1 / sqrt(v + eps);
                cr_assert(fabs(st[2 * r] - m) <= 1e-6 * fabs(m) + 1e-7, "%ld x %ld: mean[%ld] = %.9g, not %.9g", rows,
                          D, r, (double)st[2 * r], m);
                cr_assert(fabs(st[2 * r + 1] - rs) <= 1e-5 * rs, "rstd[%ld] = %.9g, not %.9g", r, (double)st[2 * r + 1],
                          rs);
                for (long j = 0; j < D; j++) {
                    const double xh = (xr[j] - m) * rs, want = xh * w[j] + (centred ? b[j] : 0);
                    cr_assert(fabs(y[r * D + j] - want) <= 1e-5 * (fabs(xh * w[j]) + 1), "y[%ld][%ld] = %.9g, not %.9g",
                              r, j, (double)y[r * D + j], want);
                    sg += d[j] * w[j], sgx += d[j] * w[j] * xh;
                    sb[j] += d[j], sw[j] += d[j] * xh, mb[j] += fabs(d[j]), mw[j] += fabs(d[j] * xh);
                }
                for (long j = 0; j < D; j++) {
                    const double xh = (xr[j] - m) * rs;
                    const double want = rs * (d[j] * w[j] - (centred ? sg / (double)D : 0) - xh * sgx / (double)D);
                    cr_assert(fabs(dx[r * D + j] - want) <= 1e-5 * rs * (fabs(d[j] * w[j]) + 2),
                              "%s dx[%ld][%ld] = %.9g, not %.9g", centred ? "layer" : "rms", r, j,
                              (double)dx[r * D + j], want);
                }
            }
            for (long j = 0; j < D; j++) {
                if (centred)
                    cr_assert(fabs(pg[j] - sb[j]) <= 1e-5 * (mb[j] + 1), "dbias[%ld] = %.9g, not %.9g", j,
                              (double)pg[j], sb[j]);
                const float got = pg[(centred ? D : 0) + j];
                cr_assert(fabs(got - sw[j]) <= 1e-5 * (mw[j] + 1), "%s dweight[%ld] = %.9g, not %.9g",
                          centred ? "layer" : "rms", j, (double)got, sw[j]);
            }
            free(sb), free(sw), free(mb), free(mw);
        }
        free(x), free(dy), free(w), free(b), free(y), free(dx), free(st), free(pg), free(y1), free(dx1), free(st1),
            free(pg1);
    }
}

/* ---- embedding (embedding.c) ---- */

/* The lookup copies rows exactly; the gradient adds each id's row of dy into its row in
 * the order of the ids (so a float sum in that order is the exact expectation); ids out
 * of range go to the first or last row; 1 and 2 threads give the same bits. */
Test(kernels, embedding_gathers_and_scatters_rows_in_order) {
    static const long sizes[][3] = {{5, 7, 3}, {3000, 7, 40}, {1, 1, 1}}; /* n, V, D */
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        const long n = sizes[c][0], V = sizes[c][1], D = sizes[c][2];
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
        float *t = alloc_floats(V * D), *dy = alloc_floats(n * D), *y = alloc_floats(n * D), *g = alloc_floats(V * D);
        float *g1 = alloc_floats(V * D), *want = alloc_floats(V * D);
        fill(t, V * D, 51), fill(dy, n * D, 52);
        for (long i = 0; i < n; i++) ids[i] = (int32_t)((i * 5 + 2) % (V + 4)) - 2; /* -2 .. V + 1 */
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            mlc_gather_rows(n, V, D, ids, t, y);
            mlc_scatter_rows(n, V, D, ids, dy, g);
            if (threads == 1) memcpy(g1, g, sizeof(float) * (size_t)(V * D));
            else
                cr_assert_eq(memcmp(g1, g, sizeof(float) * (size_t)(V * D)), 0,
                             "scatter_rows depends on the team size");
        }
        memset(want, 0, sizeof(float) * (size_t)(V * D));
        for (long i = 0; i < n; i++) {
            const long r = ids[i] < 0 ? 0 : ids[i] >= V ? V - 1 : ids[i];
            cr_assert_eq(memcmp(y + i * D, t + r * D, sizeof(float) * (size_t)D), 0,
                         "gather_rows: row %ld is not row %ld", i, r);
            for (long j = 0; j < D; j++) want[r * D + j] += dy[i * D + j];
        }
        cr_assert_eq(memcmp(want, g, sizeof(float) * (size_t)(V * D)), 0,
                     "%ld ids: scatter_rows is not the ordered sum", n);
        free(ids), free(t), free(dy), free(y), free(g), free(g1), free(want);
    }
}

/* ---- --check-finite ---- */

Test(kernels, check_finite_finds_the_first_nan_or_inf) {
    float p[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(mlc_check_finite(p, 5, "%1 = relu", "t.mdl:1:1"), 0);
    p[3] = INFINITY;
    cr_assert_eq(mlc_check_finite(p, 5, "%1 = relu", "t.mdl:1:1"), 1);
    cr_assert_eq(mlc_nonfinite(NAN, 0, "%1 = relu", "t.mdl:1:1"), 1);
    cr_assert_eq(mlc_nonfinite(1.0f, 0, "%1 = relu", "t.mdl:1:1"), 0);
}

/* ---- optimizer updates: the element arithmetic of ops_optim.c, bit for bit (the library
 * and this reference both compile without FP contraction, under -std=c11), on 1 and 2
 * threads and across the OpenMP threshold ---- */

static void fill_range(float *v, long n, unsigned seed, float lo, float hi) {
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = lo + (hi - lo) * (float)((seed >> 8) & 0xffff) / 65536.0f;
    }
}

/* The updates as the generated update calls them: inside a team of `threads` (each thread
 * its share, no barrier until the team's end), or outside any (threads 0) */
static void adam_in_team(int threads, long n, float *p, float *m1, float *m2, const float *g, const mlc_adam_step *s) {
    if (!threads) mlc_adam_update(n, p, m1, m2, g, s);
    else {
#pragma omp parallel num_threads(threads)
        mlc_adam_update(n, p, m1, m2, g, s);
    }
}
static void sgd_in_team(int threads, long n, float *p, float *v, const float *g, int nesterov) {
    if (!threads) mlc_sgd_update(n, p, v, g, 0.05f, 0.9f, 0.001f, nesterov);
    else {
#pragma omp parallel num_threads(threads)
        mlc_sgd_update(n, p, v, g, 0.05f, 0.9f, 0.001f, nesterov);
    }
}
static void sgd_plain_in_team(int threads, long n, float *p, const float *g) {
    if (!threads) mlc_sgd_plain_update(n, p, g, 0.05f, 0.001f);
    else {
#pragma omp parallel num_threads(threads)
        mlc_sgd_plain_update(n, p, g, 0.05f, 0.001f);
    }
}

Test(kernels, optimizer_updates_match_their_definition) {
    static const long sizes[] = {1, 7, 40000};
    for (int k = 0; k < 3; k++)
        for (int threads = 0; threads <= 3; threads++)
            for (int variant = 0; variant < 2; variant++) {
                long n = sizes[k];
                float *p = malloc(sizeof(float) * (size_t)n * 8), *m1 = p + n, *m2 = p + 2 * n, *g = p + 3 * n;
                float *rp = p + 4 * n, *rm1 = p + 5 * n, *rm2 = p + 6 * n;
                cr_assert_not_null(p);
                fill_range(p, n, 1, -1, 1), fill_range(m1, n, 2, -0.1f, 0.1f), fill_range(m2, n, 3, 0, 0.01f),
                    fill_range(g, n, 4, -1, 1);
                memcpy(rp, p, sizeof(float) * (size_t)n), memcpy(rm1, m1, sizeof(float) * (size_t)n);
                memcpy(rm2, m2, sizeof(float) * (size_t)n);
                /* w2 is 1 - 0.99999 in double, rounded: 1.0f - b2 would be 1.4e-3 larger */
                const mlc_adam_step s = {.step = 0.0123f,
                                         .inv_bc2 = 1.7f,
                                         .b1 = 0.9f,
                                         .b2 = 0.99999f,
                                         .w1 = (float)(1.0 - 0.9),
                                         .w2 = (float)(1.0 - 0.99999),
                                         .eps = 1e-8f,
                                         .wd = 0.01f,
                                         .decay = 0.9995f,
                                         .decoupled = variant};
                adam_in_team(threads, n, p, m1, m2, g, &s);
                for (long i = 0; i < n; i++) {
                    const float gi = variant ? g[i] : g[i] + s.wd * rp[i];
                    rm1[i] = s.b1 * rm1[i] + s.w1 * gi;
                    rm2[i] = s.b2 * rm2[i] + s.w2 * gi * gi;
                    const float d = s.step * rm1[i] / (sqrtf(rm2[i] * s.inv_bc2) + s.eps);
                    rp[i] = variant ? rp[i] * s.decay - d : rp[i] - d;
                }
                cr_expect(!memcmp(p, rp, sizeof(float) * (size_t)n) && !memcmp(m1, rm1, sizeof(float) * (size_t)n) &&
                              !memcmp(m2, rm2, sizeof(float) * (size_t)n),
                          "adam%s, n %ld, %d threads", variant ? "w" : "", n, threads);
                /* sgd: m1 as the velocity; nesterov on the second variant */
                fill_range(p, n, 5, -1, 1), fill_range(m1, n, 6, -0.1f, 0.1f);
                memcpy(rp, p, sizeof(float) * (size_t)n), memcpy(rm1, m1, sizeof(float) * (size_t)n);
                sgd_in_team(threads, n, p, m1, g, variant);
                for (long i = 0; i < n; i++) {
                    const float gi = g[i] + 0.001f * rp[i];
                    rm1[i] = 0.9f * rm1[i] + gi;
                    rp[i] -= 0.05f * (variant ? gi + 0.9f * rm1[i] : rm1[i]);
                }
                cr_expect(!memcmp(p, rp, sizeof(float) * (size_t)n) && !memcmp(m1, rm1, sizeof(float) * (size_t)n),
                          "sgd%s, n %ld, %d threads", variant ? " (nesterov)" : "", n, threads);
                /* sgd without momentum: what sgd_update with momentum 0 computed, without v */
                fill_range(p, n, 7, -1, 1), fill_range(m1, n, 8, -0.1f, 0.1f);
                memcpy(rp, p, sizeof(float) * (size_t)n), memcpy(rm1, m1, sizeof(float) * (size_t)n);
                sgd_plain_in_team(threads, n, p, g);
                mlc_sgd_update(n, rp, rm1, g, 0.05f, 0.0f, 0.001f, 0);
                cr_expect(!memcmp(p, rp, sizeof(float) * (size_t)n), "sgd without momentum, n %ld, %d threads", n,
                          threads);
                free(p);
            }
}
