/* synth_data.h - small synthetic datasets written by the runtime tests: MNIST-layout IDX
 * files whose label is the quadrant of the brightest block (so the tiny model learns),
 * and CIFAR-10/100 binary records. Header-only, like testutil.h. */
#ifndef MLCRT_SYNTH_DATA_H
#define MLCRT_SYNTH_DATA_H

#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"

static inline uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* An image's label is the quadrant with the brightest block, so the tiny model learns. */
static inline void write_idx_images(const char *path, int n, int rows, int cols, uint32_t seed) {
    size_t len = 16 + (size_t)n * rows * cols;
    uint8_t *b = calloc(1, len);
    b[2] = 8;
    b[3] = 3;
    uint32_t dims[3] = {(uint32_t)n, (uint32_t)rows, (uint32_t)cols};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 4; i++) b[4 + 4 * d + i] = (uint8_t)(dims[d] >> (24 - 8 * i));
    for (int s = 0; s < n; s++) {
        uint8_t *img = b + 16 + (size_t)s * rows * cols;
        int label = s % 10;
        for (int i = 0; i < rows * cols; i++) img[i] = (uint8_t)(lcg(&seed) % 60);
        for (int i = 0; i < rows / 4; i++)
            for (int j = 0; j < cols / 4; j++)
                img[(i + (label / 4) * (rows / 4)) * cols + j + (label % 4) * (cols / 4)] = 250;
    }
    tu_write(path, b, len);
    free(b);
}

static inline void write_idx_labels(const char *path, int n, int bad_at) {
    uint8_t *b = calloc(1, 8 + (size_t)n);
    b[2] = 8;
    b[3] = 1;
    b[4] = (uint8_t)(n >> 24);
    b[5] = (uint8_t)(n >> 16);
    b[6] = (uint8_t)(n >> 8);
    b[7] = (uint8_t)n;
    for (int s = 0; s < n; s++) b[8 + s] = (uint8_t)(s == bad_at ? 10 : s % 10);
    tu_write(path, b, 8 + (size_t)n);
    free(b);
}

/* DIR in MNIST layout: 200 training and 50 test images of 28x28. */
static inline char *mnist_dir(void) {
    char *d = tu_tmpdir();
    write_idx_images(tu_path(d, "train-images-idx3-ubyte"), 200, 28, 28, 1);
    write_idx_labels(tu_path(d, "train-labels-idx1-ubyte"), 200, -1);
    write_idx_images(tu_path(d, "t10k-images-idx3-ubyte"), 50, 28, 28, 2);
    write_idx_labels(tu_path(d, "t10k-labels-idx1-ubyte"), 50, -1);
    return d;
}

/* n CIFAR records (label_bytes 1 or 2); the fine label is s % classes, the coarse 99. */
static inline void write_cifar(const char *path, int n, int label_bytes, int classes, uint32_t seed) {
    size_t rec = (size_t)label_bytes + 3072;
    uint8_t *b = calloc(n, rec);
    for (int s = 0; s < n; s++) {
        uint8_t *r = b + s * rec;
        if (label_bytes == 2) r[0] = 99;
        r[label_bytes - 1] = (uint8_t)(s % classes);
        for (int i = 0; i < 3072; i++) r[label_bytes + i] = (uint8_t)(lcg(&seed) % 256);
        r[label_bytes + (s % classes) * 100] = 255;
    }
    tu_write(path, b, n * rec);
    free(b);
}

static inline char *cifar10_dir(void) {
    char *d = tu_tmpdir(), name[64];
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        write_cifar(tu_path(d, name), 8, 1, 10, (uint32_t)i);
    }
    write_cifar(tu_path(d, "test_batch.bin"), 12, 1, 10, 99);
    return d;
}
#endif
