/* test_winograd.c - the Winograd convolutions (runtime/kernels/c/winograd_*.c), F(2x2, 3x3)
 * and F(4x4, 3x3) (all three ops, the weight gradient in sample groups), against a
 * double-precision direct convolution and against the direct float kernels, on random 3x3
 * stride-1 layers: odd and even sizes, padding 0, 1, 2, channel counts off the GEMMs'
 * blocks, batches with more samples than the weight gradient's chunks.
 *
 * The error bounds: each element within 2e-5 (F(4x4, 3x3): 1e-4) of the sum of its
 * terms' magnitudes (the direct kernel's test allows 1e-5: the transforms add a few
 * roundings per term, F(4x4, 3x3)'s with factors up to 8 and thirds), and over a whole
 * output, ||wino - ref|| / ||ref|| below 1e-5 and at most 8 (16) times the direct
 * kernel's. A tile transform off by one term misses by a whole term. The results are the
 * same bits with 1, 2 and 3 threads, whole or sample by sample, and F(4x4, 3x3)'s the
 * same in both of its layouts (a sample's rows of tiles or 8 samples in the lanes); the
 * weight gradient is checked a sample at a time and in sample groups. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_kernels.h"

typedef struct Layer {
    int C, H, W, O, p;
    long B;
} Layer;

// clang-format off
static const Layer layers[] = {
    {3, 9, 9, 5, 1, 3},      /* odd sizes: a half tile at the edge */
    {16, 8, 8, 16, 1, 2},    /* resnet20_cifar's last stage, smaller */
    {5, 12, 11, 7, 0, 3},    /* no padding, odd output width */
    {4, 7, 10, 9, 2, 2},     /* padding 2: the input gradient's padding 0 */
    {17, 6, 6, 33, 1, 19},   /* more samples than chunks; GEMM edges */
    {2, 3, 3, 3, 1, 4},      /* a single tile */
    {3, 37, 35, 4, 1, 2},    /* rows of more tiles than a vector holds, the last one partial */
    {2, 66, 70, 3, 1, 1},    /* a plane F(4x4, 3x3) pads in two parts */
    {1, 3, 4200, 2, 1, 1},   /* a row wider than its padding buffer */
    {3, 10, 9, 4, 3, 2},     /* padding 3: the input gradient's padding -1 */
    {8, 7, 7, 12, 1, 11},    /* F(4x4, 3x3)'s sample groups: one whole, one of 3 */
    {6, 14, 13, 5, 1, 9},    /* groups of 8 and 1; a partial tile column */
    {3, 5, 21, 4, 0, 8},     /* no padding, a row of 8 to 16 floats to gather */
};
// clang-format on

static float *floats(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64 + 64));
    cr_assert_not_null(p);
    return p;
}

static void fill(float *p, long n, unsigned s) {
    for (long i = 0; i < n; i++) s = s * 1664525u + 1013904223u, p[i] = (float)((s >> 9) & 0x7fff) / 16384.0f - 1.0f;
}

static mlc_conv_geom geom(const Layer *l) {
    return (mlc_conv_geom){.C = l->C,
                           .H = l->H,
                           .W = l->W,
                           .O = l->O,
                           .KH = 3,
                           .KW = 3,
                           .sh = 1,
                           .sw = 1,
                           .ph = l->p,
                           .pw = l->p,
                           .dh = 1,
                           .dw = 1,
                           .G = 1,
                           .Ho = l->H + 2 * l->p - 2,
                           .Wo = l->W + 2 * l->p - 2};
}

