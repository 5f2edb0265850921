/* bench/winograd_layers.c - per-layer time of the three convolution ops, direct against
 * Winograd F(2x2, 3x3), on the 3x3 stride-1 layers of samples/resnet.mdl (batch 64,
 * 28x28) and samples/resnet20_cifar.mdl (batch 128, 32x32). A and B interleaved rep by
 * rep, medians; effective GFLOP/s count the direct convolution's FLOPs (2 C O 9 Ho Wo B).
 * Timings only: it asserts nothing (tests/kernels/test_winograd.c checks the results).
 *
 *   cc -O3 -march=native -fopenmp -Iruntime/kernels bench/winograd_layers.c \
 *      build/runtime/libmlckernels.a -lopenblas -lm -o /tmp/wl && OMP_NUM_THREADS=2 /tmp/wl [REPS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlc_kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *floats(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64 + 64));
    for (long i = 0; i < n; i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* One run of op by algo (a workspace per call, as a model holds one per op) */
static double run(const mlc_conv_geom *g, long B, int op, int algo, const float *x, const float *w, const float *dy,
                  float *out, float *ws, const mlc_conv_plan *pl) {
    const double t0 = now();
    if (op == 0) (algo ? mlc_wino_conv2d_fwd : mlc_conv2d_fwd)(g, pl, B, x, w, out, ws);
    else if (op == 1) (algo ? mlc_wino_conv2d_bwd_data : mlc_conv2d_bwd_data)(g, pl, B, dy, w, out, ws);
    else (algo ? mlc_wino_conv2d_bwd_filter : mlc_conv2d_bwd_filter)(g, pl, B, x, dy, out, ws);
    return now() - t0;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 7;
    static const struct { const char *model; int C, H, O; long B; } layers[] = {
        {"resnet", 1, 28, 16, 64},          {"resnet", 16, 28, 16, 64},         {"resnet", 32, 14, 32, 64},
        {"resnet", 64, 7, 64, 64},          {"resnet20_cifar", 3, 32, 16, 128}, {"resnet20_cifar", 16, 32, 16, 128},
        {"resnet20_cifar", 32, 16, 32, 128}, {"resnet20_cifar", 64, 8, 64, 128},
    };
    static const char *opname[] = {"forward", "input grad", "weight grad"};
    mlc_kernels_init();
    printf("| model | layer (C->O, HxW, B) | op | direct ms | Winograd ms | direct / Winograd | effective GFLOP/s (W) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const int C = layers[l].C, H = layers[l].H, O = layers[l].O;
        const long B = layers[l].B;
        const mlc_conv_geom g = {.C = C, .H = H, .W = H, .O = O, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
                                 .dh = 1, .dw = 1, .G = 1, .Ho = H, .Wo = H};
        float *x = floats(B * C * H * H), *dy = floats(B * O * H * H), *w = floats((long)O * C * 9);
        float *out = floats(B * (C > O ? C : O) * H * H + (long)O * C * 9);
        for (int op = 0; op < 3; op++) {
            mlc_conv_plan pd = mlc_conv_plan_for(&g, op, B), pw = mlc_wino_plan_for(&g, op, B);
            pd.slots = pw.slots = mlc_scratch_slots();
            float *wd = floats(pd.slots * pd.slot + mlc_conv_shared_floats(&g, &pd, op));
            float *ww = floats(pw.slots * pw.slot + mlc_wino_shared_floats(&g, &pw, op));
            double td[64], tw[64];
            run(&g, B, op, 0, x, w, dy, out, wd, &pd), run(&g, B, op, 1, x, w, dy, out, ww, &pw); /* warm up */
            for (int r = 0; r < reps && r < 64; r++) {
                td[r] = run(&g, B, op, 0, x, w, dy, out, wd, &pd);
                tw[r] = run(&g, B, op, 1, x, w, dy, out, ww, &pw);
            }
            qsort(td, (size_t)reps, sizeof(double), cmp), qsort(tw, (size_t)reps, sizeof(double), cmp);
            const double md = td[reps / 2], mw = tw[reps / 2], flop = 2.0 * C * O * 9 * H * H * B;
            printf("| %s | %d->%d, %dx%d, %ld | %s | %.2f | %.2f | %.2f | %.0f |\n", layers[l].model, C, O, H, H, B,
                   opname[op], 1e3 * md, 1e3 * mw, md / mw, flop / mw * 1e-9);
            fflush(stdout);
            free(wd), free(ww);
        }
        free(x), free(dy), free(w), free(out);
    }
    return 0;
}
