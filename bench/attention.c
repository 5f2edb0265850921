/* bench/attention.c - the fused attention kernels of the kernel library
 * (runtime/kernels/c/attention.c) against the three-pass computation an unfused graph
 * runs: S = q k^T (a [T, S] matrix per head), softmax over its rows, o = P v; once with
 * plain loops (the naive version) and once with its two products on mlc_sgemm (what
 * matmul + softmax + matmul nodes would run). Forward, and forward + backward (the
 * unfused backward from the stored P: dv = P^T do, dP = do v^T, dS, dq = dS k, dk = dS^T q).
 * Prints the median and best time over --reps calls after one untimed call, and the bytes
 * of the T x S matrices the three-pass versions keep. Timings only: it asserts nothing
 * (tests/kernels/test_attention.c checks the results).
 *
 * build: cc -std=c11 -O2 -fopenmp -Iruntime bench/attention.c -Lbuild/runtime -lmlckernels -lopenblas -lm
 * usage: attention [--threads N] [--reps R] [--batch B] [--heads H] [--len T] [--width D] [--causal]
 *                  [--only fused|loops|gemm]
 * --only runs one version (for valgrind --tool=callgrind --toggle-collect=fused or
 * --toggle-collect=three_pass: instruction counts where timings are too noisy). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_time.h"
#include "kernels/mlc_kernels.h"

typedef struct Bench {
    long BH, T, D;
    int causal, gemm;
    float scale;
    float *q, *k, *v, *dout, *o, *st, *dq, *dk, *dv, *dkv; /* dkv: the fused kernel's dk, dv side by side */
    float *P, *dS;                                         /* the three-pass versions' [BH][T][T] matrices */
} Bench;

static float *floats(long n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) abort();
    for (long i = 0; i < n; i++) p[i] = (float)sin(0.37 * (double)i + 0.1);
    return p;
}

/* rows of P: softmax of scale * s over the keys a row sees, in place */
static void softmax_rows(const Bench *b, float *P) {
    for (long i = 0; i < b->T; i++) {
        long nk = b->causal ? i + 1 : b->T;
        float *p = P + i * b->T, m = -INFINITY, z = 0;
        for (long j = 0; j < nk; j++) p[j] *= b->scale, m = p[j] > m ? p[j] : m;
        for (long j = 0; j < nk; j++) p[j] = expf(p[j] - m), z += p[j];
        for (long j = 0; j < b->T; j++) p[j] = j < nk ? p[j] / z : 0.0f;
    }
}

/* C[M,N] = op(A) op(B): mlc_sgemm, or plain loops */
static void product(const Bench *b, int ta, int tb, long M, long N, long K, const float *A, const float *B, float *C) {
    if (b->gemm) {
        mlc_sgemm(ta, tb, (int)M, (int)N, (int)K, A, ta ? (int)M : (int)K, B, tb ? (int)K : (int)N, C, (int)N);
        return;
    }
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            float s = 0;
            for (long x = 0; x < K; x++) s += (ta ? A[x * M + i] : A[i * K + x]) * (tb ? B[j * K + x] : B[x * N + j]);
            C[i * N + j] = s;
        }
}

static void three_pass(const Bench *b, int backward) {
    const long T = b->T, D = b->D;
    /* the GEMM version splits each product over the team itself; the loops go by head */
#pragma omp parallel for schedule(static) if (!b->gemm)
    for (long h = 0; h < b->BH; h++) {
        const float *q = b->q + h * T * D, *k = b->k + h * T * D, *v = b->v + h * T * D, *dout = b->dout + h * T * D;
        float *P = b->P + h * T * T, *dS = b->dS + h * T * T;
        product(b, 0, 1, T, T, D, q, k, P);
        softmax_rows(b, P);
        product(b, 0, 0, T, D, T, P, v, b->o + h * T * D);
        if (!backward) continue;
        product(b, 1, 0, T, D, T, P, dout, b->dv + h * T * D);
        product(b, 0, 1, T, T, D, dout, v, dS); /* dP */
        for (long i = 0; i < T; i++) {
            float delta = 0;
            for (long j = 0; j < T; j++) delta += P[i * T + j] * dS[i * T + j];
            for (long j = 0; j < T; j++) dS[i * T + j] = P[i * T + j] * (dS[i * T + j] - delta) * b->scale;
        }
        product(b, 0, 0, T, D, T, dS, k, b->dq + h * T * D);
        product(b, 1, 0, T, D, T, dS, q, b->dk + h * T * D);
    }
}

static void fused(const Bench *b, int backward) {
    mlc_attn_geom g = {.T = b->T, .S = b->T, .D = b->D, .E = b->D, .scale = b->scale, .causal = b->causal};
    mlc_attention_fwd(&g, b->BH, b->q, b->k, b->v, b->o);
    if (!backward) return;
    mlc_attention_stats(&g, b->BH, b->q, b->k, b->o, b->dout, b->st);
    mlc_attention_bwd_q(&g, b->BH, b->q, b->k, b->v, b->dout, b->st, b->dq);
    mlc_attention_bwd_kv(&g, b->BH, b->q, b->k, b->v, b->dout, b->st, b->dkv);
}

static void timed(const char *name, Bench *b, int gemm, void (*fn)(const Bench *, int), int backward, int reps) {
    b->gemm = gemm;
    double *t = malloc(sizeof(double) * (size_t)reps);
    fn(b, backward);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fn(b, backward);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    printf("%-26s %-18s median %8.3f ms  best %8.3f ms\n", name, backward ? "forward+backward" : "forward",
           1e3 * t[reps / 2], 1e3 * t[0]);
    free(t);
}

int main(int argc, char **argv) {
    int threads = 1, reps = 21, causal = 0;
    const char *only = NULL;
    long B = 16, H = 4, T = 128, D = 32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--causal")) causal = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--batch")) B = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--heads")) H = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--len")) T = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--width")) D = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--only")) only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--batch B] [--heads H] [--len T] [--width D] [--causal] "
                    "[--only fused|loops|gemm]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || threads < 1 || B < 1 || H < 1 || T < 1 || D < 1) {
        fprintf(stderr, "error: every count must be at least 1\n");
        return 2;
    }
    mlc_kernels_init();
    omp_set_num_threads(threads);
    Bench b = {.BH = B * H, .T = T, .D = D, .causal = causal, .scale = 1.0f / sqrtf((float)D)};
    long n = b.BH * T * D;
    b.q = floats(n), b.k = floats(n), b.v = floats(n), b.dout = floats(n), b.o = floats(n), b.dq = floats(n);
    b.dk = floats(n), b.dv = floats(n), b.dkv = floats(2 * n), b.st = floats(b.BH * T * 2), b.P = floats(b.BH * T * T),
    b.dS = floats(b.BH * T * T);
    printf(
        "attention B %ld H %ld T %ld D %ld%s, %d thread%s, %d reps; the three-pass versions keep P: %ld bytes "
        "(fused: %ld bytes of row statistics in the backward)\n",
        B, H, T, D, causal ? " causal" : "", threads, threads == 1 ? "" : "s", reps, 4 * b.BH * T * T,
        4 * b.BH * T * 2);
    for (int bwd = 0; bwd < 2; bwd++) {
        if (!only || !strcmp(only, "fused")) timed("fused (mlc_attention_*)", &b, 0, fused, bwd, reps);
        if (!only || !strcmp(only, "loops")) timed("three-pass, loops", &b, 0, three_pass, bwd, reps);
        if (!only || !strcmp(only, "gemm")) timed("three-pass, mlc_sgemm", &b, 1, three_pass, bwd, reps);
    }
    return 0;
}