/* op's exact result in double and the sum of its terms' magnitudes */
static void reference(const mlc_conv_geom *g, long B, int op, const float *x, const float *w, const float *dy,
                      double *ref, double *mag, long n) {
    memset(ref, 0, sizeof(double) * (size_t)n), memset(mag, 0, sizeof(double) * (size_t)n);
    for (long b = 0; b < B; b++)
        for (int o = 0; o < g->O; o++)
            for (int c = 0; c < g->C; c++)
                for (int i = 0; i < g->Ho; i++)
                    for (int j = 0; j < g->Wo; j++)
                        for (int k = 0; k < 9; k++) {
                            const int h = i - g->ph + k / 3, v = j - g->pw + k % 3;
                            if (h < 0 || h >= g->H || v < 0 || v >= g->W) continue;
                            const long xi = ((b * g->C + c) * g->H + h) * g->W + v, wi = ((long)o * g->C + c) * 9 + k;
                            const long yi = ((b * g->O + o) * g->Ho + i) * g->Wo + j;
                            const long at = op == MLC_CONV_FWD ? yi : op == MLC_CONV_BWD_DATA ? xi : wi;
                            const double t = op == MLC_CONV_FWD        ? (double)x[xi] * w[wi]
                                             : op == MLC_CONV_BWD_DATA ? (double)dy[yi] * w[wi]
                                                                       : (double)x[xi] * dy[yi];
                            ref[at] += t, mag[at] += fabs(t);
                        }
}

/* The kernels of a Winograd algorithm, by op */
typedef struct WinoCalls {
    void (*fwd)(const mlc_conv_geom *, const mlc_conv_plan *, long, const float *, const float *, float *, float *);
    void (*fwd_prepare)(const mlc_conv_geom *, const mlc_conv_plan *, const float *, float *);
    void (*fwd_sample)(const mlc_conv_geom *, const mlc_conv_plan *, long, long, const float *, float *, float *);
    void (*data)(const mlc_conv_geom *, const mlc_conv_plan *, long, const float *, const float *, float *, float *);
    void (*data_prepare)(const mlc_conv_geom *, const mlc_conv_plan *, const float *, float *);
    void (*data_sample)(const mlc_conv_geom *, const mlc_conv_plan *, long, long, const float *, float *, float *);
} WinoCalls;

static const WinoCalls wino2 = {
    mlc_wino_conv2d_fwd,      mlc_wino_conv2d_fwd_prepare,      mlc_wino_conv2d_fwd_sample,
    mlc_wino_conv2d_bwd_data, mlc_wino_conv2d_bwd_data_prepare, mlc_wino_conv2d_bwd_data_sample};
static const WinoCalls wino4 = {
    mlc_wino4_conv2d_fwd,      mlc_wino4_conv2d_fwd_prepare,      mlc_wino4_conv2d_fwd_sample,
    mlc_wino4_conv2d_bwd_data, mlc_wino4_conv2d_bwd_data_prepare, mlc_wino4_conv2d_bwd_data_sample};

/* op by algorithm algo (MLC_CONV_DIRECT, _WINOGRAD, _WINOGRAD4), whole (by_sample 0) or
 * piece by piece, in the layout mlc_wino_plan_for chooses (grouped < 0) or in sample
 * groups or not (1, 0), into out */
