/* bench/conv_rate.c - the convolution kernels' rate (runtime/kernels/c/conv_*.c) on the
 * 3x3 layers of the samples' CNNs, forward, input gradient and weight gradient, for the
 * kernel library it is linked with: bench/conv_width.sh links it with libraries built at
 * each vector width and alternates them. Rates are on the direct convolution's FLOPs
 * (2 x B x O x Ho x Wo x C/G x KH x KW). Prints one line per layer and op: the median and
 * the best GFLOP/s over --reps calls after untimed ones. Timings only: it asserts
 * nothing.
 *
 * usage: conv_rate [--threads T] [--reps R] */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/mlc_kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(float *p, long n, unsigned s) {
    for (long i = 0; i < n; i++) s = s * 1103515245u + 12345u, p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static float *floats(long n) {
    float *p = aligned_alloc(64, (size_t)(n * 4 + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "conv_rate: out of memory\n");
        exit(1);
    }
    return p;
}

/* A 3x3 stride-1 same-padded layer: resnet20_cifar's three stages at its batch of 128,
 * and lenet's second conv at 64 */
typedef struct Layer {
    const char *name;
    int B, C, H, O;
} Layer;

static const Layer layers[] = {
    {"cifar16x32x32", 128, 16, 32, 16},
    {"cifar32x16x16", 128, 32, 16, 32},
    {"cifar64x8x8", 128, 64, 8, 64},
    {"lenet32x14x14", 64, 32, 14, 64},
};

int main(int argc, char **argv) {
    int threads = 2, reps = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conv_rate [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "conv_rate: --threads and --reps take a number from 1\n");
        return 2;
    }
    mlc_kernels_init();
    mlc_c_set_threads(threads);
    const char *opname[] = {"fwd", "data", "filter"};
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const Layer *ly = &layers[l];
        mlc_conv_geom g = {.C = ly->C,
                           .H = ly->H,
                           .W = ly->H,
                           .O = ly->O,
                           .KH = 3,
                           .KW = 3,
                           .sh = 1,
                           .sw = 1,
                           .ph = 1,
                           .pw = 1,
                           .dh = 1,
                           .dw = 1,
                           .G = 1,
                           .Ho = ly->H,
                           .Wo = ly->H};
        const long B = ly->B, nx = B * g.C * g.H * g.W, ny = B * g.O * g.Ho * g.Wo, nw = (long)g.O * g.C * 9;
        float *x = floats(nx), *y = floats(ny), *w = floats(nw), *dy = floats(ny), *dx = floats(nx), *dw = floats(nw);
        fill(x, nx, 1), fill(w, nw, 2), fill(dy, ny, 3);
        const double flop = 2.0 * (double)ny * g.C * 9;
        for (int op = 0; op < 3; op++) {
            mlc_conv_plan pl = mlc_conv_plan_for(&g, op, B);
            pl.slots = mlc_scratch_slots();
            float *ws = floats(pl.slots * pl.slot + mlc_conv_shared_floats(&g, &pl, op));
            double *t = malloc(sizeof(double) * (size_t)reps);
            /* untimed calls first: one, or for the program's first op half a second of
             * them (a single call left the first op measured at a third of its rate, the
             * cores still waking) */
            const double warm_until = now() + (l == 0 && op == 0 ? 0.5 : 0.0);
            for (int r = -1; r < reps; r++) {
                const double t0 = now();
                if (op == MLC_CONV_FWD) mlc_conv2d_fwd(&g, &pl, B, x, w, y, ws);
                else if (op == MLC_CONV_BWD_DATA) mlc_conv2d_bwd_data(&g, &pl, B, dy, w, dx, ws);
                else mlc_conv2d_bwd_filter(&g, &pl, B, x, dy, dw, ws);
                if (r >= 0) t[r] = now() - t0;
                else if (now() < warm_until) r--;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp);
            printf("vw=%d isa=%s threads=%d layer=%s op=%s median_gflops=%.1f best_gflops=%.1f\n",
                   mlc_kernels_vec_width(), mlc_kernels_isa(), threads, ly->name, opname[op], flop / t[reps / 2] * 1e-9,
                   flop / t[0] * 1e-9);
            free(t), free(ws);
        }
        free(x), free(y), free(w), free(dy), free(dx), free(dw);
    }
    return 0;
}
