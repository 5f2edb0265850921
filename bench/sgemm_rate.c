/* bench/sgemm_rate.c - the SGEMM rate this machine reaches through the same GEMM path the
 * generated C trainers use, as the reference for bench/run.sh's "achieved GFLOP/s".
 *
 * The trainers run OpenBLAS single-threaded per call (mlc_kernels_init in NAME_create)
 * and split each large product across an OpenMP team of --threads threads (mlc_sgemm in
 * the kernel library, runtime/kernels/c/gemm.c). This file links that library and times
 * mlc_sgemm itself, so the reference moves with the generated code. For each size
 * M x N x K (row-major C = A.B, no transposes) it prints the median and the best rate over
 * --reps timed calls after one untimed call, and the same for one thread calling
 * cblas_sgemm directly. Timings only: it asserts nothing.
 *
 * usage: sgemm_rate [--threads T] [--reps R] [MxNxK ...]   (default sizes below) */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bench_time.h"
#include "kernels/mlc_kernels.h"

/* Times reps calls of C = A.B; writes the median and the best rate in GFLOP/s. */
static void rate(int team, int M, int N, int K, int reps, const float *A, const float *B, float *C, double *med,
                 double *best) {
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        if (team) mlc_sgemm(0, 0, M, N, K, A, K, B, N, C, N);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        if (r >= 0) t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    double flop = 2.0 * M * N * K;
    *med = flop / t[reps / 2] * 1e-9;
    *best = flop / t[0] * 1e-9;
    free(t);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 10;
    const char *dflt[] = {"512x512x512", "1024x1024x1024", "2048x2048x2048", "64x8192x576"};
    const char *sizes[32];
    int ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (ns < 32) sizes[ns++] = argv[i];
    }
    if (!ns)
        for (; ns < 4; ns++) sizes[ns] = dflt[ns];
    if (reps < 1) reps = 1;
    mlc_kernels_init();         /* as NAME_create does */
    mlc_c_set_threads(threads); /* as --threads does */
    for (int s = 0; s < ns; s++) {
        int M, N, K;
        if (sscanf(sizes[s], "%dx%dx%d", &M, &N, &K) != 3 || M < 1 || N < 1 || K < 1) {
            fprintf(stderr, "sgemm_rate: bad size '%s' (want MxNxK)\n", sizes[s]);
            return 2;
        }
        float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N),
              *C = malloc(sizeof(float) * (size_t)M * N);
        if (!A || !B || !C) return 1;
        fill(A, (long)M * K, 1), fill(B, (long)K * N, 2);
        double med, best, med1, best1;
        rate(1, M, N, K, reps, A, B, C, &med, &best);
        rate(0, M, N, K, reps, A, B, C, &med1, &best1);
        printf(
            "size=%dx%dx%d threads=%d reps=%d median_gflops=%.2f best_gflops=%.2f one_thread_median_gflops=%.2f "
            "one_thread_best_gflops=%.2f\n",
            M, N, K, threads, reps, med, best, med1, best1);
        free(A), free(B), free(C);
    }
    return 0;
}