static void run(const mlc_conv_geom *g, long B, int op, int algo, int by_sample, int grouped, const float *x,
                const float *w, const float *dy, float *out) {
    mlc_conv_plan pl = !algo         ? mlc_conv_plan_for(g, op, B)
                       : grouped < 0 ? mlc_wino_plan_for(g, op, B, algo)
                                     : mlc_wino_plan_as(g, op, B, algo, grouped);
    pl.slots = mlc_scratch_slots();
    if (algo && grouped < 0) pl.spt = mlc_wino_spt(g, op, algo, B, pl.slots);
    else if (grouped > 0) pl.spt = MLC_WINO_GROUP;
    float *ws = floats(pl.slots * pl.slot +
                       (algo ? mlc_wino_shared_floats(g, &pl, op, algo) : mlc_conv_shared_floats(g, &pl, op)));
    const WinoCalls *k = algo == MLC_CONV_WINOGRAD4 ? &wino4 : &wino2;
    const long units = (B + pl.spt - 1) / pl.spt; /* the pieces of work: samples, or groups */
    if (!algo && op == MLC_CONV_FWD) mlc_conv2d_fwd(g, &pl, B, x, w, out, ws);
    else if (!algo && op == MLC_CONV_BWD_DATA) mlc_conv2d_bwd_data(g, &pl, B, dy, w, out, ws);
    else if (!algo) mlc_conv2d_bwd_filter(g, &pl, B, x, dy, out, ws);
    else if (op == MLC_CONV_FWD && by_sample) {
        k->fwd_prepare(g, &pl, w, ws);
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(&pl, units))
        for (long u = 0; u < units; u++) k->fwd_sample(g, &pl, B, u * pl.spt, x, out, ws);
    } else if (op == MLC_CONV_FWD) k->fwd(g, &pl, B, x, w, out, ws);
    else if (op == MLC_CONV_BWD_DATA && by_sample) {
        k->data_prepare(g, &pl, w, ws);
#pragma omp parallel for schedule(dynamic, 1) num_threads(mlc_conv_team(&pl, units))
        for (long u = 0; u < units; u++) k->data_sample(g, &pl, B, u * pl.spt, dy, out, ws);
    } else if (op == MLC_CONV_BWD_DATA) k->data(g, &pl, B, dy, w, out, ws);
    else if (algo == MLC_CONV_WINOGRAD4) mlc_wino4_conv2d_bwd_filter(g, &pl, B, x, dy, out, ws);
    else mlc_wino_conv2d_bwd_filter(g, &pl, B, x, dy, out, ws);
    free(ws);
}

/* ||got - ref|| / ||ref||, after checking each element against its magnitude */
static double rel_error(const float *got, const double *ref, const double *mag, long n, double per_term, double floor,
                        const char *what) {
    double e = 0, r = 0;
    for (long i = 0; i < n; i++) {
        cr_assert(fabs(got[i] - ref[i]) <= per_term * mag[i] + floor, "%s: element %ld is %.9g, expected %.9g", what, i,
                  (double)got[i], ref[i]);
        e += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
    }
    return sqrt(e / (r > 0 ? r : 1));
}

static void check_op(int op, int algo) {
    const double per_term = algo == MLC_CONV_WINOGRAD4 ? 1e-4 : 2e-5, times = algo == MLC_CONV_WINOGRAD4 ? 16 : 8;
    mlc_kernels_init();
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const Layer *l = &layers[li];
        const mlc_conv_geom g = geom(l);
        cr_assert(mlc_wino_applies(&g));
        const long nx = l->B * g.C * g.H * g.W, ny = l->B * g.O * g.Ho * g.Wo, nw = (long)g.O * g.C * 9;
        const long n = op == MLC_CONV_FWD ? ny : op == MLC_CONV_BWD_DATA ? nx : nw;
        float *x = floats(nx), *w = floats(nw), *dy = floats(ny), *direct = floats(n), *first = floats(n),
              *out = floats(n);
        double *ref = malloc(sizeof(double) * (size_t)n), *mag = malloc(sizeof(double) * (size_t)n);
        fill(x, nx, 3 + (unsigned)li), fill(w, nw, 5 + (unsigned)li), fill(dy, ny, 7 + (unsigned)li);
        reference(&g, l->B, op, x, w, dy, ref, mag, n);
        char what[128];
        snprintf(what, sizeof what, "algo %d op %d, C%d %dx%d O%d pad %d, B %ld", algo, op, g.C, g.H, g.W, g.O, l->p,
                 l->B);
        omp_set_num_threads(1);
        run(&g, l->B, op, 0, 0, -1, x, w, dy, direct);
        const double e_direct = rel_error(direct, ref, mag, n, 1e-5, 1e-7, what);
        /* an element's error also takes in its tile's others: F(4x4, 3x3)'s, where all of an
         * element's terms are padding, is within 1e-6 of the output's largest magnitude */
        double top = 0;
        for (long i = 0; i < n; i++) top = mag[i] > top ? mag[i] : top;
        const double floor = algo == MLC_CONV_WINOGRAD4 ? 1e-6 * top : 1e-7;
        /* F(4x4, 3x3) and the weight gradient: a sample a piece of work, and sample groups
         * (F(4x4, 3x3)'s the same bits, the weight gradient's sums follow the groups) */
        const int layouts = algo == MLC_CONV_WINOGRAD4 || op == MLC_CONV_BWD_FILTER ? 2 : 1;
        for (int r = 0; r < 6 * layouts; r++) {
            const int threads = 1 + r % 3, by_sample = r % 6 >= 3, grouped = layouts > 1 ? r / 6 : -1;
            if (by_sample && op == MLC_CONV_BWD_FILTER) continue;
            omp_set_num_threads(threads);
            memset(out, 0xff, sizeof(float) * (size_t)n); /* NaNs: every element must be written */
            run(&g, l->B, op, algo, by_sample, grouped, x, w, dy, out);
            const double e = rel_error(out, ref, mag, n, per_term, floor, what);
            cr_assert(e < 1e-5 && e <= times * e_direct + 1e-9, "%s: relative error %.3g (direct %.3g)", what, e,
                      e_direct);
            if (r == 0 || (r == 6 && op == MLC_CONV_BWD_FILTER)) memcpy(first, out, sizeof(float) * (size_t)n);
            else
                cr_assert_eq(memcmp(first, out, sizeof(float) * (size_t)n), 0, "%s: %d threads%s%s differ from 1", what,
                             threads, by_sample ? " by sample" : "", grouped > 0 ? " in sample groups" : "");
        }
        free(x), free(w), free(dy), free(direct), free(first), free(out), free(ref), free(mag);
    }
}

