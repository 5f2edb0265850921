/* bench/conv_layers.h - what bench/conv_rate.c (mlc's kernels) and bench/onednn_conv.c
 * (oneDNN's) share, so that bench/conv_width.sh compares them on the same layers, with
 * the same arguments (timed and filled the same way: bench_time.h). */
#ifndef BENCH_CONV_LAYERS_H
#define BENCH_CONV_LAYERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"

/* A 3x3 stride-1 same-padded layer: resnet20_cifar's three stages at its batch of 128,
 * lenet's second conv and resnet's three stages at 64 */
typedef struct Layer {
    const char *name;
    int B, C, H, O;
} Layer;

static const Layer layers[] = {
    {"cifar16x32x32", 128, 16, 32, 16}, {"cifar32x16x16", 128, 32, 16, 32}, {"cifar64x8x8", 128, 64, 8, 64},
    {"lenet32x14x14", 64, 32, 14, 64},  {"resnet16x28x28", 64, 16, 28, 16}, {"resnet32x14x14", 64, 32, 14, 32},
    {"resnet64x7x7", 64, 64, 7, 64},
};

/* --threads T --reps R into *threads, *reps; 0, or a message and 2 for main to return */
static int parse_args(const char *prog, int argc, char **argv, int *threads, int *reps) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) *threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) *reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads T] [--reps R]\n", prog);
            return 2;
        }
    }
    if (*threads < 1 || *reps < 1) {
        fprintf(stderr, "%s: --threads and --reps take a number from 1\n", prog);
        return 2;
    }
    return 0;
}

#endif
