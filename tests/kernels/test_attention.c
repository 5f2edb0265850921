/* test_attention.c - the attention kernels (runtime/kernels/c/attention.c) against the
 * naive three-pass computation in double (scores, softmax, products, the whole T x S
 * matrix kept): the output, the backward's statistics and dq, dk, dv, for causal and
 * plain attention over one and several blocks of queries and keys, T = 1, cross
 * attention (S != T, E != D, T above and below S) and scores far beyond expf's range,
 * which only a softmax that subtracts each row's maximum survives. Then the same bits
 * on 1 and 2 threads.
 *
 * Tolerance: 1e-8 (D + E) (8 + the largest |score|) of the sum of the terms' magnitudes:
 * a dot product's rounding grows with its length, and a score s carries an error of
 * about |s| ulps into exp(s - lse). The errors seen are about a tenth of that; a key
 * dropped or counted twice moves a result by a whole term. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_kernels.h"

typedef struct AttnCase {
    long BH, T, S, D, E;
    int causal;
    float scale; /* 0: 1/sqrt(D) */
    float range; /* inputs uniform in [-range, range] */
} AttnCase;

// clang-format off
static const AttnCase cases[] = {
    {3, 37, 37, 32, 32, 0, 0, 1},  /* several query blocks, one key block */
    {2, 37, 37, 32, 32, 1, 0, 1},  {2, 150, 150, 24, 24, 1, 0, 1}, /* several of both */
    {2, 150, 150, 24, 24, 0, 0, 1}, {1, 1, 1, 5, 5, 1, 0, 1},      /* T = 1 */
    {2, 20, 70, 7, 3, 0, 0, 1},    {2, 70, 20, 7, 3, 1, 0, 1},    /* cross attention */
    {2, 80, 80, 16, 16, 1, 10, 3}, /* scores up to 1440: exp overflows without the maximum */
};
// clang-format on

static void fill(float *p, long n, unsigned s, float range) {
    for (long i = 0; i < n; i++)
        s = s * 1103515245u + 12345u, p[i] = range * ((float)((s >> 8) & 0xffff) / 32768.0f - 1.0f);
}

/* The case's tensors: inputs, the kernels' outputs, the reference and its magnitudes. */
typedef struct Tensors {
    float *q, *k, *v, *dout, *o, *st, *dq, *dkv, *dk, *dv; /* dkv: the kernel's [S][D + E]; dk, dv: split */
    double *ro, *rst, *rdq, *rdk, *rdv;                    /* reference */
    double *mo, *mdelta, *mdq, *mdk, *mdv;                 /* sums of the terms' magnitudes */
    double smax;
} Tensors;

static float *fl(long n) { return calloc((size_t)n, sizeof(float)); }
static double *db(long n) { return calloc((size_t)n, sizeof(double)); }

static void tensors_new(const AttnCase *c, Tensors *t) {
    long BH = c->BH, T = c->T, S = c->S, D = c->D, E = c->E;
    t->q = fl(BH * T * D), t->k = fl(BH * S * D), t->v = fl(BH * S * E), t->dout = fl(BH * T * E);
    t->o = fl(BH * T * E), t->st = fl(BH * T * 2), t->dq = fl(BH * T * D), t->dk = fl(BH * S * D);
    t->dv = fl(BH * S * E), t->dkv = fl(BH * S * (D + E));
    t->ro = db(BH * T * E), t->rst = db(BH * T * 2), t->rdq = db(BH * T * D), t->rdk = db(BH * S * D);
    t->rdv = db(BH * S * E);
    t->mo = db(BH * T * E), t->mdelta = db(BH * T), t->mdq = db(BH * T * D), t->mdk = db(BH * S * D);
    t->mdv = db(BH * S * E);
    fill(t->q, BH * T * D, 1, c->range), fill(t->k, BH * S * D, 2, c->range), fill(t->v, BH * S * E, 3, 1);
    fill(t->dout, BH * T * E, 4, 1);
}

static void tensors_free(Tensors *t) {
    float *f[] = {t->q, t->k, t->v, t->dout, t->o, t->st, t->dq, t->dkv, t->dk, t->dv};
    double *d[] = {t->ro, t->rst, t->rdq, t->rdk, t->rdv, t->mo, t->mdelta, t->mdq, t->mdk, t->mdv};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) free(d[i]);
}

/* The naive three passes per head: all scores, their softmax, the products; then the
 * gradients from the stored probabilities. */