Test(winograd, forward_within_bounds_of_double_and_direct) { check_op(MLC_CONV_FWD, MLC_CONV_WINOGRAD); }
Test(winograd, input_gradient_within_bounds_of_double_and_direct) { check_op(MLC_CONV_BWD_DATA, MLC_CONV_WINOGRAD); }
Test(winograd, weight_gradient_within_bounds_of_double_and_direct) { check_op(MLC_CONV_BWD_FILTER, MLC_CONV_WINOGRAD); }
Test(winograd, f4x4_forward_within_bounds_of_double_and_direct) { check_op(MLC_CONV_FWD, MLC_CONV_WINOGRAD4); }
Test(winograd, f4x4_input_gradient_within_bounds_of_double_and_direct) {
    check_op(MLC_CONV_BWD_DATA, MLC_CONV_WINOGRAD4);
}
/* in sample groups; a sample at a time it is F(2x2, 3x3)'s (mlc_wino_dw_algo) */
Test(winograd, f4x4_weight_gradient_within_bounds_of_double_and_direct) {
    check_op(MLC_CONV_BWD_FILTER, MLC_CONV_WINOGRAD4);
}

/* Only 3x3, stride 1, dilation 1, one group */
Test(winograd, applies_to_3x3_stride_1_only) {
    const Layer l = {4, 8, 8, 4, 1, 1};
    mlc_conv_geom g = geom(&l);
    cr_assert(mlc_wino_applies(&g));
    const mlc_conv_geom s2 = {.C = 4,
                              .H = 8,
                              .W = 8,
                              .O = 4,
                              .KH = 3,
                              .KW = 3,
                              .sh = 2,
                              .sw = 2,
                              .ph = 1,
                              .pw = 1,
                              .dh = 1,
                              .dw = 1,
                              .G = 1,
                              .Ho = 4,
                              .Wo = 4};
    cr_assert(!mlc_wino_applies(&s2));
    g.dw = 2, g.Wo = 4;
    cr_assert(!mlc_wino_applies(&g));
    g.dw = 1, g.Wo = 8, g.G = 2;
    cr_assert(!mlc_wino_applies(&g));
    g.G = 1, g.KH = 5, g.Ho = 6;
    cr_assert(!mlc_wino_applies(&g));
}
