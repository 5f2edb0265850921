/* bench/winograd_layers.c - per-layer time of the three convolution ops, direct against
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) (its weight gradient in sample groups, even at
 * --error's batch of 4), on the 3x3 stride-1 layers of samples/resnet.mdl (batch 64,
 * 28x28) and samples/resnet20_cifar.mdl (batch 128, 32x32). A and B interleaved rep by
 * rep, medians; effective GFLOP/s count the direct convolution's FLOPs (2 C O 9 Ho Wo B).
 * Times are the process's CPU time (all its threads): on a machine shared with other work
 * that counts this program's work only; run it with OMP_NUM_THREADS=1 there, since with
 * more threads it also counts the time they spin at barriers.
 * `--error`: instead of times, each op's normwise relative error ||y - ref|| / ||ref||
 * against a double-precision direct convolution, direct and Winograd, at batch 4 on
 * inputs and weights uniform in [-0.5, 0.5). It asserts nothing
 * (tests/kernels/test_winograd.c checks bounds).
 *
 *   cc -O3 -march=native -fopenmp -Iruntime/kernels bench/winograd_layers.c \
 *      build/runtime/libmlckernels.a -lopenblas -lm -o /tmp/wl && OMP_NUM_THREADS=1 /tmp/wl [REPS | --error] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlc_kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *floats(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64 + 64));
    unsigned s = 12345u + (unsigned)n;
    for (long i = 0; i < n; i++) s = s * 1664525u + 1013904223u, p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    return p;
}

/* ||got - op's exact result|| / ||exact||, the exact one in double (padding 1) */
static double rel_error(const mlc_conv_geom *g, long B, int op, const float *x, const float *w, const float *dy,
                        const float *got) {
    const long n = op == 0 ? B * g->O * g->Ho * g->Wo : op == 1 ? B * g->C * g->H * g->W : (long)g->O * g->C * 9;
    double *ref = calloc((size_t)n, sizeof(double)), e = 0, r = 0;
    for (long b = 0; b < B; b++)
        for (int o = 0; o < g->O; o++)
            for (int c = 0; c < g->C; c++)
                for (int i = 0; i < g->Ho; i++)
                    for (int j = 0; j < g->Wo; j++)
                        for (int k = 0; k < 9; k++) {
                            const int h = i - 1 + k / 3, v = j - 1 + k % 3;
                            if (h < 0 || h >= g->H || v < 0 || v >= g->W) continue;
                            const long xi = ((b * g->C + c) * g->H + h) * g->W + v, wi = ((long)o * g->C + c) * 9 + k;
                            const long yi = ((b * g->O + o) * g->Ho + i) * g->Wo + j;
                            if (op == 0) ref[yi] += (double)x[xi] * w[wi];
                            else if (op == 1) ref[xi] += (double)dy[yi] * w[wi];
                            else ref[wi] += (double)x[xi] * dy[yi];
                        }
    for (long i = 0; i < n; i++) e += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
    free(ref);
    return sqrt(e / r);
}

/* One run of op by algo (a workspace per call, as a model holds one per op) */
static double run(const mlc_conv_geom *g, long B, int op, int algo, const float *x, const float *w, const float *dy,
                  float *out, float *ws, const mlc_conv_plan *pl) {
    const double t0 = now();
    if (op == 0)
        (algo == MLC_CONV_WINOGRAD4 ? mlc_wino4_conv2d_fwd
         : algo                     ? mlc_wino_conv2d_fwd
                                    : mlc_conv2d_fwd)(g, pl, B, x, w, out, ws);
    else if (op == 1)
        (algo == MLC_CONV_WINOGRAD4 ? mlc_wino4_conv2d_bwd_data
         : algo                     ? mlc_wino_conv2d_bwd_data
                                    : mlc_conv2d_bwd_data)(g, pl, B, dy, w, out, ws);
    else
        (algo == MLC_CONV_WINOGRAD4 ? mlc_wino4_conv2d_bwd_filter
         : algo                     ? mlc_wino_conv2d_bwd_filter
                                    : mlc_conv2d_bwd_filter)(g, pl, B, x, dy, out, ws);
    return now() - t0;
}

