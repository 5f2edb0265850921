/* bench/conv_layers.h - what bench/conv_rate.c (mlc's kernels) and bench/onednn_conv.c
 * (oneDNN's) share, so that bench/conv_width.sh compares them on the same layers, with
 * the same arguments (timed and filled the same way: bench_time.h). */
#ifndef BENCH_CONV_LAYERS_H
#define BENCH_CONV_LAYERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"

/* A KxK layer padded by K/2 at stride S (output (H - 1)/S + 1 square): resnet20_cifar's
 * three stages at its batch of 128, lenet's second conv and resnet's three stages at 64
 * (3x3 stride 1), then the two ResNets' strided layers, where a stage halves the
 * resolution (3x3 and the 1x1 shortcut, stride 2; only the direct kernels run them) */
typedef struct Layer {
    const char *name;
    int B, C, H, O, K, S;
} Layer;

static const Layer layers[] = {
    {"cifar16x32x32", 128, 16, 32, 16, 3, 1},     {"cifar32x16x16", 128, 32, 16, 32, 3, 1},
    {"cifar64x8x8", 128, 64, 8, 64, 3, 1},        {"lenet32x14x14", 64, 32, 14, 64, 3, 1},
    {"resnet16x28x28", 64, 16, 28, 16, 3, 1},     {"resnet32x14x14", 64, 32, 14, 32, 3, 1},
    {"resnet64x7x7", 64, 64, 7, 64, 3, 1},        {"cifar16x32x32s2", 128, 16, 32, 32, 3, 2},
    {"cifar32x16x16s2", 128, 32, 16, 64, 3, 2},   {"cifar16x32x32k1s2", 128, 16, 32, 32, 1, 2},
    {"resnet16x28x28s2", 64, 16, 28, 32, 3, 2},   {"resnet32x14x14s2", 64, 32, 14, 64, 3, 2},
    {"resnet16x28x28k1s2", 64, 16, 28, 32, 1, 2},
};

/* The output's side */
static inline int layer_out(const Layer *ly) { return (ly->H - 1) / ly->S + 1; }

/* The layers whose name contains --layer's text (all without it) */
static const char *layer_filter = "";
static inline int layer_chosen(const Layer *ly) { return strstr(ly->name, layer_filter) != NULL; }

/* --threads T --reps R --layer TEXT into *threads, *reps, layer_filter; 0, or a message
 * and 2 for main to return */
static int parse_args(const char *prog, int argc, char **argv, int *threads, int *reps) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) *threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) *reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layer") && i + 1 < argc) layer_filter = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads T] [--reps R] [--layer TEXT]\n", prog);
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
