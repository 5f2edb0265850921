/* bench/bench_time.h - what the benchmark programs that time calls on the wall clock
 * share: the clock, the comparison their medians sort with, and the inputs they fill. */
#ifndef BENCH_TIME_H
#define BENCH_TIME_H

#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p[0..n) = small values from seed s */
static inline void fill(float *p, long n, unsigned s) {
    for (long i = 0; i < n; i++) s = s * 1103515245u + 12345u, p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

#endif