int main(int argc, char **argv) {
    const int error = argc > 1 && !strcmp(argv[1], "--error"), reps = argc > 1 && !error ? atoi(argv[1]) : 7;
    // clang-format off
    static const struct { const char *model; int C, H, O; long B; } layers[] = {
        {"resnet", 1, 28, 16, 64},          {"resnet", 16, 28, 16, 64},         {"resnet", 32, 14, 32, 64},
        {"resnet", 64, 7, 64, 64},          {"resnet20_cifar", 3, 32, 16, 128}, {"resnet20_cifar", 16, 32, 16, 128},
        {"resnet20_cifar", 32, 16, 32, 128}, {"resnet20_cifar", 64, 8, 64, 128},
    };
    // clang-format on
    static const char *opname[] = {"forward", "input grad", "weight grad"};
    mlc_kernels_init();
    if (error)
        printf(
            "| model | layer (C->O, HxW), B 4 | op | direct rel. error | F(2x2) rel. error | F(4x4) rel. error "
            "|\n|---|---|---|---|---|---|\n");
    else {
        printf(
            "| model | layer (C->O, HxW, B) | op | direct ms | F(2x2) ms | F(4x4) ms | direct / F(2x2) | direct / "
            "F(4x4) | effective GFLOP/s, F(2x2), F(4x4) |\n");
        printf("|---|---|---|---|---|---|---|---|---|\n");
    }
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const int C = layers[l].C, H = layers[l].H, O = layers[l].O;
        const long B = error ? 4 : layers[l].B;
        const mlc_conv_geom g = {.C = C,
                                 .H = H,
                                 .W = H,
                                 .O = O,
                                 .KH = 3,
                                 .KW = 3,
                                 .sh = 1,
                                 .sw = 1,
                                 .ph = 1,
                                 .pw = 1,
                                 .dh = 1,
                                 .dw = 1,
                                 .G = 1,
                                 .Ho = H,
                                 .Wo = H};
        float *x = floats(B * C * H * H), *dy = floats(B * O * H * H), *w = floats((long)O * C * 9);
        float *out = floats(B * (C > O ? C : O) * H * H + (long)O * C * 9);
        for (int op = 0; op < 3; op++) {
            const int na = 3;
            mlc_conv_plan pl[3];
            float *ws[3];
            for (int a = 0; a < na; a++) {
                pl[a] = a == 2 && op == 2 ? mlc_wino_plan_as(&g, op, B, a, 1) /* groups */
                        : a               ? mlc_wino_plan_for(&g, op, B, a)
                                          : mlc_conv_plan_for(&g, op, B);
                pl[a].slots = mlc_scratch_slots();
                ws[a] = floats(pl[a].slots * pl[a].slot + (a ? mlc_wino_shared_floats(&g, &pl[a], op, a)
                                                             : mlc_conv_shared_floats(&g, &pl[a], op)));
            }
            double t[3][64], e[3] = {0, 0, 0}, md[3] = {0, 0, 0};
            for (int a = 0; a < na; a++) { /* the errors; a warm-up for the times */
                run(&g, B, op, a, x, w, dy, out, ws[a], &pl[a]);
                if (error) e[a] = rel_error(&g, B, op, x, w, dy, out);
            }
            if (error) {
                char e4[16] = "-";
                if (na == 3) snprintf(e4, sizeof e4, "%.2e", e[2]);
                printf("| %s | %d->%d, %dx%d | %s | %.2e | %.2e | %s |\n", layers[l].model, C, O, H, H, opname[op],
                       e[0], e[1], e4);
            } else {
                for (int r = 0; r < reps && r < 64; r++)
                    for (int a = 0; a < na; a++) t[a][r] = run(&g, B, op, a, x, w, dy, out, ws[a], &pl[a]);
                for (int a = 0; a < na; a++) qsort(t[a], (size_t)reps, sizeof(double), cmp), md[a] = t[a][reps / 2];
                const double flop = 2.0 * C * O * 9 * H * H * B;
                char f4[64] = "-", r4[16] = "-", g4[16] = "-";
                if (na == 3)
                    snprintf(f4, sizeof f4, "%.2f", 1e3 * md[2]), snprintf(r4, sizeof r4, "%.2f", md[0] / md[2]),
                        snprintf(g4, sizeof g4, "%.0f", flop / md[2] * 1e-9);
                printf("| %s | %d->%d, %dx%d, %ld | %s | %.2f | %.2f | %s | %.2f | %s | %.0f, %s |\n", layers[l].model,
                       C, O, H, H, B, opname[op], 1e3 * md[0], 1e3 * md[1], f4, md[0] / md[1], r4, flop / md[1] * 1e-9,
                       g4);
            }
            fflush(stdout);
            for (int a = 0; a < na; a++) free(ws[a]);
        }
        free(x), free(dy), free(w), free(out);
    }
    return 0;
}
