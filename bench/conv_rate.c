/* bench/conv_rate.c - the convolution kernels' rate (runtime/kernels/c/conv_*.c, and
 * winograd_*.c: algo=wino2, F(2x2, 3x3), and F(4x4, 3x3) in both layouts, wino4 (a
 * sample's rows of tiles in the lanes) and wino4g (groups of 8 samples in the lanes, the
 * weight gradient too); wino2g: F(2x2, 3x3)'s weight gradient in sample groups) on the 3x3 layers of the
 * samples' CNNs, forward, input gradient and weight gradient, for the kernel library it
 * is linked with: bench/conv_width.sh links it with libraries built at each vector width
 * and alternates them. Rates are on the direct convolution's FLOPs (2 x B x O x Ho x Wo x
 * C/G x KH x KW; Winograd's are effective). Prints one line per layer, algorithm and op:
 * the median and the best GFLOP/s over --reps calls after untimed ones. Timings only: it
 * asserts nothing.
 *
 * usage: conv_rate [--algo NAME] [--op OP] [--threads T] [--reps R] [--layer TEXT] (NAME: one of the
 * algorithms above; OP: fwd, data or filter; TEXT: run the layers whose name has it) */
#include "conv_layers.h"
#include "kernels/mlc_kernels.h"
#include "kernels/mlc_winograd_layout.h"

static float *floats(long n) {
    float *p = aligned_alloc(64, (size_t)(n * 4 + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "conv_rate: out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 10;
    /* --algo NAME (one of algoname's) before the shared arguments: only that algorithm */
    const char *only = NULL, *only_op = NULL;
    if (argc > 2 && !strcmp(argv[1], "--algo")) only = argv[2], argv[2] = argv[0], argc -= 2, argv += 2;
    /* --op NAME (fwd, data or filter): only that op, e.g. to profile it alone */
    if (argc > 2 && !strcmp(argv[1], "--op")) only_op = argv[2], argv[2] = argv[0], argc -= 2, argv += 2;
    const int bad = parse_args("conv_rate", argc, argv, &threads, &reps);
    if (bad) return bad;
    mlc_kernels_init();
    mlc_c_set_threads(threads);
    const char *opname[] = {"fwd", "data", "filter"}, *algoname[] = {"direct", "wino2", "wino4", "wino4g", "wino2g"};
    int warmed = 0;
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const Layer *ly = &layers[l];
        if (!layer_chosen(ly)) continue;
        mlc_conv_geom g = {.C = ly->C,
                           .H = ly->H,
                           .W = ly->H,
                           .O = ly->O,
                           .KH = ly->K,
                           .KW = ly->K,
                           .sh = ly->S,
                           .sw = ly->S,
                           .ph = ly->K / 2,
                           .pw = ly->K / 2,
                           .dh = 1,
                           .dw = 1,
                           .G = 1,
                           .Ho = layer_out(ly),
                           .Wo = layer_out(ly)};
        const long B = ly->B, nx = B * g.C * g.H * g.W, ny = B * g.O * g.Ho * g.Wo,
                   nw = (long)g.O * g.C * ly->K * ly->K;
        float *x = floats(nx), *y = floats(ny), *w = floats(nw), *dy = floats(ny), *dx = floats(nx), *dw = floats(nw);
        fill(x, nx, 1), fill(w, nw, 2), fill(dy, ny, 3);
        const double flop = 2.0 * (double)ny * g.C * ly->K * ly->K;
        /* the direct kernels, F(2x2, 3x3), F(4x4, 3x3) in both layouts (forward and input
         * gradient; the weight gradient in groups) and F(2x2, 3x3)'s weight gradient in
         * sample groups */
        for (int k = 0; k < 15; k++) {
            const int a = k / 3, op = k % 3, grouped = a >= 3;
            const int algo = a == 4 ? MLC_CONV_WINOGRAD : a == 3 ? MLC_CONV_WINOGRAD4 : a;
            if (a == 2 && op == MLC_CONV_BWD_FILTER) continue; /* F(4x4)'s runs in groups only */
            if (a == 4 && op != MLC_CONV_BWD_FILTER) continue; /* wino4g's groups */
            if (algo && (ly->K != 3 || ly->S != 1)) continue;  /* Winograd's layers */
            if (only && strcmp(only, algoname[a])) continue;
            if (only_op && strcmp(only_op, opname[op])) continue;
            mlc_conv_plan pl = algo ? mlc_wino_plan_as(&g, op, B, algo, grouped) : mlc_conv_plan_for(&g, op, B);
            pl.slots = mlc_scratch_slots();
            if (grouped) pl.spt = MLC_WINO_GROUP;
            float *ws = floats(pl.slots * pl.slot + (algo ? mlc_wino_shared_floats(&g, &pl, op, algo)
                                                          : mlc_conv_shared_floats(&g, &pl, op)));
            double *t = malloc(sizeof(double) * (size_t)reps);
            /* untimed calls first: one, or for the program's first op half a second of
             * them (a single call left the first op measured at a third of its rate, the
             * cores still waking) */
            const double warm_until = now() + (warmed++ == 0 ? 0.5 : 0.0);
            for (int r = -1; r < reps; r++) {
                const double t0 = now();
                if (algo == MLC_CONV_WINOGRAD4 && op == MLC_CONV_FWD) mlc_wino4_conv2d_fwd(&g, &pl, B, x, w, y, ws);
                else if (algo == MLC_CONV_WINOGRAD4) mlc_wino4_conv2d_bwd_data(&g, &pl, B, dy, w, dx, ws);
                else if (algo && op == MLC_CONV_FWD) mlc_wino_conv2d_fwd(&g, &pl, B, x, w, y, ws);
                else if (algo && op == MLC_CONV_BWD_DATA) mlc_wino_conv2d_bwd_data(&g, &pl, B, dy, w, dx, ws);
                else if (algo == MLC_CONV_WINOGRAD4) mlc_wino4_conv2d_bwd_filter(&g, &pl, B, x, dy, dw, ws);
                else if (algo) mlc_wino_conv2d_bwd_filter(&g, &pl, B, x, dy, dw, ws);
                else if (op == MLC_CONV_FWD) mlc_conv2d_fwd(&g, &pl, B, x, w, y, ws);
                else if (op == MLC_CONV_BWD_DATA) mlc_conv2d_bwd_data(&g, &pl, B, dy, w, dx, ws);
                else mlc_conv2d_bwd_filter(&g, &pl, B, x, dy, dw, ws);
                if (r >= 0) t[r] = now() - t0;
                else if (now() < warm_until) r--;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp);
            printf("vw=%d isa=%s algo=%s threads=%d layer=%s op=%s median_gflops=%.1f best_gflops=%.1f\n",
                   mlc_kernels_vec_width(), mlc_kernels_isa(), algoname[k / 3], threads, ly->name, opname[op],
                   flop / t[reps / 2] * 1e-9, flop / t[0] * 1e-9);
            free(t), free(ws);
        }
        free(x), free(y), free(w), free(dy), free(dx), free(dw);
    }
    return 0;
}