static void naive(const AttnCase *c, float scale, Tensors *t) {
    long T = c->T, S = c->S, D = c->D, E = c->E;
    double *s = db(T * S), *p = db(T * S), *ds = db(T * S);
    t->smax = 0;
    for (long h = 0; h < c->BH; h++) {
        const float *q = t->q + h * T * D, *k = t->k + h * S * D, *v = t->v + h * S * E, *dout = t->dout + h * T * E;
        for (long i = 0; i < T; i++) {
            long nk = c->causal && i + 1 < S ? i + 1 : S;
            double m = -INFINITY, z = 0;
            for (long j = 0; j < nk; j++) {
                double d = 0;
                for (long x = 0; x < D; x++) d += (double)q[i * D + x] * k[j * D + x];
                s[i * S + j] = scale * d, m = fmax(m, s[i * S + j]), t->smax = fmax(t->smax, fabs(s[i * S + j]));
            }
            for (long j = 0; j < S; j++) p[i * S + j] = j < nk ? exp(s[i * S + j] - m) : 0, z += p[i * S + j];
            for (long j = 0; j < S; j++) p[i * S + j] /= z;
            long r = h * T + i;
            t->rst[2 * r] = m + log(z);
            for (long e = 0; e < E; e++) {
                double a = 0, mag = 0;
                for (long j = 0; j < S; j++) a += p[i * S + j] * v[j * E + e], mag += p[i * S + j] * fabs(v[j * E + e]);
                t->ro[r * E + e] = a, t->mo[r * E + e] = mag;
            }
            double delta = 0, mag = 0;
            for (long e = 0; e < E; e++)
                delta += dout[i * E + e] * t->ro[r * E + e], mag += fabs(dout[i * E + e] * t->ro[r * E + e]);
            t->rst[2 * r + 1] = delta, t->mdelta[r] = mag;
            for (long j = 0; j < S; j++) {
                double dp = 0;
                for (long e = 0; e < E; e++) dp += (double)dout[i * E + e] * v[j * E + e];
                ds[i * S + j] = p[i * S + j] * (dp - delta);
            }
        }
        for (long i = 0; i < T; i++)
            for (long x = 0; x < D; x++) {
                double a = 0, mag = 0;
                for (long j = 0; j < S; j++)
                    a += ds[i * S + j] * k[j * D + x],
                        mag += fabs(ds[i * S + j] * k[j * D + x]) + p[i * S + j] * fabs(k[j * D + x]);
                t->rdq[(h * T + i) * D + x] = scale * a, t->mdq[(h * T + i) * D + x] = fabs(scale) * mag;
            }
        for (long j = 0; j < S; j++) {
            for (long x = 0; x < D; x++) {
                double a = 0, mag = 0;
                for (long i = 0; i < T; i++)
                    a += ds[i * S + j] * q[i * D + x],
                        mag += fabs(ds[i * S + j] * q[i * D + x]) + p[i * S + j] * fabs(q[i * D + x]);
                t->rdk[(h * S + j) * D + x] = scale * a, t->mdk[(h * S + j) * D + x] = fabs(scale) * mag;
            }
            for (long e = 0; e < E; e++) {
                double a = 0, mag = 0;
                for (long i = 0; i < T; i++)
                    a += p[i * S + j] * dout[i * E + e], mag += p[i * S + j] * fabs(dout[i * E + e]);
                t->rdv[(h * S + j) * E + e] = a, t->mdv[(h * S + j) * E + e] = mag;
            }
        }
    }
    free(s), free(p), free(ds);
}

static void expect_near(const float *got, const double *want, const double *mag, long n, long stride, double tol,
                        const char *what, long ci) {
    for (long i = 0; i < n; i++) {
        double m = mag ? mag[i / stride] : fabs(want[i]);
        cr_assert(fabs(got[i] - want[i]) <= tol * m + 1e-7, "case %ld: %s element %ld is %.9g, expected %.9g", ci, what,
                  i, (double)got[i], want[i]);
    }
}

/* All four kernels into t's outputs, on `threads` threads. */
static void run(const AttnCase *c, const mlc_attn_geom *g, Tensors *t, int threads) {
    omp_set_num_threads(threads);
    mlc_attention_fwd(g, c->BH, t->q, t->k, t->v, t->o);
    mlc_attention_stats(g, c->BH, t->q, t->k, t->o, t->dout, t->st);
    mlc_attention_bwd_q(g, c->BH, t->q, t->k, t->v, t->dout, t->st, t->dq);
    mlc_attention_bwd_kv(g, c->BH, t->q, t->k, t->v, t->dout, t->st, t->dkv);
    for (long x = 0; x < c->BH * c->S * (c->D + c->E); x++) {
        long row = x / (c->D + c->E), col = x % (c->D + c->E);
        if (col < c->D) t->dk[row * c->D + col] = t->dkv[x];
        else t->dv[row * c->E + col - c->D] = t->dkv[x];
    }
}

Test(kernels, attention_matches_naive_three_passes) {
    for (long ci = 0; ci < (long)(sizeof cases / sizeof cases[0]); ci++) {
        const AttnCase *c = &cases[ci];
        float scale = c->scale ? c->scale : 1.0f / sqrtf((float)c->D);
        mlc_attn_geom g = {.T = c->T, .S = c->S, .D = c->D, .E = c->E, .scale = scale, .causal = c->causal};
        Tensors t;
        tensors_new(c, &t);
        naive(c, scale, &t);
        run(c, &g, &t, 2);
        double tol = 1e-8 * (8 + t.smax) * (double)(c->D + c->E);
        long BH = c->BH, T = c->T, S = c->S;
        expect_near(t.o, t.ro, t.mo, BH * T * c->E, 1, tol, "o", ci);
        /* the logsumexp to a few ulps of the largest score; delta to its terms */
        for (long r = 0; r < BH * T; r++) {
            cr_assert(fabs(t.st[2 * r] - t.rst[2 * r]) <= tol * (1 + fabs(t.rst[2 * r])),
                      "case %ld: logsumexp of row %ld is %.9g, expected %.9g", ci, r, (double)t.st[2 * r],
                      t.rst[2 * r]);
            cr_assert(fabs(t.st[2 * r + 1] - t.rst[2 * r + 1]) <= tol * t.mdelta[r] + 1e-7,
                      "case %ld: delta of row %ld is %.9g, expected %.9g", ci, r, (double)t.st[2 * r + 1],
                      t.rst[2 * r + 1]);
        }
        expect_near(t.dq, t.rdq, t.mdq, BH * T * c->D, 1, tol, "dq", ci);
        expect_near(t.dk, t.rdk, t.mdk, BH * S * c->D, 1, tol, "dk", ci);
        expect_near(t.dv, t.rdv, t.mdv, BH * S * c->E, 1, tol, "dv", ci);
        tensors_free(&t);
    }
}

/* The comparison is not vacuous: one dv element moved by 0.01 is the one element out of
 * tolerance. */
Test(kernels, attention_check_detects_a_dropped_key) {
    const AttnCase *c = &cases[1];
    float scale = 1.0f / sqrtf((float)c->D);
    mlc_attn_geom g = {.T = c->T, .S = c->S, .D = c->D, .E = c->E, .scale = scale, .causal = c->causal};
    Tensors t;
    tensors_new(c, &t);
    naive(c, scale, &t);
    run(c, &g, &t, 1);
    t.dv[(c->S - 1) * c->E] += 0.01f;
    long bad = 0;
    for (long i = 0; i < c->BH * c->S * c->E; i++) bad += fabs(t.dv[i] - t.rdv[i]) > 1e-4 * t.mdv[i] + 1e-6;
    cr_assert_eq(bad, 1, "a changed dv element went unnoticed or others differ (%ld)", bad);
    tensors_free(&t);
}

Test(kernels, attention_same_bits_on_1_and_2_threads) {
    for (long ci = 0; ci < (long)(sizeof cases / sizeof cases[0]); ci++) {
        const AttnCase *c = &cases[ci];
        mlc_attn_geom g = {
            .T = c->T, .S = c->S, .D = c->D, .E = c->E, .scale = 1.0f / sqrtf((float)c->D), .causal = c->causal};
        Tensors a, b;
        tensors_new(c, &a), tensors_new(c, &b);
        run(c, &g, &a, 1);
        run(c, &g, &b, 2);
        long BH = c->BH, T = c->T, S = c->S;
        cr_assert(!memcmp(a.o, b.o, sizeof(float) * (size_t)(BH * T * c->E)), "case %ld: o differs", ci);
        cr_assert(!memcmp(a.st, b.st, sizeof(float) * (size_t)(BH * T * 2)), "case %ld: statistics differ", ci);
        cr_assert(!memcmp(a.dq, b.dq, sizeof(float) * (size_t)(BH * T * c->D)), "case %ld: dq differs", ci);
        cr_assert(!memcmp(a.dk, b.dk, sizeof(float) * (size_t)(BH * S * c->D)), "case %ld: dk differs", ci);
        cr_assert(!memcmp(a.dv, b.dv, sizeof(float) * (size_t)(BH * S * c->E)), "case %ld: dv differs", ci);
        tensors_free(&a), tensors_free(&b);
    }
}
